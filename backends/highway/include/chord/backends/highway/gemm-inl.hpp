// chord/backends/highway/gemm-inl.hpp: what the Highway gemm kernels share, per target: the types, the
// blocking constants, the accumulator chains, the output-column check and the bias gather. The kernels:
// gemm_s8-inl.hpp (w{8,4,2}a8) and gemm_f32-inl.hpp (w{8,4,2} with fp32 activations).
//
// Included once per Highway target (toggle guard, as every Highway "-inl" header). Contract: see
// GemmS8Fn / GemmF32Fn in chord/ops/kernel_table.hpp; packed layout: chord/core/packed.hpp.
//
// Structure (the same for both kernels):
//   for each 16-channel tile t:                      (a tile's panels are 64-byte cache lines)
//     for each block of up to 8 / 4 rows:           (the "micro-kernel", int8 / fp32: weights unpacked once per
//       for each k-block of kBlockGroups panels:      panel slice, reused by every row of the block)
//         for each slice of Lanes(D32) channels:     (1 slice on AVX-512, 2 on AVX2, 4 on NEON; SVE
//           for each panel (k-group) of the block:    picks at run time: vector-length agnostic)
//             unpack the sub-blocks (AND + shift), one dot step per row and sub-block
//     epilogue: offset correction, fp32 scaling, bias; stored straight into the row when the tile's
//     output columns are consecutive, else through a staging array to each column.
// The k-block keeps a block's panels in L1 while the next slice re-reads them. A block of r rows
// keeps 8 / r (int8) or 4 / r (fp32) independent accumulator chains per row (8 / 4 for a gemv), so a
// lone row does not wait on one accumulator's latency and the gemv runs at memory speed.
//
// Accumulators of different rows and chains are separate named variables (a0..a3 / s0..s7, chosen at
// compile time by Chain<I> / Acc8<I>), never arrays: SVE vectors are sizeless and cannot be array elements.
// Exactness: the int8 path accumulates exactly in int32 (see dot-inl.hpp), and its epilogue is
// float(acc) * a_scale * w_scale + bias in that order: compile with -ffp-contract=off.

#if defined(CHORD_BACKENDS_HIGHWAY_GEMM_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef CHORD_BACKENDS_HIGHWAY_GEMM_INL_HPP_
#undef CHORD_BACKENDS_HIGHWAY_GEMM_INL_HPP_
#else
#define CHORD_BACKENDS_HIGHWAY_GEMM_INL_HPP_
#endif

#include <cstddef>
#include <cstdint>
#include <utility>

#include "chord/backends/highway/dot-inl.hpp"
#include "chord/core/error.hpp"
#include "chord/ops/kernel_table.hpp"

#if CHORD_HWY_HAVE_KERNELS
HWY_BEFORE_NAMESPACE();
namespace chord::backends::highway::CHORD_HWY_VARIANT::HWY_NAMESPACE {

using DF = hn::Rebind<float, D32>;
using DU32 = hn::RebindToUnsigned<D32>;
using VF = hn::VFromD<DF>;

inline constexpr std::size_t kBlockRows = 4;      // activation rows per micro-kernel call
inline constexpr std::size_t kBlockGroups = 128;  // panels per k-block: 8 KiB of weights

// Independent accumulator chains per row when a block has `Rows` rows (4 accumulators in all).
template <std::size_t Rows>
inline constexpr std::size_t kChains = Rows == 1 ? 4 : Rows == 2 ? 2 : 1;

// Accumulator I of a0..a3 (row r, chain c is I = r * kChains + c).
template <std::size_t I, class V>
HWY_INLINE CHORD_HWY_ATTR V& Chain(V& a0, V& a1, V& a2, V& a3) {
  if constexpr (I == 0) return a0;
  else if constexpr (I == 1) return a1;
  else if constexpr (I == 2) return a2;
  else return a3;
}

// First output column of tile t when its channels' columns are consecutive (always without
// out.columns), else SIZE_MAX; a partial tile (count < 16) with out.columns counts as scattered. The
// columns may come in any order (the contract does not sort them): all 16 are compared, in vectors (a
// scalar loop over them cost a 12,101-item gemv 60 %).
HWY_INLINE CHORD_HWY_ATTR std::size_t ConsecutiveColumns(const GemmOutput& out, std::size_t first, std::size_t count) {
  if (out.columns == nullptr) return first;
  if (count != kTileN) return ~std::size_t{0};
  const std::uint32_t* columns = out.columns + first;
  const DU32 du;
  const std::size_t lanes = hn::Lanes(du);
  const auto base = hn::Set(du, columns[0]);
  for (std::size_t s = 0; s < kTileN; s += lanes) {
    const auto expected = hn::Add(base, hn::Iota(du, static_cast<std::uint32_t>(s)));
    if (!hn::AllTrue(du, hn::Eq(hn::LoadU(du, columns + s), expected))) return ~std::size_t{0};
  }
  return columns[0];
}

// The tile's bias by tile row (0 for padding rows and without bias).
HWY_INLINE CHORD_HWY_ATTR void GatherBias(const PackedMatrix& w, const GemmOutput& out, std::size_t t,
                                          float* bias) {
  if (out.bias == nullptr) {  // the common case: no per-element loop (a gemv pays this once per tile)
    for (std::size_t c = 0; c < kTileN; ++c) bias[c] = 0.0f;
    return;
  }
  for (std::size_t c = 0; c < kTileN; ++c) {
    const std::size_t r = t * kTileN + c;
    bias[c] = out.bias != nullptr && r < w.rows() ? out.bias[out.column(r)] : 0.0f;
  }
}

}  // namespace chord::backends::highway::CHORD_HWY_VARIANT::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
#endif  // CHORD_HWY_HAVE_KERNELS

#endif  // per-target include guard
