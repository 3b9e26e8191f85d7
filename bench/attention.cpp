// bench/attention.cpp: SASRec causal self-attention, per kernel table.
//
// NOT YET WRITTEN: the quantized attention op (ops/attention.hpp: Q/K/V/O projections on mixed
// matrices, fp32 softmax) does not exist yet, and this file registers no rows rather than timing a
// stand-in. When it lands, register here, per table in `tables` and per width:
//   attention/w{8,4,2}a8/<isa>/<backend>/L:d:heads   with L = 200 and 50, d = 64 and 50, heads = 1
// with the GOPS counter counting the four projections plus QK^T and PV (2 ops per MAC) and
// set_counters(..., Bound::dot, table.isa) so the row gets its "% of peak".
#include "areas.hpp"

namespace chord::bench {

void register_attention_benchmarks(const std::vector<KernelTable>& tables) {
  (void)tables;  // no attention kernel to time yet (see above)
}

}  // namespace chord::bench
