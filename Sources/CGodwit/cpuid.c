// Run-time CPU features. This file must not depend on the build's -march: the attribute below
// pins it to baseline x86-64 so the check itself never executes an instruction the CPU lacks.
#include "CGodwit.h"

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("arch=x86-64")))
uint32_t godwit_cpu_features(void) {
    __builtin_cpu_init();
    uint32_t f = 0;
    if (__builtin_cpu_supports("avx2")) f |= GODWIT_FEATURE_AVX2;
    if (__builtin_cpu_supports("fma")) f |= GODWIT_FEATURE_FMA;
    if (__builtin_cpu_supports("f16c")) f |= GODWIT_FEATURE_F16C;
    if (__builtin_cpu_supports("avx512f")) f |= GODWIT_FEATURE_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) f |= GODWIT_FEATURE_AVX512BW;
    if (__builtin_cpu_supports("avx512vnni")) f |= GODWIT_FEATURE_AVX512VNNI;
    if (__builtin_cpu_supports("avx512bf16")) f |= GODWIT_FEATURE_AVX512BF16;
    if (__builtin_cpu_supports("avxvnni")) f |= GODWIT_FEATURE_AVXVNNI;
    return f;
}
#else
uint32_t godwit_cpu_features(void) { return 0; }
#endif
