// Attention without flash attention, in llama.cpp's exact float order (`-fa off` on f32/f16 caches,
// either numerics).
// Source: llama.cpp src/llama-graph.cpp `build_attn_mha` (flash attention off): kq = mul_mat(k, q)
// with q converted to the K cache type (f16: ggml_cpu_fp32_to_fp16, round to nearest even);
// kq = soft_max_ext(kq, mask, scale); kqv = mul_mat(v, kq) with kq converted to the V cache type.
// ggml-cpu.c `ggml_compute_forward_mul_mat`: one query token → ggml_vec_dot_f16 per element;
// 2+ tokens → llamafile/sgemm.cpp tinyBLAS (AVX-512: 16-lane fma chains, then
// _mm512_reduce_add_ps). ops.cpp `ggml_compute_forward_soft_max_f32`: w = kq·scale (+ mask: 0 or
// −inf), max, e = ggml_v_expf(w − max) 16 cells at a time with Σ += double(reduce_add(e)),
// p = e · float(1/Σ). The cache view spans n_kv = max(256, pad(used, 256)) cells, cell = position
// (one sequence from an empty cache), so every cached position lies in whole 16- and 64-cell
// groups and masked cells add exact zeros.
// Layout: per task (KV head, block of ≤ 16 tokens) the block's keys and values are read from the
// store as floats (exact for f16/f32): K, V [span, dim]; scores [16·groups]; value accumulators
// [64 or 16 residues, valueDim].
// Deviations: ALiBi, soft-capping and attention sinks are not supported (no model here uses them
// with this path); bf16 caches keep the flash path; f32 caches use the f16 orders without the
// roundings (llama.cpp's ggml_vec_dot_f32 / f32 tinyBLAS orders were not checked).
import GodwitKernels

extension KVCache {
    /// Element type of a float cache for the exact path: 2 = f16, 4 = f32, nil otherwise.
    static func exactElementBytes(_ scheme: any KVScheme) -> Int? {
        switch scheme.name { case "f16": 2; case "f32": 4; default: nil }
    }

    /// Whether `attend` runs the flash-attention-off path on `layer`: `flashAttention == false`
    /// (either numerics) and f32/f16 K and V caches. (With flash attention on, numerics `ggml` takes
    /// llama.cpp's flash-attention kernels instead: KVCache+GGMLFlashF16.swift.)
    public func usesExactAttention(layer index: Int) -> Bool {
        guard !configuration.flashAttention else { return false }
        let l = layers[index]
        return Self.exactElementBytes(l.keyScheme) != nil && Self.exactElementBytes(l.valueScheme) != nil
            && l.keyRotation == nil && l.valueRotation == nil
    }

    /// Whether the layer's key store takes keys after RoPE (the model may then apply RoPE itself
    /// and pass no angles to `write`).
    public func keysArePostRoPE(layer index: Int) -> Bool { layers[index].keys.keyInput == .postRoPE }

    /// Flash-attention-off attention, same contract as `attend`.
    func attendExact(layer index: Int, queries: UnsafePointer<Float>, queryStride: Int, heads: Int,
                     tokens n: Int, firstPosition: Int, scale: Float,
                     into out: UnsafeMutablePointer<Float>, outStride: Int, pool: ThreadPool) {
        let layer = layers[index]
        let spec = layer.spec
        let kvHeads = spec.kvHeads, group = heads / kvHeads, dk = spec.keyDim, dv = spec.valueDim
        let roundQ = Self.exactElementBytes(layer.keyScheme) == 2
        let roundP = Self.exactElementBytes(layer.valueScheme) == 2
        // llamafile_sgemm takes batches of 2+ tokens when k % 16 == 0 (k = dk for KQ, n_kv for KQV).
        let tinyKQ = n >= 2 && dk % 16 == 0
        let tinyKQV = n >= 2
        let block = 16
        let blocks = (n + block - 1) / block
        pool.parallelFor(kvHeads * blocks) { task, _ in
            let h = task / blocks, b = task % blocks
            let t0 = b * block, t1 = min(n, t0 + block)
            let spanLo = spec.window.map { max(0, firstPosition + t0 - $0 + 1) } ?? 0
            let spanHi = firstPosition + t1          // exclusive
            let span = spanHi - spanLo
            let groups = (spanHi + 15) / 16 - spanLo / 16 + 1
            let residues = tinyKQV ? 16 : 64
            let floats = span * (dk + dv) + dk + 16 * groups + residues * dv + 64
            withUnsafeTemporaryAllocation(of: Float.self, capacity: floats) { buf in
                let K = buf.baseAddress!, V = K + span * dk, q = V + span * dv
                let sc = q + dk, A = sc + 16 * groups
                layer.keys.read(head: h, positions: spanLo..<spanHi, into: K)
                layer.values.read(head: h, positions: spanLo..<spanHi, into: V)
                for t in t0..<t1 {
                    let pos = firstPosition + t
                    let lo = spec.window.map { max(0, pos - $0 + 1) } ?? 0
                    let gLo = lo / 16, gHi = pos / 16, base = gLo * 16
                    let cells = (gHi - gLo + 1) * 16
                    for g in 0..<group {
                        let src = queries + t * queryStride + (h * group + g) * dk
                        for i in 0..<dk { q[i] = roundQ ? GGMLExact.roundF16(src[i]) : src[i] }
                        // kq·scale over the valid cells; masked cells −inf.
                        var m = -Float.infinity
                        for j in 0..<cells {
                            let p = base + j
                            if p < lo || p > pos { sc[j] = -.infinity; continue }
                            let k = K + (p - spanLo) * dk
                            let kq = tinyKQ ? GGMLExact.dotF16TinyBLAS(q, k, dk) : GGMLExact.dotF16Vec(q, k, dk)
                            sc[j] = kq * scale
                            m = max(m, sc[j])
                        }
                        // exp and Σ in double, 16 cells at a time (masked cells are exact zeros).
                        var sum: Double = 0
                        let raw = UnsafeMutableRawPointer(sc)
                        for gi in 0..<(cells / 16) {
                            let w = raw.loadUnaligned(fromByteOffset: 64 * gi, as: SIMD16<Float>.self)
                            let valid = w .> SIMD16<Float>(repeating: -.infinity)
                            let safe = w.replacing(with: m, where: .!valid)
                            let e = GGMLExact.expf(safe - SIMD16<Float>(repeating: m)).replacing(with: 0, where: .!valid)
                            raw.storeBytes(of: e, toByteOffset: 64 * gi, as: SIMD16<Float>.self)
                            sum += Double(GGMLExact.reduceAdd(e))
                        }
                        let inv = Float(1.0 / sum)
                        // Σ p·v per residue class of the cell index, vectorized over the value dims.
                        A.initialize(repeating: 0, count: residues * dv)
                        let ra = UnsafeMutableRawPointer(A)
                        for p in lo...pos {
                            var pr = sc[p - base] * inv
                            if roundP { pr = GGMLExact.roundF16(pr) }
                            let r = p % residues
                            let v = UnsafeRawPointer(V + (p - spanLo) * dv)
                            let pv = SIMD16<Float>(repeating: pr)
                            var i = 0
                            while i + 16 <= dv {
                                let o = 4 * (r * dv + i)
                                ra.storeBytes(of: ra.loadUnaligned(fromByteOffset: o, as: SIMD16<Float>.self)
                                    .addingProduct(pv, v.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)),
                                              toByteOffset: o, as: SIMD16<Float>.self)
                                i += 16
                            }
                            while i < dv { A[r * dv + i] = GGMLExact.fma(pr, V[(p - spanLo) * dv + i], A[r * dv + i]); i += 1 }
                        }
                        let dst = out + t * outStride + (h * group + g) * dv
                        Self.reduceResidues(A, residues: residues, dv: dv, into: dst)
                    }
                }
            }
        }
    }

    /// Reduces the residue accumulators A [residues, dv] to dst [dv]: 64 residues (ggml_vec_dot_f16:
    /// lane l of accumulator j is residue 16j + l; (s0+s2)+(s1+s3), then the reduce_add tree over
    /// l) or 16 (tinyBLAS: the reduce_add tree over l). Done in place in A.
    static func reduceResidues(_ A: UnsafeMutablePointer<Float>, residues: Int, dv: Int, into dst: UnsafeMutablePointer<Float>) {
        @inline(__always) func addRow(_ a: Int, _ b: Int) {   // A[a] += A[b]
            for i in 0..<dv { A[a * dv + i] = A[a * dv + i] + A[b * dv + i] }
        }
        if residues == 64 {
            for l in 0..<16 {
                addRow(l, 32 + l); addRow(16 + l, 48 + l); addRow(l, 16 + l)
            }
        }
        for w in [8, 4, 2, 1] { for l in 0..<w { addRow(l, l + w) } }
        dst.update(from: A, count: dv)
    }
}
