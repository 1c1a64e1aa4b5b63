// CGodwit: the few things Swift cannot spell. Keep this header tiny: whole kernels stay in Swift.
#ifndef CGODWIT_H
#define CGODWIT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Feature bits shared by `godwit_build_features` and `godwit_cpu_features`.
#define GODWIT_FEATURE_AVX2 1u
#define GODWIT_FEATURE_FMA 2u
#define GODWIT_FEATURE_F16C 4u
#define GODWIT_FEATURE_AVX512F 8u
#define GODWIT_FEATURE_AVX512BW 16u
#define GODWIT_FEATURE_AVX512VNNI 32u
#define GODWIT_FEATURE_AVX512BF16 64u
#define GODWIT_FEATURE_AVXVNNI 128u

/// The instruction-set features this build was compiled to use (from the compiler's macros).
uint32_t godwit_build_features(void);

/// The features the running CPU has (cpuid). Compiled without -march so it runs on any x86-64.
uint32_t godwit_cpu_features(void);

/// Hint the hardware prefetcher (no-op where unsupported).
static inline void godwit_prefetch(const void *p) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p, 0, 3);
#endif
}

/// A spin-wait hint (x86 `pause`, arm64 `yield`).
static inline void godwit_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}


/// 16 f32 lanes, 16 i32 lanes and 16 bytes (imported into Swift as SIMD16<Float> / SIMD16<Int32> / SIMD16<UInt8>).
typedef uint8_t godwit_u8x16 __attribute__((ext_vector_type(16)));
typedef float godwit_f32x16 __attribute__((ext_vector_type(16)));
typedef int32_t godwit_i32x16 __attribute__((ext_vector_type(16)));

/// r[i] = table[index[i] & 15]: a 16-entry lookup (codebook centroids) in one `vpermps` where the
/// build targets AVX-512 (Swift has no dynamic lane shuffle); a lane loop elsewhere.
static inline godwit_f32x16 godwit_lookup16(godwit_f32x16 table, godwit_i32x16 index) {
#if defined(__AVX512F__)
    return __builtin_ia32_permvarsf512(table, index);
#else
    godwit_f32x16 r;
    for (int i = 0; i < 16; i++) r[i] = table[index[i] & 15];
    return r;
#endif
}

/// r[i] = acc[i] + (bit i of `bits` ? add : 0): one masked `vaddps` where the build targets AVX-512
/// (adds one bit plane of 16 codes, scaled, to a decoded tile row); a lane loop elsewhere.
static inline godwit_f32x16 godwit_mask_add16(godwit_f32x16 acc, uint16_t bits, float add) {
#if defined(__AVX512F__)
    return __builtin_ia32_selectps_512((unsigned short)bits, acc + add, acc);
#else
    godwit_f32x16 r = acc;
    for (int i = 0; i < 16; i++) if ((bits >> i) & 1) r[i] += add;
    return r;
#endif
}

/// r[i] = (index[i] & 31) < 16 ? low[index[i] & 15] : high[index[i] & 15]: a 32-entry lookup (the two
/// halves of a trellis level table) in one `vpermi2ps` where the build targets AVX-512; a lane loop elsewhere.
static inline godwit_f32x16 godwit_lookup32(godwit_f32x16 low, godwit_f32x16 high, godwit_i32x16 index) {
#if defined(__AVX512F__)
    return __builtin_ia32_vpermi2varps512(low, index, high);
#else
    godwit_f32x16 r;
    for (int i = 0; i < 16; i++) r[i] = (index[i] & 16) ? high[index[i] & 15] : low[index[i] & 15];
    return r;
#endif
}

/// r[i] = the low 32 bits of (hi[i]:lo[i]) >> (count[i] & 31), a funnel shift over two words (a trellis
/// state's window straddling them): one `vpshrdvd` where the build targets AVX512-VBMI2; a lane loop elsewhere.
static inline godwit_i32x16 godwit_funnel_right16(godwit_i32x16 lo, godwit_i32x16 hi, godwit_i32x16 count) {
#if defined(__AVX512VBMI2__)
    return __builtin_ia32_vpshrdvd512(lo, hi, count);
#else
    godwit_i32x16 r;
    for (int i = 0; i < 16; i++) {
        uint64_t w = ((uint64_t)(uint32_t)hi[i] << 32) | (uint32_t)lo[i];
        r[i] = (int32_t)(uint32_t)(w >> (count[i] & 31));
    }
    return r;
#endif
}

/// 64 bytes (16 little-endian 32-bit lanes) picked from a 16-byte string: r byte j = bytes[index[j] & 15]
/// (one `vpermb` where the build targets AVX512-VBMI; a lane loop elsewhere) — the 32-bit words holding
/// 16 trellis windows of one record chunk.
typedef uint8_t godwit_u8x64 __attribute__((ext_vector_type(64)));
static inline godwit_i32x16 godwit_pick_bytes16(godwit_u8x16 bytes, godwit_u8x64 index) {
#if defined(__AVX512VBMI__)
    typedef char godwit_qi64 __attribute__((vector_size(64)));
    godwit_u8x64 table = __builtin_shufflevector(bytes, bytes, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15);
    return (godwit_i32x16)__builtin_ia32_permvarqi512((godwit_qi64)table, (godwit_qi64)index);
#else
    godwit_u8x64 r;
    for (int j = 0; j < 64; j++) r[j] = bytes[index[j] & 15];
    return (godwit_i32x16)r;
#endif
}

/// The low byte of each of 16 lanes (`vpmovdb` where the build targets AVX-512; Swift's lane loops and
/// conversion initializers compiled to byte inserts here).
static inline godwit_u8x16 godwit_narrow16(godwit_i32x16 v) {
    return __builtin_convertvector(v, godwit_u8x16);
}

#ifdef __cplusplus
}
#endif
#endif
