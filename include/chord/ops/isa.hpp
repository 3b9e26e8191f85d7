// chord/ops/isa.hpp: the instruction sets the kernels are compiled for, as tags and as runtime values.
//
// Compile-time dispatch: kernels are templates on a tag (gemm<isa::avx512_vnni, 4>); `isa::native` is
// the best tag the compiler flags of the including translation unit allow: the drop-in, header-only use.
// Runtime dispatch (ops/dispatch.hpp) maps the running CPU to the best compiled-in `Isa` value.
#pragma once

#include <string_view>

namespace chord {

enum class Isa : int {
  scalar = 0,
  avx2 = 1,         // x86 AVX2 + FMA (vpmaddubsw / vpmaddwd for int8 dots)
  avx512_vnni = 2,  // x86 AVX-512 F/BW/VL + VNNI (vpdpbusd on zmm)
  neon = 3,         // armv8-a Advanced SIMD
  neon_dotprod = 4, // armv8.2-a + dotprod (sdot)
  sve = 5,          // armv8-a SVE (through Highway)
};
inline constexpr int kIsaCount = 6;

constexpr std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512_vnni: return "avx512_vnni";
    case Isa::neon: return "neon";
    case Isa::neon_dotprod: return "neon_dotprod";
    case Isa::sve: return "sve";
  }
  return "unknown";
}

namespace isa {
struct scalar { static constexpr Isa value = Isa::scalar; };
struct avx2 { static constexpr Isa value = Isa::avx2; };
struct avx512_vnni { static constexpr Isa value = Isa::avx512_vnni; };
struct neon { static constexpr Isa value = Isa::neon; };
struct neon_dotprod { static constexpr Isa value = Isa::neon_dotprod; };
struct sve { static constexpr Isa value = Isa::sve; };

// The best tag this translation unit's compiler flags allow.
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)
using native = avx512_vnni;
#elif defined(__AVX2__) && defined(__FMA__)
using native = avx2;
#elif defined(__ARM_FEATURE_SVE)
using native = sve;
#elif defined(__ARM_FEATURE_DOTPROD)
using native = neon_dotprod;
#elif defined(__ARM_NEON)
using native = neon;
#else
using native = scalar;
#endif
}  // namespace isa

}  // namespace chord
