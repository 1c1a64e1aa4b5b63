// Flash attention on the ggml block caches in llama.cpp's exact float order (Numerics.ggml with
// flash attention on, the only way llama.cpp runs a quantized V cache).
// Source: llama.cpp ggml/src/ggml-cpu/ops.cpp `ggml_compute_forward_flash_attn_ext_f16_one_chunk`
// (the path every quantized K takes: the tiled and split-KV paths need f16/f32 K and V), vec.h
// `ggml_vec_mad_f32/_f16`, `ggml_vec_scale_f32/_f16`; src/llama-graph.cpp `build_attn` and
// ops.cpp `ggml_compute_forward_fwht` (the Hadamard rotations) — llama-cpp-python 0.3.36 vendor tree.
// Per query row (token, query head):
//   q ← H·q (K rotation, FWHT scaled first), Q = quantize_row_q8_0(q) (x86 AVX quantizer);
//   f16/f32 keys (beside quantized values): Q = f16(q), s below = ggml_vec_dot_f16
//   M = −∞, S = 0, acc = 0 (f32, or f16 when V is f16: VKQ16)
//   for each visible cell in cell order (= position order here):
//     s = vec_dot_<K>_q8_0(K row, Q) · scale
//     s > M:  M = s, ms = expf(M_old − M), acc ← acc·ms        (vs = 1)
//     else:   vs = expf(s − M)                                  (ms = 1)
//     acc ← fma(v, vs, acc)   (v = dequantized V row; f16 acc rounds to f16 after each step)
//     S = fma(S, ms, vs)      (GCC contracts `S*ms + vs`: ops.cpp is built with -ffp-contract=fast)
//   out = acc · (1/S), then out ← H₆₄·out per 64-block (V rotation back).
// expf is the C library's (glibc), as in ggml. The rotation scale 1/√n is applied before the
// butterfly, as ggml's FWHT does (HadamardRotation does the same).
// Deviations: llama.cpp visits a sliding-window layer's ring in cell order; once positions wrap
// (context beyond window + batch) that order differs from the position order used here. Key types
// q4_1/q5_1/iq4_nl/bf16 (their vec_dots are not reproduced), and f32/bf16 or Godwit-scheme value
// stores beside block keys, fall back to the fast attention.
// Layout per task (KV head, block of ≤ 16 tokens): V [span, dv] f32, q [dk] f32, acc [dv] f32, then
// K rows [span, kRowBytes] and V rows [span, vRowBytes] as raw blocks, and q's q8_0 row.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GodwitGGUF
import GodwitKernels

extension KVCache {
    /// The K types whose llama.cpp vec_dot against a q8_0 query is reproduced.
    static func ggmlFlashKeyDot(_ type: GGMLType) -> ((UnsafeRawPointer, UnsafeRawPointer, Int) -> Float)? {
        switch type {
        case .q8_0: { GGMLExact.dotQ8_0Q8_0($0, $1, blocks: $2) }
        case .q4_0: { GGMLExact.dotQ4_0Q8_0($0, $1, blocks: $2) }
        case .q5_0: { GGMLExact.dotQ5_0Q8_0($0, $1, blocks: $2) }
        default: nil
        }
    }

    /// Whether `attend` runs llama.cpp's one-chunk flash attention exactly on `layer`: numerics
    /// `ggml`, flash attention on, keys q8_0/q4_0/q5_0 with ggml block or f16 values, or f16/f32
    /// keys with ggml block values (f16/f16 is KVCache+GGMLFlashF16.swift's), and no rotation other
    /// than llama.cpp's Hadamard.
    public func usesGGMLFlashAttention(layer index: Int) -> Bool {
        guard configuration.numerics == .ggml, configuration.flashAttention else { return false }
        let l = layers[index]
        let blockKeys = (l.keys as? any GGMLBlockRows).map { Self.ggmlFlashKeyDot($0.blockType) != nil } ?? false
        let floatKeys = Self.exactElementBytes(l.keyScheme) != nil
        guard blockKeys && l.spec.keyDim % 32 == 0 || floatKeys && l.values is any GGMLBlockRows else { return false }
        let valuesOK = l.values is any GGMLBlockRows || Self.exactElementBytes(l.valueScheme) == 2
        let rotationsOK = (l.keyRotation == nil || l.keyRotation is HadamardRotation)
            && (l.valueRotation == nil || l.valueRotation is HadamardRotation)
        return valuesOK && rotationsOK
    }

    /// llama.cpp's one-chunk flash attention, same contract as `attend`. Also runs f16/f32 K and V
    /// batches of fewer than 64 tokens for `attendGGMLFlashF16`.
    func attendGGMLFlash(layer index: Int, queries: UnsafePointer<Float>, queryStride: Int, heads: Int,
                         tokens n: Int, firstPosition: Int, scale: Float,
                         into out: UnsafeMutablePointer<Float>, outStride: Int, pool: ThreadPool) {
        let layer = layers[index]
        let spec = layer.spec
        let kvHeads = spec.kvHeads, group = heads / kvHeads, dk = spec.keyDim, dv = spec.valueDim
        // Block keys: a q8_0 query and the type's vec_dot. f16/f32 keys (cast to f16 as llama.cpp
        // does): an f16-rounded query and ggml_vec_dot_f16.
        let blockKeys = layer.keys as? any GGMLBlockRows
        let dot = blockKeys.flatMap { Self.ggmlFlashKeyDot($0.blockType) }
        let kBlocks = dk / 32
        let kRowBytes = blockKeys.map { kBlocks * $0.blockType.typeSize } ?? 4 * dk
        let qRowBytes = blockKeys == nil ? 4 * dk : kBlocks * GGMLType.q8_0.typeSize
        let blockValues = layer.values as? any GGMLBlockRows
        let halfAcc = blockValues == nil          // f16/f32 V: llama.cpp's VKQ16 accumulator
        let vRowBytes = blockValues.map { dv / 32 * $0.blockType.typeSize } ?? 0
        let block = 16
        let blocks = (n + block - 1) / block
        pool.parallelFor(kvHeads * blocks) { task, _ in
            let h = task / blocks, b = task % blocks
            let t0 = b * block, t1 = min(n, t0 + block)
            let spanLo = spec.window.map { max(0, firstPosition + t0 - $0 + 1) } ?? 0
            let spanHi = firstPosition + t1
            let span = spanHi - spanLo
            let floats = span * dv + dk + dv
            let bytes = 4 * floats + span * (kRowBytes + vRowBytes) + qRowBytes
            withUnsafeTemporaryAllocation(byteCount: bytes, alignment: 64) { buf in
                let V = buf.baseAddress!.bindMemory(to: Float.self, capacity: floats)
                let q = V + span * dv, acc = q + dk
                let K = UnsafeMutableRawPointer(acc + dv)
                let rawV = K + span * kRowBytes
                let Q = rawV + span * vRowBytes
                if let blockKeys {
                    blockKeys.copyBlockRows(head: h, positions: spanLo..<spanHi, into: K)
                } else {
                    let k = K.bindMemory(to: Float.self, capacity: span * dk)
                    layer.keys.read(head: h, positions: spanLo..<spanHi, into: k)
                    for i in 0..<span * dk { k[i] = GGMLExact.roundF16(k[i]) }
                }
                if let bv = blockValues {
                    bv.copyBlockRows(head: h, positions: spanLo..<spanHi, into: rawV)
                    for j in 0..<span {
                        try! dequantizeRow(type: bv.blockType, src: UnsafeRawPointer(rawV + j * vRowBytes), dst: V + j * dv, count: dv)
                    }
                } else {
                    layer.values.read(head: h, positions: spanLo..<spanHi, into: V)
                    if Self.exactElementBytes(layer.valueScheme) == 4 {     // f32 cast to f16, as llama.cpp does
                        for i in 0..<span * dv { V[i] = GGMLExact.roundF16(V[i]) }
                    }
                }
                for t in t0..<t1 {
                    let pos = firstPosition + t
                    let lo = spec.window.map { max(0, pos - $0 + 1) } ?? 0
                    for g in 0..<group {
                        let src = queries + t * queryStride + (h * group + g) * dk
                        q.update(from: src, count: dk)
                        layer.keyRotation?.apply(q, dim: dk)
                        if dot != nil {
                            try! quantizeRowCPU(type: .q8_0, src: q, dst: Q, count: dk)
                        } else {
                            let qh = Q.bindMemory(to: Float.self, capacity: dk)
                            for i in 0..<dk { qh[i] = GGMLExact.roundF16(q[i]) }
                        }
                        acc.initialize(repeating: 0, count: dv)
                        var M = -Float.infinity, S: Float = 0
                        for p in lo...pos {
                            let row = UnsafeRawPointer(K + (p - spanLo) * kRowBytes)
                            let s = (dot?(row, UnsafeRawPointer(Q), kBlocks)
                                     ?? GGMLExact.dotF16Vec(row.assumingMemoryBound(to: Float.self),
                                                            UnsafeRawPointer(Q).assumingMemoryBound(to: Float.self), dk)) * scale
                            var ms: Float = 1, vs: Float = 1
                            if s > M {
                                let old = M
                                M = s
                                ms = expf(old - M)
                                Self.scale(acc, dv, by: ms, roundToHalf: halfAcc)
                            } else {
                                vs = expf(s - M)
                            }
                            Self.mad(acc, V + (p - spanLo) * dv, dv, vs, roundToHalf: halfAcc)
                            S = GGMLExact.fma(S, ms, vs)
                        }
                        let dst = out + t * outStride + (h * group + g) * dv
                        let inv: Float = S == 0 ? 0 : 1 / S
                        for i in 0..<dv { dst[i] = acc[i] * inv }
                        layer.valueRotation?.applyInverse(dst, dim: dv)
                    }
                }
            }
        }
    }

    /// ggml_vec_scale_f32 / _f16: y ← y·v (f16: rounded back to f16).
    @inline(__always)
    static func scale(_ y: UnsafeMutablePointer<Float>, _ n: Int, by v: Float, roundToHalf: Bool) {
        for i in 0..<n { y[i] = roundToHalf ? GGMLExact.roundF16(y[i] * v) : y[i] * v }
    }

    /// ggml_vec_mad_f32 / _f16: y ← fma(x, v, y) (f16: rounded back to f16).
    @inline(__always)
    static func mad(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int, _ v: Float, roundToHalf: Bool) {
        for i in 0..<n {
            let r = GGMLExact.fma(x[i], v, y[i])
            y[i] = roundToHalf ? GGMLExact.roundF16(r) : r
        }
    }
}
