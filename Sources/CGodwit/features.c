// Build-time feature macros, compiled with the same CPU flags as the Swift kernels.
#include "CGodwit.h"

uint32_t godwit_build_features(void) {
    uint32_t f = 0;
#ifdef __AVX2__
    f |= GODWIT_FEATURE_AVX2;
#endif
#ifdef __FMA__
    f |= GODWIT_FEATURE_FMA;
#endif
#ifdef __F16C__
    f |= GODWIT_FEATURE_F16C;
#endif
#ifdef __AVX512F__
    f |= GODWIT_FEATURE_AVX512F;
#endif
#ifdef __AVX512BW__
    f |= GODWIT_FEATURE_AVX512BW;
#endif
#ifdef __AVX512VNNI__
    f |= GODWIT_FEATURE_AVX512VNNI;
#endif
#ifdef __AVX512BF16__
    f |= GODWIT_FEATURE_AVX512BF16;
#endif
#ifdef __AVXVNNI__
    f |= GODWIT_FEATURE_AVXVNNI;
#endif
    return f;
}
