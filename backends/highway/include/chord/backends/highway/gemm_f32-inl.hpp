// chord/backends/highway/gemm_f32-inl.hpp: the w{8,4,2} gemm kernels with fp32 activations in Highway,
// per target (GemmF32Fn in chord/ops/kernel_table.hpp): weights dequantized in registers. Structure and
// blocking: gemm-inl.hpp. Included once per Highway target (toggle guard).

#if defined(CHORD_BACKENDS_HIGHWAY_GEMM_F32_INL_HPP_) == defined(HWY_TARGET_TOGGLE)
#ifdef CHORD_BACKENDS_HIGHWAY_GEMM_F32_INL_HPP_
#undef CHORD_BACKENDS_HIGHWAY_GEMM_F32_INL_HPP_
#else
#define CHORD_BACKENDS_HIGHWAY_GEMM_F32_INL_HPP_
#endif

#include <cstddef>
#include <cstdint>
#include <utility>

#include "chord/backends/highway/gemm-inl.hpp"
#include "chord/core/error.hpp"

#if CHORD_HWY_HAVE_KERNELS
HWY_BEFORE_NAMESPACE();
namespace chord::backends::highway::CHORD_HWY_VARIANT::HWY_NAMESPACE {
// Accumulator I += w * x (fp32).
template <std::size_t I>
HWY_INLINE CHORD_HWY_ATTR void MulAddInto(VF w, VF x, VF& a0, VF& a1, VF& a2, VF& a3) {
  VF& acc = Chain<I>(a0, a1, a2, a3);
  acc = hn::MulAdd(w, x, acc);
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
