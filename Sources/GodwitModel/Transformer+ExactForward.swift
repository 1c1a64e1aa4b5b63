// The forward pass in llama.cpp's exact float order (Numerics.ggml): the graph of
// Transformer+Forward.swift with every float operation replaced by its llama.cpp CPU twin.
// Source: llama.cpp src/models/llama.cpp (graph order), src/llama-graph.cpp (build_norm, build_ffn
// with LLM_FFN_SILU/PAR → ggml_swiglu_split, build_attn_mha without flash attention), ggml-cpu
// kernels as listed in GodwitKernels/GGMLExact*.swift and GodwitKVCache/KVCache+ExactAttention.swift.
// Per layer: RMSNorm (Σx² in double) → q8_1/q8_0 activations (ActivationBuffer already rounds like
// quantize_row_q8_1/q8_0) → Q,K,V by per-(row, token) vec_dots → RoPE with the compiler's FMA
// contraction on Q and K (keys are roped here and written without angles) → f16 cache →
// attention with f16 products and a double-sum softmax → output projection → residual → RMSNorm →
// gate, up → ggml_vec_swiglu_f32 (AVX-512 ggml_v_expf) or ggml_vec_geglu_f32 (f16 GELU table)
// → down → residual. In the last layer only the output rows go through the feed-forward block
// (llama.cpp's `inp_out_ids` get_rows after the attention).
// Deviations: weight types without an exact product (q5_K, other k- and i-quants, float weights)
// use the fast kernels.
import GodwitKernels
import GodwitKVCache

extension Transformer {
    /// `forward` in ggml numerics (called by `forward` after its checks).
    func forwardGGML(tokens: [Int32], state s: InferenceState, logitRows: Range<Int>, logits: UnsafeMutablePointer<Float>) {
        let n = tokens.count
        let c = config, w = weights
        let first = s.cache.count
        let e = c.embeddingLength
        for (t, token) in tokens.enumerated() {
            w.tokenEmbedding.dequantizeRow(Int(token), into: s.x + t * e)
            if c.embeddingScale != 1 { VectorOps.scale(s.x + t * e, by: c.embeddingScale, e) }
        }
        for (i, rope) in s.ropes.enumerated() {
            let half = rope.dimensions / 2
            for t in 0..<n { rope.table(position: first + t, cos: s.ropeCos[i] + t * half, sin: s.ropeSin[i] + t * half) }
        }
        let rows = logitRows.count
        for l in 0..<c.layerCount {
            attentionGGML(l, tokens: n, firstPosition: first, state: s)
            if l + 1 < c.layerCount {
                feedForwardGGML(l, tokens: n, state: s)
            } else {
                // llama.cpp's graph keeps only the output rows (`inp_out_ids`) after the last layer's
                // attention, so its feed-forward multiplies `rows` activations, not n: this matters
                // where the product's order depends on the batch (q4_K gemm/gemv, q6_K tiled/vec_dot).
                for (i, t) in logitRows.enumerated() where i != t {
                    (s.x + i * e).update(from: s.x + t * e, count: e)
                }
                if rows > 0 { feedForwardGGML(l, tokens: rows, state: s) }
            }
        }
        s.cache.commit(firstPosition: first, tokens: n)

        guard rows > 0 else { return }
        for i in 0..<rows {
            GGMLExact.rmsNorm(s.x + i * e, weight: w.outputNorm.pointer, into: s.xn + i * e, count: e, eps: c.rmsEpsilon)
        }
        let act = s.activation(for: w.output)
        act.quantize(s.xn, rows: rows, rowStride: e)
        multiplyGGML([MatMulJob(weight: w.output, input: act, output: logits, outputStride: c.vocabularySize)], pool: s.pool, tokens: rows)
    }

    /// The attention block of layer l for n tokens: s.x += attention(s.x).
    func attentionGGML(_ l: Int, tokens n: Int, firstPosition first: Int, state s: InferenceState) {
        let c = config, lw = weights.layers[l]
        let e = c.embeddingLength
        let qw = c.headCount * c.keyLength, kw = c.kvHeadCount * c.keyLength, vw = c.kvHeadCount * c.valueLength
        let eps = c.rmsEpsilon

        // Attention block.
        for t in 0..<n {
            GGMLExact.rmsNorm(s.x + t * e, weight: lw.attentionNorm.pointer, into: s.xn + t * e, count: e, eps: eps)
        }
        let aq = s.activation(for: lw.query), ak = s.activation(for: lw.key), av = s.activation(for: lw.value)
        aq.quantize(s.xn, rows: n, rowStride: e)
        if ak !== aq { ak.quantize(s.xn, rows: n, rowStride: e) }
        if av !== aq && av !== ak { av.quantize(s.xn, rows: n, rowStride: e) }
        multiplyGGML([MatMulJob(weight: lw.query, input: aq, output: s.q, outputStride: qw),
                      MatMulJob(weight: lw.key, input: ak, output: s.k, outputStride: kw),
                      MatMulJob(weight: lw.value, input: av, output: s.v, outputStride: vw)], pool: s.pool, tokens: n)
        if let b = lw.queryBias { for t in 0..<n { VectorOps.add(s.q + t * qw, b.pointer, qw) } }
        if let b = lw.keyBias { for t in 0..<n { VectorOps.add(s.k + t * kw, b.pointer, kw) } }
        if let b = lw.valueBias { for t in 0..<n { VectorOps.add(s.v + t * vw, b.pointer, vw) } }
        if let qn = lw.queryNorm, let kn = lw.keyNorm {
            let d = c.keyLength
            for t in 0..<n {
                for h in 0..<c.headCount { let p = s.q + t * qw + h * d; GGMLExact.rmsNorm(p, weight: qn.pointer, into: p, count: d, eps: eps) }
                for h in 0..<c.kvHeadCount { let p = s.k + t * kw + h * d; GGMLExact.rmsNorm(p, weight: kn.pointer, into: p, count: d, eps: eps) }
            }
        }
        let ri = s.ropeIndex[l]
        let rope = s.ropes[ri]
        let half = rope.dimensions / 2
        let ropeKeys = s.cache.keysArePostRoPE(layer: l)
        for t in 0..<n {
            let cs = s.ropeCos[ri] + t * half, sn = s.ropeSin[ri] + t * half
            GGMLExact.rope(s.q + t * qw, heads: c.headCount, headDim: c.keyLength, dimensions: rope.dimensions,
                           neox: rope.style == .neox, cos: cs, sin: sn)
            if ropeKeys {
                GGMLExact.rope(s.k + t * kw, heads: c.kvHeadCount, headDim: c.keyLength, dimensions: rope.dimensions,
                               neox: rope.style == .neox, cos: cs, sin: sn)
            }
        }
        s.cache.write(layer: l, keys: s.k, keyStride: kw, values: s.v, valueStride: vw, tokens: n, firstPosition: first,
                      angles: ropeKeys ? nil : RoPEAngles(cos: s.ropeCos[ri], sin: s.ropeSin[ri], stride: half), pool: s.pool)
        let aw = c.headCount * c.valueLength
        s.cache.attend(layer: l, queries: s.q, queryStride: qw, heads: c.headCount, tokens: n, firstPosition: first,
                       scale: c.attentionScale, into: s.attention, outStride: aw, pool: s.pool)
        let ao = s.activation(for: lw.output)
        ao.quantize(s.attention, rows: n, rowStride: aw)
        multiplyGGML([MatMulJob(weight: lw.output, input: ao, output: s.projected, outputStride: e)], pool: s.pool, tokens: n)
        for t in 0..<n {
            let p = s.projected + t * e
            if let pn = lw.postAttentionNorm { GGMLExact.rmsNorm(p, weight: pn.pointer, into: p, count: e, eps: eps) }
            VectorOps.add(s.x + t * e, p, e)
        }
    }

    /// The feed-forward block of layer l for the first n rows of s.x: s.x += ffn(s.x).
    func feedForwardGGML(_ l: Int, tokens n: Int, state s: InferenceState) {
        let c = config, lw = weights.layers[l]
        let e = c.embeddingLength
        let eps = c.rmsEpsilon
        let ff = c.feedForwardLength
        for t in 0..<n {
            GGMLExact.rmsNorm(s.x + t * e, weight: lw.ffnNorm.pointer, into: s.xn + t * e, count: e, eps: eps)
        }
        let ag = s.activation(for: lw.gate), au = s.activation(for: lw.up)
        ag.quantize(s.xn, rows: n, rowStride: e)
        if au !== ag { au.quantize(s.xn, rows: n, rowStride: e) }
        multiplyGGML([MatMulJob(weight: lw.gate, input: ag, output: s.gate, outputStride: ff),
                      MatMulJob(weight: lw.up, input: au, output: s.up, outputStride: ff)], pool: s.pool, tokens: n)
        for t in 0..<n {
            switch c.feedForward {
            case .swiglu: GGMLExact.swiglu(gate: s.gate + t * ff, up: s.up + t * ff, into: s.xn + t * ff, count: ff)
            case .geglu: GGMLExact.geglu(gate: s.gate + t * ff, up: s.up + t * ff, into: s.xn + t * ff, count: ff)
            }
        }
        let ad = s.activation(for: lw.down)
        ad.quantize(s.xn, rows: n, rowStride: ff)
        multiplyGGML([MatMulJob(weight: lw.down, input: ad, output: s.projected, outputStride: e)], pool: s.pool, tokens: n)
        for t in 0..<n {
            let p = s.projected + t * e
            if let pn = lw.postFFNNorm { GGMLExact.rmsNorm(p, weight: pn.pointer, into: p, count: e, eps: eps) }
            VectorOps.add(s.x + t * e, p, e)
        }
    }

    /// Runs the jobs' exact products in one parallel section, split into chunks of 16 rows.
    func multiplyGGML(_ jobs: [MatMulJob], pool: ThreadPool, tokens: Int) {
        let chunk = 16
        var starts = [Int]()
        var total = 0
        for j in jobs {
            starts.append(total)
            total += (j.weight.rows + chunk - 1) / chunk
        }
        pool.parallelFor(total) { task, _ in
            var ji = 0
            while ji + 1 < jobs.count && task >= starts[ji + 1] { ji += 1 }
            let j = jobs[ji]
            let r0 = (task - starts[ji]) * chunk
            j.weight.multiplyGGML(j.input, rows: r0..<min(j.weight.rows, r0 + chunk), into: j.output, outStride: j.outputStride)
        }
    }
}
