// chord/nn/gemm_f32.hpp: the fp32 matrix products of training, cache-blocked for plain C++ compilers.
//
// Training needs exactly three forms (BLAS letters say which operand is transposed):
//   gemm_nt:  y  (=|+=) x  W^T (+ b)   forward of a Linear     x: [m, k], W: [n, k], y: [m, n]
//   gemm_nn:  dX (=|+=) dY W           input gradient          dY: [m, n], W: [n, k], dX: [m, k]
//   gemm_tn:  dW  +=    dY^T X         weight gradient         dY: [m, n], X: [m, k], dW: [n, k]
// (The functions below name their operands generically, C[m, n] = op(A) op(B), since attention and
// convolution call them on other matrices too; each comment says how the Linear case maps.)
// Every layer of chord::nn calls only these three, so a SIMD kernel can replace them in one place;
// ops::linear_forward's dense path (ops/linear.hpp) runs gemm_nt too.
//
// How it is fast without intrinsics (the BLIS/GotoBLAS structure, written so that GCC -O3 vectorizes
// it): C is cut into kNC-column x kKC-deep blocks of B and kMC-row blocks of A; each block is copied
// ("packed") once into contiguous panels, B as [kKC][kNR] slivers and A as [kKC][kMR] slivers, padded
// with zeros. Packing absorbs every transposition and leading dimension, so one micro-kernel serves all
// three forms. The micro-kernel keeps a kMR x kNR tile of C in registers: for each p it broadcasts
// kMR values of A and multiplies them by kNR contiguous values of B (the vectorized inner loop). The
// tile size follows the register file the compiler targets (see kMR / kNR below): the one ISA choice
// outside the backends, since this gemm is compiled with its includer's flags and called without a
// kernel table (README, layering); the tile changes the speed only, not the sums' order.
// Each element of C is summed over p in increasing order whatever the block sizes, so results do not
// depend on m or on how rows are grouped (a row computed alone equals the same row inside a batch).
// When C is written (not accumulated) the sums run through every depth block in one chain and the bias
// comes last: the reference's y = sum + b (ref::gemm_f32) bit for bit, without FMA contraction.
#pragma once

#include <algorithm>
#include <cstddef>

#include "chord/core/aligned.hpp"

namespace chord::nn {

namespace gemm_detail {

// Register tile: kMR rows x kNR columns of C live in registers during the micro-kernel.
#if defined(CHORD_NN_GEMM_MR) && defined(CHORD_NN_GEMM_NR)  // tuning experiments
inline constexpr std::size_t kMR = CHORD_NN_GEMM_MR, kNR = CHORD_NN_GEMM_NR;
#elif defined(__AVX512F__)
inline constexpr std::size_t kMR = 8, kNR = 32;   // 16 of 32 zmm accumulators
#elif defined(__AVX__)
inline constexpr std::size_t kMR = 6, kNR = 16;   // 12 of 16 ymm accumulators
#elif defined(__aarch64__)
inline constexpr std::size_t kMR = 6, kNR = 16;   // 24 of 32 NEON q accumulators
#else
inline constexpr std::size_t kMR = 4, kNR = 8;    // SSE2: 8 of 16 xmm accumulators (no FMA: temps)
#endif
// Cache blocks: a kKC x kNR sliver of B stays in L1, a kMC x kKC block of A in L2.
inline constexpr std::size_t kKC = 256;
inline constexpr std::size_t kMC = 16 * kMR;
inline constexpr std::size_t kNC = 2048;

// A strided read-only matrix: element (r, c) is at p[r * rs + c * cs].
struct View {
  const float* p;
  std::size_t rs, cs;
};

// Rows [0, mc) x depth [0, kc) of a into kMR-row panels: panel q holds dst[p * kMR + i] = a(q*kMR + i, p).
inline void pack_a(View a, std::size_t mc, std::size_t kc, float* __restrict dst) {
  for (std::size_t i0 = 0; i0 < mc; i0 += kMR, dst += kc * kMR) {
    const std::size_t mr = std::min(kMR, mc - i0);
    if (a.rs == 1) {  // a is stored transposed (gemm_tn): each depth step is a contiguous run
      for (std::size_t p = 0; p < kc; ++p) {
        const float* src = a.p + p * a.cs + i0;
        for (std::size_t i = 0; i < kMR; ++i) dst[p * kMR + i] = i < mr ? src[i] : 0.0f;
      }
      continue;
    }
    for (std::size_t i = 0; i < kMR; ++i) {
      if (i >= mr) {
        for (std::size_t p = 0; p < kc; ++p) dst[p * kMR + i] = 0.0f;
        continue;
      }
      const float* row = a.p + (i0 + i) * a.rs;
      for (std::size_t p = 0; p < kc; ++p) dst[p * kMR + i] = row[p * a.cs];
    }
  }
}

// Depth [0, kc) x columns [0, nc) of b into kNR-column panels: dst[p * kNR + j] = b(p, q*kNR + j).
inline void pack_b(View b, std::size_t kc, std::size_t nc, float* __restrict dst) {
  for (std::size_t j0 = 0; j0 < nc; j0 += kNR, dst += kc * kNR) {
    const std::size_t nr = std::min(kNR, nc - j0);
    if (b.cs == 1) {  // rows of b are contiguous: copy slivers
      for (std::size_t p = 0; p < kc; ++p) {
        const float* src = b.p + p * b.rs + j0;
        for (std::size_t j = 0; j < kNR; ++j) dst[p * kNR + j] = j < nr ? src[j] : 0.0f;
      }
    } else {
      for (std::size_t j = 0; j < kNR; ++j) {
        const float* col = b.p + (j0 + j) * b.cs;
        for (std::size_t p = 0; p < kc; ++p) dst[p * kNR + j] = j < nr ? col[p * b.rs] : 0.0f;
      }
    }
  }
}

// c[i][j] (=|+=) sum_p a[p][i] * b[p][j] (+ bias[j]) for i < mr, j < nr. resume: c holds the sums of
// the previous depth blocks, which this block continues (c = ((c + a0 b0) + a1 b1) ...) and overwrites.
// a: [kc][kMR] packed, b: [kc][kNR] packed, c: [mr, nr] with row stride ldc, bias: [nr] or null.
inline void micro_kernel(std::size_t kc, const float* __restrict a, const float* __restrict b,
                         float* __restrict c, std::size_t ldc, std::size_t mr, std::size_t nr,
                         bool accumulate, bool resume, const float* __restrict bias) {
  float acc[kMR][kNR] = {};
  if (resume && mr == kMR && nr == kNR) {
    for (std::size_t i = 0; i < kMR; ++i)
      for (std::size_t j = 0; j < kNR; ++j) acc[i][j] = c[i * ldc + j];
  } else if (resume) {
    for (std::size_t i = 0; i < mr; ++i)
      for (std::size_t j = 0; j < nr; ++j) acc[i][j] = c[i * ldc + j];
  }
  for (std::size_t p = 0; p < kc; ++p) {
    const float* __restrict ap = a + p * kMR;
    const float* __restrict bp = b + p * kNR;
#pragma GCC unroll 16
    for (std::size_t i = 0; i < kMR; ++i) {
      const float ai = ap[i];
#pragma GCC unroll 32
      for (std::size_t j = 0; j < kNR; ++j) acc[i][j] += ai * bp[j];
    }
  }
  if (bias != nullptr)
    for (std::size_t i = 0; i < kMR; ++i)
      for (std::size_t j = 0; j < nr; ++j) acc[i][j] += bias[j];
  if (mr == kMR && nr == kNR) {  // full tile: fixed trip counts vectorize the stores too
    for (std::size_t i = 0; i < kMR; ++i) {
      float* __restrict ci = c + i * ldc;
      if (accumulate)  // (resume only when writing)
        for (std::size_t j = 0; j < kNR; ++j) ci[j] += acc[i][j];
      else
        for (std::size_t j = 0; j < kNR; ++j) ci[j] = acc[i][j];
    }
    return;
  }
  for (std::size_t i = 0; i < mr; ++i) {
    float* ci = c + i * ldc;
    for (std::size_t j = 0; j < nr; ++j) ci[j] = accumulate ? ci[j] + acc[i][j] : acc[i][j];
  }
}

// The packing buffers of the calling thread (training runs one gemm per thread at a time).
inline float* packed_a_buffer() {
  thread_local AlignedVector<float> buffer(kMC * kKC);
  return buffer.data();
}
inline float* packed_b_buffer() {
  thread_local AlignedVector<float> buffer(kKC * round_up(kNC, kNR));
  return buffer.data();
}

// C[m, n] (=|+=) A[m, k] B[k, n] (+ bias[n]), A and B given as strided views, C with row stride ldc.
inline void gemm(std::size_t m, std::size_t n, std::size_t k, View a, View b, const float* bias, float* c,
                 std::size_t ldc, bool accumulate) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // empty sum: only the bias (and what C held) remains
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < n; ++j)
        c[i * ldc + j] = (accumulate ? c[i * ldc + j] : 0.0f) + (bias ? bias[j] : 0.0f);
    return;
  }
  float* const pa = packed_a_buffer();
  float* const pb = packed_b_buffer();
  for (std::size_t jc = 0; jc < n; jc += kNC) {
    const std::size_t nc = std::min(kNC, n - jc);
    for (std::size_t pc = 0; pc < k; pc += kKC) {
      const std::size_t kc = std::min(kKC, k - pc);
      pack_b(View{b.p + pc * b.rs + jc * b.cs, b.rs, b.cs}, kc, nc, pb);
      // Writing C (!accumulate): each element's sum runs over p in one increasing order across the
      // depth blocks (later blocks resume from C) and the bias comes last, so the outputs are
      // ref::gemm_f32's bit for bit (without FMA contraction) at any k. Adding to C (gradients): every
      // block adds its own sum, the first with the bias.
      const bool first = pc == 0, last = pc + kc == k;
      const bool resume = !accumulate && !first;
      const bool with_bias = accumulate ? first : last;
      for (std::size_t ic = 0; ic < m; ic += kMC) {
        const std::size_t mc = std::min(kMC, m - ic);
        pack_a(View{a.p + ic * a.rs + pc * a.cs, a.rs, a.cs}, mc, kc, pa);
        for (std::size_t jr = 0; jr < nc; jr += kNR)
          for (std::size_t ir = 0; ir < mc; ir += kMR)
            micro_kernel(kc, pa + ir * kc, pb + jr * kc, c + (ic + ir) * ldc + jc + jr, ldc,
                         std::min(kMR, mc - ir), std::min(kNR, nc - jr), accumulate, resume,
                         with_bias && bias ? bias + jc + jr : nullptr);
      }
    }
  }
}

}  // namespace gemm_detail

// y[m, n] (=|+=) x[m, k] W[n, k]^T (+ bias[n]):   y[i][c] = sum_j x[i][j] W[c][j] + b[c]
// Row strides: ldx >= k, ldw >= k, ldy >= n. bias may be null. accumulate: add to y instead of writing.
inline void gemm_nt(std::size_t m, std::size_t n, std::size_t k, const float* x, std::size_t ldx, const float* w,
                    std::size_t ldw, const float* bias, float* y, std::size_t ldy, bool accumulate) {
  gemm_detail::gemm(m, n, k, {x, ldx, 1}, {w, 1, ldw}, bias, y, ldy, accumulate);
}

// c[m, n] (=|+=) a[m, k] b[k, n]:   dX = dY W with a = dY [m, n_out], b = W [n_out, k_in].
// Row strides: lda >= k, ldb >= n, ldc >= n.
inline void gemm_nn(std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda, const float* b,
                    std::size_t ldb, float* c, std::size_t ldc, bool accumulate) {
  gemm_detail::gemm(m, n, k, {a, lda, 1}, {b, ldb, 1}, nullptr, c, ldc, accumulate);
}

// c[m, n] += a[k, m]^T b[k, n]:   dW += dY^T X with a = dY [rows, n_out], b = X [rows, k_in], k = rows.
// Row strides: lda >= m, ldb >= n, ldc >= n. Always accumulates (gradients add up over a batch).
inline void gemm_tn(std::size_t m, std::size_t n, std::size_t k, const float* a, std::size_t lda, const float* b,
                    std::size_t ldb, float* c, std::size_t ldc) {
  gemm_detail::gemm(m, n, k, {a, 1, lda}, {b, ldb, 1}, nullptr, c, ldc, true);
}

}  // namespace chord::nn
