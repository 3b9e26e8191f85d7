// chord/backends/highway/gemm_s8-inl.hpp: the w{8,4,2}a8 gemm and gemv kernels in Highway, per target
// (GemmS8Fn in chord/ops/kernel_table.hpp). Structure, blocking and exactness: gemm-inl.hpp.
// Included once per Highway target (toggle guard).

#if defined(CHORD_BACKENDS_HIGHWAY_GEMM_S8_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef CHORD_BACKENDS_HIGHWAY_GEMM_S8_INL_HPP_
#undef CHORD_BACKENDS_HIGHWAY_GEMM_S8_INL_HPP_
#else
#define CHORD_BACKENDS_HIGHWAY_GEMM_S8_INL_HPP_
#endif

#include <cstddef>
#include <cstdint>
#include <utility>

#include "chord/backends/highway/gemm-inl.hpp"
#include "chord/core/error.hpp"

#if CHORD_HWY_HAVE_KERNELS
HWY_BEFORE_NAMESPACE();
namespace chord::backends::highway::CHORD_HWY_VARIANT::HWY_NAMESPACE {

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
                                                                 static_cast<std::uint32_t>(a.sums()[i]);
    const V32 correction = hn::Set(d32, static_cast<std::int32_t>(offset_sum));
    const VF a_scale = hn::Set(df, a.scales()[i]);
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

// w{Bits}a8 gemv (a.m() == 1): every tile's slices straight from its panels to the output, with the
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
      kSignedWeights<Bits> ? 0u : static_cast<std::uint32_t>(code_offset(Bits)) * static_cast<std::uint32_t>(a.sums()[0]);
  const V32 correction = hn::Set(d32, static_cast<std::int32_t>(offset_sum));
  const VF a_scale = hn::Set(df, a.scales()[0]);
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
  CHORD_CHECK(a.k() == w.cols(), "highway gemm_s8: activations have ", a.k(), " columns, weights have ", w.cols());
  if (a.m() == 0 || w.rows() == 0) return;
  CHORD_CHECK(a.stride() >= w.cols_padded(), "highway gemm_s8: activation stride ", a.stride(),
              " is shorter than the padded k ", w.cols_padded());
  CHORD_CHECK(out.y != nullptr || out.acc != nullptr, "highway gemm_s8: no output buffer");
  if (a.m() == 1) return GemvS8<Bits>(a, w, out);
  HWY_ALIGN std::int32_t acc[kS8BlockRows][kTileN];
  HWY_ALIGN float bias[kTileN];
  for (std::size_t t = 0; t < w.tiles(); ++t) {
    GatherBias(w, out, t, bias);
    for (std::size_t i0 = 0; i0 < a.m(); i0 += kS8BlockRows) {
      const std::size_t rows = a.m() - i0 < kS8BlockRows ? a.m() - i0 : kS8BlockRows;
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

}  // namespace chord::backends::highway::CHORD_HWY_VARIANT::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();
#endif  // CHORD_HWY_HAVE_KERNELS

#endif  // per-target include guard
