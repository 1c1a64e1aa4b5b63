// Flash attention on f16/f32 caches in llama.cpp's exact float order (Numerics.ggml, flash attention
// on — llama.cpp's default on CPU).
// Source: llama.cpp ggml/src/ggml-cpu/ops.cpp `ggml_compute_forward_flash_attn_ext_f16` →
// `_tiled` (batches of ≥ GGML_FA_TILE_Q = 64 query tokens) or `_one_chunk` (smaller batches),
// simd-gemm.h `simd_gemm` (per element one FMA chain over k, in k order), vec.cpp
// `ggml_vec_soft_max_f32` (ggml_v_expf 16 lanes, Σ in double), src/llama-graph.cpp `build_attn_mha`
// (an f32 cache is cast to f16 before flash attention) — llama-cpp-python 0.3.36 vendor tree.
// Tiled, per query row, over 64-cell tiles aligned to cell 0 that hold a visible cell:
//   kq_j = (Σ_d fma chain q_d·k_jd, q in f32) · scale, masked cells −∞
//   M' = max(M, max_j kq_j); if M' > M: ms = expf(M − M'), acc ← acc·ms, S ← S·ms;  M = M'
//   e_j = ggml_v_expf(kq_j − M) (masked: 0), S = float(double(S) + Σ_groups of 16 double(reduce_add e))
//   acc_d = fma chain over j in order: fma(e_j, v_jd, acc_d)
//   out = acc · (1/S)
// One chunk (batches < 64): `attendGGMLFlash` (KVCache+GGMLFlashAttention.swift) with q rounded to
// f16, kq = ggml_vec_dot_f16 and llama.cpp's f16 accumulator (VKQ16).
// Deviations: a single decoded token over ≥ 512 cells takes llama.cpp's split-KV path (cells split
// over the threads, partials merged; its result depends on the thread count) — here one chunk;
// sliding-window rings are visited in position order (see KVCache+GGMLFlashAttention.swift).
// Layout per task (KV head, block of ≤ 64 tokens): K transposed per 64-cell tile [tiles, dk, 64]
// f32, V [tiles·64, dv] f32 (f16 values), key rows as read [span, dk], q [dk], kq [64], acc [dv].
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GodwitKernels

extension KVCache {
    /// Whether `attend` runs llama.cpp's f16 flash attention exactly on `layer`: numerics `ggml`,
    /// flash attention on, f16/f32 keys and values, no rotation.
    public func usesGGMLFlashF16(layer index: Int) -> Bool {
        guard configuration.numerics == .ggml, configuration.flashAttention else { return false }
        let l = layers[index]
        return Self.exactElementBytes(l.keyScheme) != nil && Self.exactElementBytes(l.valueScheme) != nil
            && l.keyRotation == nil && l.valueRotation == nil
    }

    func attendGGMLFlashF16(layer index: Int, queries: UnsafePointer<Float>, queryStride: Int, heads: Int,
                            tokens n: Int, firstPosition: Int, scale: Float,
                            into out: UnsafeMutablePointer<Float>, outStride: Int, pool: ThreadPool) {
        guard n >= 64 else {     // llama.cpp's one-chunk kernel (f16 query, ggml_vec_dot_f16, f16 accumulator)
            attendGGMLFlash(layer: index, queries: queries, queryStride: queryStride, heads: heads, tokens: n,
                            firstPosition: firstPosition, scale: scale, into: out, outStride: outStride, pool: pool)
            return
        }
        let layer = layers[index]
        let spec = layer.spec
        let kvHeads = spec.kvHeads, group = heads / kvHeads, dk = spec.keyDim, dv = spec.valueDim
        let block = 64, T = 64
        let blocks = (n + block - 1) / block
        pool.parallelFor(kvHeads * blocks) { task, _ in
            let h = task / blocks, b = task % blocks
            let t0 = b * block, t1 = min(n, t0 + block)
            let spanLo = spec.window.map { max(0, firstPosition + t0 - $0 + 1) } ?? 0
            let spanHi = firstPosition + t1
            let tileLo = spanLo / T, tileHi = (spanHi - 1) / T          // inclusive
            let cells = (tileHi - tileLo + 1) * T, base = tileLo * T
            let floats = cells * (dk + dv) + (spanHi - spanLo) * dk + dk + T + dv + 16
            withUnsafeTemporaryAllocation(of: Float.self, capacity: floats) { buf in
                let Kt = buf.baseAddress!, V = Kt + cells * dk
                let q = V + cells * dv, kq = q + dk, acc = kq + T, rows = acc + dv
                // Key rows of the span (f32 caches rounded to f16, as llama.cpp casts them); the
                // tiled kernel reads them transposed per tile: [tile, dk, 64].
                let roundK = Self.exactElementBytes(layer.keyScheme) == 4
                layer.keys.read(head: h, positions: spanLo..<spanHi, into: rows)
                for p in spanLo..<spanHi {
                    let c = p - base, tile = Kt + (c / T) * dk * T, lane = c % T
                    let row = rows + (p - spanLo) * dk
                    for d in 0..<dk { tile[d * T + lane] = roundK ? GGMLExact.roundF16(row[d]) : row[d] }
                }
                layer.values.read(head: h, positions: spanLo..<spanHi, into: V + (spanLo - base) * dv)
                if Self.exactElementBytes(layer.valueScheme) == 4 {
                    for i in (spanLo - base) * dv..<(spanHi - base) * dv { V[i] = GGMLExact.roundF16(V[i]) }
                }
                for t in t0..<t1 {
                    let pos = firstPosition + t
                    let lo = spec.window.map { max(0, pos - $0 + 1) } ?? 0
                    for g in 0..<group {
                        let src = queries + t * queryStride + (h * group + g) * dk
                        let dst = out + t * outStride + (h * group + g) * dv
                        q.update(from: src, count: dk)
                        Self.tiledRow(q: q, Kt: Kt, V: V, base: base, lo: lo, pos: pos, dk: dk, dv: dv,
                                      scale: scale, kq: kq, acc: acc, out: dst)
                    }
                }
            }
        }
    }

    /// One query row of `ggml_compute_forward_flash_attn_ext_tiled`. Kt: [tiles, dk, 64] from cell `base`.
    static func tiledRow(q: UnsafePointer<Float>, Kt: UnsafePointer<Float>, V: UnsafePointer<Float>, base: Int,
                         lo: Int, pos: Int, dk: Int, dv: Int, scale: Float,
                         kq: UnsafeMutablePointer<Float>, acc: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>) {
        typealias F16 = SIMD16<Float>
        let T = 64
        acc.initialize(repeating: 0, count: dv)
        var M = -Float.infinity, S: Float = 0
        let raw = UnsafeMutableRawPointer(kq)
        for c in (lo / T)...(pos / T) {
            let tile = UnsafeRawPointer(Kt + (c - base / T) * dk * T)
            // simd_gemm: per cell one FMA chain over d.
            var a0 = F16(), a1 = F16(), a2 = F16(), a3 = F16()
            for d in 0..<dk {
                let qd = F16(repeating: q[d]), o = d * T * 4
                a0 = a0.addingProduct(tile.load(fromByteOffset: o, as: F16.self), qd)
                a1 = a1.addingProduct(tile.load(fromByteOffset: o + 64, as: F16.self), qd)
                a2 = a2.addingProduct(tile.load(fromByteOffset: o + 128, as: F16.self), qd)
                a3 = a3.addingProduct(tile.load(fromByteOffset: o + 192, as: F16.self), qd)
            }
            let s = F16(repeating: scale)
            raw.storeBytes(of: a0 * s, toByteOffset: 0, as: F16.self)
            raw.storeBytes(of: a1 * s, toByteOffset: 64, as: F16.self)
            raw.storeBytes(of: a2 * s, toByteOffset: 128, as: F16.self)
            raw.storeBytes(of: a3 * s, toByteOffset: 192, as: F16.self)
            let first = c * T
            var tileMax = -Float.infinity
            for j in 0..<T {
                let p = first + j
                if p < lo || p > pos { kq[j] = -.infinity } else { tileMax = max(tileMax, kq[j]) }
            }
            let newMax = max(M, tileMax)
            if newMax > M {
                let ms = expf(M - newMax)
                for i in 0..<dv { acc[i] *= ms }
                S *= ms
            }
            M = newMax
            var sum: Double = 0
            for gi in 0..<4 {
                let w = raw.load(fromByteOffset: 64 * gi, as: F16.self)
                let valid = w .> F16(repeating: -.infinity)
                let e = GGMLExact.expf(w.replacing(with: M, where: .!valid) - F16(repeating: M)).replacing(with: 0, where: .!valid)
                raw.storeBytes(of: e, toByteOffset: 64 * gi, as: F16.self)
                sum += Double(GGMLExact.reduceAdd(e))
            }
            S = Float(Double(S) + sum)
            // simd_gemm: acc_d = FMA chain over the tile's cells in order (masked cells add e = 0).
            let ra = UnsafeMutableRawPointer(acc)
            for j in max(lo, first)...min(pos, first + T - 1) {
                let e = F16(repeating: kq[j - first])
                let v = UnsafeRawPointer(V + (j - base) * dv)
                var i = 0
                while i + 16 <= dv {
                    ra.storeBytes(of: ra.load(fromByteOffset: 4 * i, as: F16.self)
                        .addingProduct(e, v.load(fromByteOffset: 4 * i, as: F16.self)), toByteOffset: 4 * i, as: F16.self)
                    i += 16
                }
                while i < dv { acc[i] = GGMLExact.fma(kq[j - first], V[(j - base) * dv + i], acc[i]); i += 1 }
            }
        }
        let inv: Float = S == 0 ? 0 : 1 / S
        for i in 0..<dv { out[i] = acc[i] * inv }
    }
}
