// chord/backends/highway/gemm-inl.hpp: w{8,4,2}a8 and w{8,4,2}-fp32 gemm kernels in Highway, per target.
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

// Accumulator I += w * a (4-byte dot products) / += w * x (fp32).
template <int Bits, std::size_t I>
HWY_INLINE CHORD_HWY_ATTR void DotInto(V8 w, V8 a, V32& a0, V32& a1, V32& a2, V32& a3) {
  V32& acc = Chain<I>(a0, a1, a2, a3);
  acc = DotStep<Bits>(acc, w, a);
}
template <std::size_t I>
HWY_INLINE CHORD_HWY_ATTR void MulAddInto(VF w, VF x, VF& a0, VF& a1, VF& a2, VF& a3) {
  VF& acc = Chain<I>(a0, a1, a2, a3);
  acc = hn::MulAdd(w, x, acc);
}

// ---------------------------------------------------------------------------------------------
// int8 activations
//
// 8 accumulators (s0..s7), not 4: with 4, a block of 4 rows had one vpdpbusd chain per row and ran
// at the instruction's latency, not its throughput (67 % of the dot peak at 200:256:256 on Zen 4).
// A block is up to 8 rows; 8 / rows chains per row (rows 1, 2, 4, 8), so every block keeps 8 (or 6)
// dot products in flight and one weight plane serves up to 8 rows.

inline constexpr std::size_t kS8BlockRows = 8;
template <std::size_t Rows>
inline constexpr std::size_t kS8Chains = Rows == 1 ? 8 : Rows == 2 ? 4 : Rows <= 4 ? 2 : 1;

// Accumulator I of s0..s7 (row r, chain c is I = r * kS8Chains + c).
template <std::size_t I, class V>
HWY_INLINE CHORD_HWY_ATTR V& Acc8(V& s0, V& s1, V& s2, V& s3, V& s4, V& s5, V& s6, V& s7) {
  if constexpr (I < 4) return Chain<I>(s0, s1, s2, s3);
  else return Chain<I - 4>(s4, s5, s6, s7);
}
#define CHORD_HWY_S8_ACC V32 &s0, V32 &s1, V32 &s2, V32 &s3, V32 &s4, V32 &s5, V32 &s6, V32 &s7
#define CHORD_HWY_S8_ARGS s0, s1, s2, s3, s4, s5, s6, s7

// Dot step `Step` of an unrolled run: panel Step / planes (from `panel`), sub-block Step % planes,
// chain Step % chains, for every row. col: the k of the run's first panel.
template <int Bits, std::size_t Rows, std::size_t Step, std::size_t... Row>
HWY_INLINE CHORD_HWY_ATTR void S8Step(std::index_sequence<Row...>, const std::uint8_t* panel,
                                      const std::int8_t* const* rows, std::size_t col, CHORD_HWY_S8_ACC) {
  constexpr std::size_t kPlanes = 8 / Bits, kC = kS8Chains<Rows>;
  constexpr std::size_t group = Step / kPlanes, plane = Step % kPlanes, chain = Step % kC;
  const V8 w = WeightPlane<Bits, static_cast<int>(plane)>(panel + group * kPanelBytes);
  const std::size_t at = col + group * group_k(Bits) + plane * kDot;
  ((Acc8<Row * kC + chain>(CHORD_HWY_S8_ARGS) =
        DotStep<Bits>(Acc8<Row * kC + chain>(CHORD_HWY_S8_ARGS), w, ActivationQuad(rows[Row] + at))),
   ...);
}

template <int Bits, std::size_t Rows, std::size_t... Steps>
HWY_INLINE CHORD_HWY_ATTR void S8Steps(std::index_sequence<Steps...>, const std::uint8_t* panel,
                                       const std::int8_t* const* rows, std::size_t col, CHORD_HWY_S8_ACC) {
  (S8Step<Bits, Rows, Steps>(std::make_index_sequence<Rows>(), panel, rows, col, CHORD_HWY_S8_ARGS), ...);
}

// Row r's partial sums into its chain 0 (the other chains start at zero) / the chains folded and
// stored back. acc: [kS8BlockRows][kTileN], s: the slice's first channel.
template <std::size_t Rows, std::size_t... Row>
HWY_INLINE CHORD_HWY_ATTR void S8LoadChains(std::index_sequence<Row...>, std::int32_t (*acc)[kTileN], std::size_t s,
                                            CHORD_HWY_S8_ACC) {
  const D32 d;
  s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = hn::Zero(d);
  ((Acc8<Row * kS8Chains<Rows>>(CHORD_HWY_S8_ARGS) = hn::LoadU(d, acc[Row] + s)), ...);
}
template <std::size_t Rows, std::size_t Row>
HWY_INLINE CHORD_HWY_ATTR V32 S8FoldRow(CHORD_HWY_S8_ACC) {
  constexpr std::size_t kC = kS8Chains<Rows>, first = Row * kC;
  V32 sum = Acc8<first>(CHORD_HWY_S8_ARGS);
  if constexpr (kC > 1) sum = hn::Add(sum, Acc8<first + 1>(CHORD_HWY_S8_ARGS));
  if constexpr (kC > 2) sum = hn::Add(hn::Add(sum, Acc8<first + 2>(CHORD_HWY_S8_ARGS)), Acc8<first + 3>(CHORD_HWY_S8_ARGS));
  if constexpr (kC > 4) {
    sum = hn::Add(sum, hn::Add(Acc8<first + 4>(CHORD_HWY_S8_ARGS), Acc8<first + 5>(CHORD_HWY_S8_ARGS)));
    sum = hn::Add(sum, hn::Add(Acc8<first + 6>(CHORD_HWY_S8_ARGS), Acc8<first + 7>(CHORD_HWY_S8_ARGS)));
  }
  return sum;
}
template <std::size_t Rows, std::size_t... Row>
HWY_INLINE CHORD_HWY_ATTR void S8StoreChains(std::index_sequence<Row...>, std::int32_t (*acc)[kTileN], std::size_t s,
                                             CHORD_HWY_S8_ACC) {
  const D32 d;
  (hn::StoreU(S8FoldRow<Rows, Row>(CHORD_HWY_S8_ARGS), d, acc[Row] + s), ...);
}

// Micro-kernel: rows[0..Rows) (int8, zero past k up to the padded k) x one tile's `groups` panels,
// added into acc[r][c] (int32, raw sums of DotStep: u * a or q * a, see kSignedWeights).
template <int Bits, std::size_t Rows>
CHORD_HWY_ATTR void S8RowBlock(const std::int8_t* const* rows, const std::uint8_t* tile, std::size_t groups,
                               std::int32_t (*acc)[kTileN]) {
  constexpr std::size_t kPlanes = 8 / Bits, kC = kS8Chains<Rows>;
  constexpr std::size_t kSteps = kPlanes > kC ? kPlanes : kC;  // powers of two: their lcm
  constexpr std::size_t kGroupsPerRun = kSteps / kPlanes;
  const D32 d32;
  const std::size_t lanes = hn::Lanes(d32);
  for (std::size_t g0 = 0; g0 < groups; g0 += kBlockGroups) {
    const std::size_t g1 = groups - g0 < kBlockGroups ? groups : g0 + kBlockGroups;
    for (std::size_t s = 0; s < kTileN; s += lanes) {
      V32 s0, s1, s2, s3, s4, s5, s6, s7;
      S8LoadChains<Rows>(std::make_index_sequence<Rows>(), acc, s, CHORD_HWY_S8_ARGS);
      const std::uint8_t* panel = tile + g0 * kPanelBytes + s * kDot;
      std::size_t g = g0;
      for (; g + kGroupsPerRun <= g1; g += kGroupsPerRun, panel += kGroupsPerRun * kPanelBytes)
        S8Steps<Bits, Rows>(std::make_index_sequence<kSteps>(), panel, rows, g * group_k(Bits), CHORD_HWY_S8_ARGS);
      for (; g < g1; ++g, panel += kPanelBytes)
        S8Steps<Bits, Rows>(std::make_index_sequence<kPlanes>(), panel, rows, g * group_k(Bits), CHORD_HWY_S8_ARGS);
      S8StoreChains<Rows>(std::make_index_sequence<Rows>(), acc, s, CHORD_HWY_S8_ARGS);
    }
  }
}
#undef CHORD_HWY_S8_ACC
#undef CHORD_HWY_S8_ARGS

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

// Tile t's outputs for rows i0 .. i0+rows-1 from the raw sums in acc. bias: [kTileN] for the tile.
// A whole tile with consecutive columns is stored vector by vector straight into the row (no staging
// array, no per-element column lookup: at k = 64 that epilogue cost about as much as the dot products).
template <int Bits>
CHORD_HWY_ATTR void S8Epilogue(const QuantizedRows& a, const PackedMatrix& w, const GemmOutput& out, std::size_t t,
                               std::size_t i0, std::size_t rows, std::int32_t (*acc)[kTileN], const float* bias) {
  const D32 d32;
  const DF df;
  const std::size_t lanes = hn::Lanes(d32), first = t * kTileN;
  const std::size_t count = w.rows() - first < kTileN ? w.rows() - first : kTileN;
  const std::size_t column0 = ConsecutiveColumns(out, first, count);
  const bool direct = count == kTileN && column0 != ~std::size_t{0};
  HWY_ALIGN float y[kTileN];
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t i = i0 + r;
    // sum(u * a) = sum(q * a) + 2^(b-1) * sum(a): remove the offset (unsigned arithmetic: wraps, no UB).
    const std::uint32_t offset_sum = kSignedWeights<Bits> ? 0u
                                                           : static_cast<std::uint32_t>(code_offset(Bits)) *
                                                                 static_cast<std::uint32_t>(a.sums[i]);
    const V32 correction = hn::Set(d32, static_cast<std::int32_t>(offset_sum));
    const VF a_scale = hn::Set(df, a.scales[i]);
    for (std::size_t s = 0; s < kTileN; s += lanes) {
      const V32 dot = hn::Sub(hn::LoadU(d32, acc[r] + s), correction);
      if (out.acc != nullptr) {
        if (direct) hn::StoreU(dot, d32, out.acc + i * out.ldy + column0 + s);
        else hn::StoreU(dot, d32, acc[r] + s);
      } else {
        // The reference epilogue, operation for operation (ref::dequantize_acc).
        const VF scaled = hn::Mul(hn::Mul(hn::ConvertTo(df, dot), a_scale), hn::LoadU(df, w.scales() + first + s));
        const VF result = hn::Add(scaled, hn::LoadU(df, bias + s));
        if (direct) hn::StoreU(result, df, out.y + i * out.ldy + column0 + s);
        else hn::StoreU(result, df, y + s);
      }
    }
    if (direct) continue;
    if (out.acc != nullptr) {
      for (std::size_t c = 0; c < count; ++c) out.acc[i * out.ldy + out.column(first + c)] = acc[r][c];
    } else {
      for (std::size_t c = 0; c < count; ++c) out.y[i * out.ldy + out.column(first + c)] = y[c];
    }
  }
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

// w{Bits}a8 gemv (a.m == 1): every tile's slices straight from its panels to the output, with the
// 8 chains folded in registers and the epilogue applied to the folded register: no int32 staging
// array, no k-blocks (nothing to keep in L1 for other rows), the bias loaded as a vector where the
// tile's columns are consecutive. The gemm path's per-tile bookkeeping cost a gemv on the 12,101-item
// catalogue (k = 64: 16 dot steps per tile) more than its dot products.
template <int Bits>
CHORD_HWY_ATTR void GemvS8(const QuantizedRows& a, const PackedMatrix& w, const GemmOutput& out) {
  constexpr std::size_t kPlanes = 8 / Bits, kC = kS8Chains<1>;
  constexpr std::size_t kSteps = kPlanes > kC ? kPlanes : kC;
  constexpr std::size_t kGroupsPerRun = kSteps / kPlanes;
  const D32 d32;
  const DF df;
  const std::size_t lanes = hn::Lanes(d32), groups = w.groups();
  const std::int8_t* const rows[1] = {a.row(0)};
  const std::uint32_t offset_sum =
      kSignedWeights<Bits> ? 0u : static_cast<std::uint32_t>(code_offset(Bits)) * static_cast<std::uint32_t>(a.sums[0]);
  const V32 correction = hn::Set(d32, static_cast<std::int32_t>(offset_sum));
  const VF a_scale = hn::Set(df, a.scales[0]);
  HWY_ALIGN float bias[kTileN];
  HWY_ALIGN float y[kTileN];
  HWY_ALIGN std::int32_t dots[kTileN];
  for (std::size_t t = 0; t < w.tiles(); ++t) {
    const std::size_t first = t * kTileN;
    const std::size_t count = w.rows() - first < kTileN ? w.rows() - first : kTileN;
    const std::size_t column0 = ConsecutiveColumns(out, first, count);
    const bool direct = count == kTileN && column0 != ~std::size_t{0};
    const bool gather_bias = out.bias != nullptr && !direct;
    if (gather_bias) GatherBias(w, out, t, bias);
    for (std::size_t s = 0; s < kTileN; s += lanes) {
      V32 s0, s1, s2, s3, s4, s5, s6, s7;
      s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = hn::Zero(d32);
      // k = 0 (no groups) has no panel storage: no pointer arithmetic on the null tile then.
      const std::uint8_t* panel = groups == 0 ? nullptr : w.tile(t) + s * kDot;
      std::size_t g = 0;
      for (; g + kGroupsPerRun <= groups; g += kGroupsPerRun, panel += kGroupsPerRun * kPanelBytes)
        S8Steps<Bits, 1>(std::make_index_sequence<kSteps>(), panel, rows, g * group_k(Bits), s0, s1, s2, s3, s4, s5,
                         s6, s7);
      for (; g < groups; ++g, panel += kPanelBytes)
        S8Steps<Bits, 1>(std::make_index_sequence<kPlanes>(), panel, rows, g * group_k(Bits), s0, s1, s2, s3, s4, s5,
                         s6, s7);
      const V32 dot = hn::Sub(S8FoldRow<1, 0>(s0, s1, s2, s3, s4, s5, s6, s7), correction);
      if (out.acc != nullptr) {
        if (direct) hn::StoreU(dot, d32, out.acc + column0 + s);
        else hn::StoreU(dot, d32, dots + s);
        continue;
      }
      const VF b = gather_bias ? hn::LoadU(df, bias + s)
                   : out.bias != nullptr ? hn::LoadU(df, out.bias + column0 + s) : hn::Zero(df);
      // The reference epilogue, operation for operation (ref::dequantize_acc).
      const VF scaled = hn::Mul(hn::Mul(hn::ConvertTo(df, dot), a_scale), hn::LoadU(df, w.scales() + first + s));
      if (direct) hn::StoreU(hn::Add(scaled, b), df, out.y + column0 + s);
      else hn::StoreU(hn::Add(scaled, b), df, y + s);
    }
    if (direct) continue;
    if (out.acc != nullptr) {
      for (std::size_t c = 0; c < count; ++c) out.acc[out.column(first + c)] = dots[c];
    } else {
      for (std::size_t c = 0; c < count; ++c) out.y[out.column(first + c)] = y[c];
    }
  }
}

// w{Bits}a8 gemm. a: [m, k] int8 rows (stride >= cols_padded, zero past k), w: [n, k] packed,
// out: y or acc [m, ldy] at columns out.column(r). See GemmS8Fn.
template <int Bits>
CHORD_HWY_ATTR void GemmS8(const QuantizedRows& a, const PackedMatrix& w, const GemmOutput& out) {
  CHORD_CHECK(w.bits() == Bits, "highway gemm_s8<", Bits, ">: weights are packed at ", w.bits(), " bits");
  CHORD_CHECK(a.k == w.cols(), "highway gemm_s8: activations have ", a.k, " columns, weights have ", w.cols());
  if (a.m == 0 || w.rows() == 0) return;
  CHORD_CHECK(a.stride >= w.cols_padded(), "highway gemm_s8: activation stride ", a.stride,
              " is shorter than the padded k ", w.cols_padded());
  CHORD_CHECK(out.y != nullptr || out.acc != nullptr, "highway gemm_s8: no output buffer");
  if (a.m == 1) return GemvS8<Bits>(a, w, out);
  HWY_ALIGN std::int32_t acc[kS8BlockRows][kTileN];
  HWY_ALIGN float bias[kTileN];
  for (std::size_t t = 0; t < w.tiles(); ++t) {
    GatherBias(w, out, t, bias);
    for (std::size_t i0 = 0; i0 < a.m; i0 += kS8BlockRows) {
      const std::size_t rows = a.m - i0 < kS8BlockRows ? a.m - i0 : kS8BlockRows;
      const std::int8_t* row_ptrs[kS8BlockRows];
      for (std::size_t r = 0; r < kS8BlockRows; ++r) row_ptrs[r] = a.row(i0 + (r < rows ? r : rows - 1));
      for (std::size_t r = 0; r < rows; ++r)  // only the rows of this block (a gemv: one)
        for (std::int32_t& v : acc[r]) v = 0;
      switch (rows) {
        case 8: S8RowBlock<Bits, 8>(row_ptrs, w.tile(t), w.groups(), acc); break;
        case 7: S8RowBlock<Bits, 7>(row_ptrs, w.tile(t), w.groups(), acc); break;
        case 6: S8RowBlock<Bits, 6>(row_ptrs, w.tile(t), w.groups(), acc); break;
        case 5: S8RowBlock<Bits, 5>(row_ptrs, w.tile(t), w.groups(), acc); break;
        case 4: S8RowBlock<Bits, 4>(row_ptrs, w.tile(t), w.groups(), acc); break;
        case 3: S8RowBlock<Bits, 3>(row_ptrs, w.tile(t), w.groups(), acc); break;
        case 2: S8RowBlock<Bits, 2>(row_ptrs, w.tile(t), w.groups(), acc); break;
        default: S8RowBlock<Bits, 1>(row_ptrs, w.tile(t), w.groups(), acc); break;
      }
      S8Epilogue<Bits>(a, w, out, t, i0, rows, acc, bias);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// fp32 activations

// Loads row r's partial sums into its chain 0 (other chains start at zero) / folds the chains and
// stores them back. acc: [kBlockRows][kTileN], s: the slice's first channel.
template <std::size_t Rows, class D, class V, class T>
HWY_INLINE CHORD_HWY_ATTR void LoadChains(D d, T (*acc)[kTileN], std::size_t s, V& a0, V& a1, V& a2, V& a3) {
  constexpr std::size_t kC = kChains<Rows>;
  a0 = a1 = a2 = a3 = hn::Zero(d);
  Chain<0>(a0, a1, a2, a3) = hn::LoadU(d, acc[0] + s);
  if constexpr (Rows > 1) Chain<kC>(a0, a1, a2, a3) = hn::LoadU(d, acc[1] + s);
  if constexpr (Rows > 2) Chain<2 * kC>(a0, a1, a2, a3) = hn::LoadU(d, acc[2] + s);
  if constexpr (Rows > 3) Chain<3 * kC>(a0, a1, a2, a3) = hn::LoadU(d, acc[3] + s);
}
template <std::size_t Rows, class D, class V, class T>
HWY_INLINE CHORD_HWY_ATTR void StoreChains(D d, T (*acc)[kTileN], std::size_t s, V a0, V a1, V a2,
                                           [[maybe_unused]] V a3) {
  if constexpr (Rows == 1) {
    hn::StoreU(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)), d, acc[0] + s);
  } else if constexpr (Rows == 2) {
    hn::StoreU(hn::Add(a0, a1), d, acc[0] + s);
    hn::StoreU(hn::Add(a2, a3), d, acc[1] + s);
  } else {
    hn::StoreU(a0, d, acc[0] + s);
    hn::StoreU(a1, d, acc[1] + s);
    hn::StoreU(a2, d, acc[2] + s);
    if constexpr (Rows > 3) hn::StoreU(a3, d, acc[3] + s);
  }
}


// A panel slice with the top bit of every Bits-wide field flipped: u XOR 2^(b-1) is the two's
// complement of q = u - 2^(b-1), so a field then sign-extends with two shifts (CodesAsFloat).
template <int Bits>
HWY_INLINE CHORD_HWY_ATTR V32 FlippedPanel(const std::uint8_t* panel) {
  constexpr std::uint32_t kTopBits = Bits == 8 ? 0x80808080u : Bits == 4 ? 0x88888888u : 0xAAAAAAAAu;
  const D32 d32;
  return hn::Xor(hn::BitCast(d32, hn::LoadU(DU8(), panel)), hn::BitCast(d32, hn::Set(DU32(), kTopBits)));
}

// The signed codes q of the field at bit `shift` of every lane (one channel per lane), as floats:
// the field is moved to the top of the lane, then back down with an arithmetic shift.
template <int Bits>
HWY_INLINE CHORD_HWY_ATTR VF CodesAsFloat(V32 flipped, int shift) {
  return hn::ConvertTo(DF(), hn::ShiftRightSame(hn::ShiftLeftSame(flipped, 32 - Bits - shift), 32 - Bits));
}

// Step `Step` of one panel: sub-block Step / 4, k offset Step % 4 within it; chain Step % chains.
template <int Bits, std::size_t Rows, std::size_t Step, std::size_t... Row>
HWY_INLINE CHORD_HWY_ATTR void F32Step(std::index_sequence<Row...>, V32 flipped, const float* const* rows,
                                       std::size_t col, VF& a0, VF& a1, VF& a2, VF& a3) {
  constexpr std::size_t kC = kChains<Rows>, plane = Step / kDot, j = Step % kDot;
  const VF w = CodesAsFloat<Bits>(flipped, static_cast<int>(plane * Bits + 8 * j));
  const std::size_t at = col + Step;  // = col + plane * kDot + j
  (MulAddInto<Row * kC + Step % kC>(w, hn::Set(DF(), rows[Row][at]), a0, a1, a2, a3), ...);
}

template <int Bits, std::size_t Rows, std::size_t... Steps>
HWY_INLINE CHORD_HWY_ATTR void F32Steps(std::index_sequence<Steps...>, const std::uint8_t* panel,
                                        const float* const* rows, std::size_t col, VF& a0, VF& a1, VF& a2, VF& a3) {
  const V32 flipped = FlippedPanel<Bits>(panel);
  (F32Step<Bits, Rows, Steps>(std::make_index_sequence<Rows>(), flipped, rows, col, a0, a1, a2, a3), ...);
}

// The last panel when k is not a multiple of the k-group: x holds only `valid` more values.
template <int Bits, std::size_t Rows, std::size_t... Row>
HWY_INLINE CHORD_HWY_ATTR void F32PartialPanel(std::index_sequence<Row...>, const std::uint8_t* panel,
                                               const float* const* rows, std::size_t col, std::size_t valid,
                                               VF& a0, VF& a1, VF& a2, VF& a3) {
  const V32 flipped = FlippedPanel<Bits>(panel);
  for (std::size_t step = 0; step < valid; ++step) {
    const VF w = CodesAsFloat<Bits>(flipped, static_cast<int>(step / kDot * Bits + 8 * (step % kDot)));
    (MulAddInto<Row * kChains<Rows>>(w, hn::Set(DF(), rows[Row][col + step]), a0, a1, a2, a3), ...);
  }
}

// Micro-kernel: rows[0..Rows) (fp32, k values each, not padded) x one tile, added into acc[r][c].
template <int Bits, std::size_t Rows>
CHORD_HWY_ATTR void F32RowBlock(const float* const* rows, std::size_t k, const std::uint8_t* tile,
                                std::size_t groups, float (*acc)[kTileN]) {
  constexpr std::size_t kSteps = (8 / Bits) * kDot;  // k values per panel
  const std::size_t full = k / kSteps;               // panels whose k values all exist in x
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  for (std::size_t g0 = 0; g0 < groups; g0 += kBlockGroups) {
    const std::size_t g1 = groups - g0 < kBlockGroups ? groups : g0 + kBlockGroups;
    const std::size_t g_full = g1 < full ? g1 : full;
    for (std::size_t s = 0; s < kTileN; s += lanes) {
      VF a0, a1, a2, a3;
      LoadChains<Rows>(df, acc, s, a0, a1, a2, a3);
      const std::uint8_t* panel = tile + g0 * kPanelBytes + s * kDot;
      std::size_t g = g0;
      for (; g < g_full; ++g, panel += kPanelBytes)
        F32Steps<Bits, Rows>(std::make_index_sequence<kSteps>(), panel, rows, g * kSteps, a0, a1, a2, a3);
      if (g < g1)
        F32PartialPanel<Bits, Rows>(std::make_index_sequence<Rows>(), panel, rows, g * kSteps, k - g * kSteps, a0,
                                    a1, a2, a3);
      StoreChains<Rows>(df, acc, s, a0, a1, a2, a3);
    }
  }
}

// w{Bits} gemm with fp32 activations. x: [m, k] (row stride ldx, read up to k only; rows may overlap),
// w: [n, k] packed, out.y: [m, ldy] at columns out.column(r). See GemmF32Fn.
template <int Bits>
CHORD_HWY_ATTR void GemmF32(const float* x, std::size_t ldx, std::size_t m, const PackedMatrix& w,
                            const GemmOutput& out) {
  CHORD_CHECK(w.bits() == Bits, "highway gemm_f32<", Bits, ">: weights are packed at ", w.bits(), " bits");
  if (m == 0 || w.rows() == 0) return;
  const std::size_t k = w.cols();
  CHORD_CHECK(x != nullptr || k == 0, "highway gemm_f32: no activations");
  // Any row stride: rows may overlap (ldx < k), as Caser's convolution windows do (ops/conv.hpp).
  CHORD_CHECK(out.y != nullptr, "highway gemm_f32: no output buffer");
  const DF df;
  const std::size_t lanes = hn::Lanes(df);
  HWY_ALIGN float acc[kBlockRows][kTileN];
  HWY_ALIGN float bias[kTileN];
  for (std::size_t t = 0; t < w.tiles(); ++t) {
    GatherBias(w, out, t, bias);
    const std::size_t first = t * kTileN;
    const std::size_t count = w.rows() - first < kTileN ? w.rows() - first : kTileN;
    for (std::size_t i0 = 0; i0 < m; i0 += kBlockRows) {
      const std::size_t rows = m - i0 < kBlockRows ? m - i0 : kBlockRows;
      const float* row_ptrs[kBlockRows];
      for (std::size_t r = 0; r < kBlockRows; ++r) row_ptrs[r] = x + (i0 + (r < rows ? r : rows - 1)) * ldx;
      for (auto& row : acc)
        for (float& v : row) v = 0.0f;
      switch (rows) {
        case 4: F32RowBlock<Bits, 4>(row_ptrs, k, w.tile(t), w.groups(), acc); break;
        case 3: F32RowBlock<Bits, 3>(row_ptrs, k, w.tile(t), w.groups(), acc); break;
        case 2: F32RowBlock<Bits, 2>(row_ptrs, k, w.tile(t), w.groups(), acc); break;
        default: F32RowBlock<Bits, 1>(row_ptrs, k, w.tile(t), w.groups(), acc); break;
      }
      for (std::size_t r = 0; r < rows; ++r) {
        for (std::size_t s = 0; s < kTileN; s += lanes) {
          const VF scaled = hn::Mul(hn::LoadU(df, w.scales() + first + s), hn::LoadU(df, acc[r] + s));
          hn::StoreU(hn::Add(scaled, hn::LoadU(df, bias + s)), df, acc[r] + s);
        }
        for (std::size_t c = 0; c < count; ++c) out.y[(i0 + r) * out.ldy + out.column(first + c)] = acc[r][c];
      }
    }
  }
}

}  // namespace chord::backends::highway::CHORD_HWY_VARIANT::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
#endif  // CHORD_HWY_HAVE_KERNELS

#endif  // per-target include guard
