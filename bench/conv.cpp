// bench/conv.cpp: Caser's convolutions, per kernel table.
//
// NOT YET WRITTEN: the quantized convolution op (ops/conv.hpp: horizontal filters of height
// h = 1..L over the L x d embedding matrix with max-pooling over time, and vertical L x 1 filters)
// does not exist yet, and this file registers no rows rather than timing a stand-in. When it lands,
// register here, per table in `tables` and per width:
//   conv/horizontal_w{8,4,2}a8/<isa>/<backend>/L:d:filters    L = 5, d = 50, nh = 16 per height
//   conv/vertical_w{8,4,2}a8/<isa>/<backend>/L:d:filters      nv = 4
// with set_counters(..., Bound::dot, table.isa) so the row gets its "% of peak".
#include "areas.hpp"

namespace chord::bench {

void register_conv_benchmarks(const std::vector<KernelTable>& tables) {
  (void)tables;  // no convolution kernel to time yet (see above)
}

}  // namespace chord::bench
