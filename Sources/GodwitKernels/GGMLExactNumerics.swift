// The numerics mode of a session: Godwit's own kernels (`fast`) or a reproduction of llama.cpp's
// CPU float operations in llama.cpp's order (`ggml`).
// Source: llama.cpp's CPU backend (ggml/src/ggml-cpu: arch/x86/quants.c, vec.h/vec.cpp, ops.cpp,
// llamafile/sgemm.cpp; src/llama-graph.cpp, src/models/llama.cpp) as built with -march=native on
// an AVX-512 machine without AVX512-FP16 (Zen 4): AVX2 quantized dot products (VNNI lanes),
// AVX-512 `ggml_v_expf`, f16 dot products with 16-lane AVX-512 vectors.
// Deviations: see GGMLExactKernels.swift (what is reproduced and what is not).

/// How a session computes: Godwit's tuned kernels or llama.cpp's operation order.
///
/// - `fast`: the default. Kernels tuned for speed with a canonical order of operations that makes
///   a prompt batch and token-by-token decoding bitwise equal (flash-attention style attention).
/// - `ggml`: reproduces the float operations of llama.cpp's CPU backend in llama.cpp's order, so
///   greedy decoding follows llama.cpp token for token and perplexities equal llama.cpp's. The
///   attention follows the cache configuration's `flashAttention` as llama.cpp follows `-fa`: off,
///   its full-softmax attention (f16/f32 caches; KVCache+ExactAttention.swift); on, its
///   flash-attention kernels (tiled for f16/f32 batches of 64+, one-chunk otherwise; q8_0/q4_0/q5_0
///   keys with any ggml block or f16 values, Hadamard rotation included). Slower; a prompt batch
///   and decoding differ the way they do in llama.cpp (e.g. without flash attention the f16
///   products use tinyBLAS for batches of 2 or more tokens and `ggml_vec_dot_f16` for one; q4_K
///   products use the repacked gemm for all but the last n % 4 rows, q6_K the tiled kernel from
///   8 rows). Weight types without an exact product here (q5_K and other k-quants, i-quants) fall
///   back to the `fast` kernels; other caches (bf16, q4_1/q5_1/iq4_nl keys, Godwit's schemes) use
///   the `fast` attention.
public enum Numerics: String, Sendable, CaseIterable, Equatable {
    case fast
    case ggml
}
