// The forward pass of the supported architectures, as llama.cpp builds its graphs
// (src/models/llama.cpp, qwen2.cpp, gemma3.cpp). A prompt goes through each layer as one batch;
// decoding is a batch of one. Per layer: RMSNorm → Q,K,V (one parallel section) → [Gemma: per-head
// Q/K RMSNorm] → RoPE(Q) → cache write (RoPE(K), rotation, encode) → attention on the cache →
// output projection → [Gemma: post-attention norm] → residual → RMSNorm → gate,up (one section) →
// SwiGLU / GeGLU → down → [Gemma: post-FFN norm] → residual.
import GodwitKernels
import GodwitKVCache

/// A matrix product to run in a parallel section: out[t, r] = W[r] · x[t] for every token.
struct MatMulJob {
    let weight: WeightMatrix
    let input: ActivationBuffer
    let output: UnsafeMutablePointer<Float>
    let outputStride: Int
}

extension Transformer {
    /// Evaluates `tokens` at positions state.cache.count ..< +n, caches their K/V, and writes the
    /// logits of batch rows `logitRows` into `logits` [logitRows.count, vocabularySize].
    public func forward(tokens: [Int32], state s: InferenceState, logitRows: Range<Int>,
                        logits: UnsafeMutablePointer<Float>) throws(ModelError) {
        let n = tokens.count
        guard n > 0 else { throw .emptyBatch }
        let c = config, w = weights
        let first = s.cache.count
        do { try s.cache.checkRoom(firstPosition: first, tokens: n) } catch { throw .cache(error) }
        for t in tokens where t < 0 || Int(t) >= c.vocabularySize { throw .tokenOutOfRange(token: t, vocabularySize: c.vocabularySize) }
        precondition(logitRows.lowerBound >= 0 && logitRows.upperBound <= n, "logit rows outside the batch")
        if s.cache.configuration.numerics == .ggml { return forwardGGML(tokens: tokens, state: s, logitRows: logitRows, logits: logits) }

        let e = c.embeddingLength
        // Embeddings.
        for (t, token) in tokens.enumerated() {
            w.tokenEmbedding.dequantizeRow(Int(token), into: s.x + t * e)
            if c.embeddingScale != 1 { VectorOps.scale(s.x + t * e, by: c.embeddingScale, e) }
        }
        // RoPE angles of this batch, once per distinct RoPE.
        for (i, rope) in s.ropes.enumerated() {
            let half = rope.dimensions / 2
            for t in 0..<n { rope.table(position: first + t, cos: s.ropeCos[i] + t * half, sin: s.ropeSin[i] + t * half) }
        }
        for l in 0..<c.layerCount {
            layer(l, tokens: n, firstPosition: first, state: s)
        }
        s.cache.commit(firstPosition: first, tokens: n)

        // Output head on the requested rows only.
        let rows = logitRows.count
        guard rows > 0 else { return }
        for (i, t) in logitRows.enumerated() {
            VectorOps.rmsNorm(s.x + t * e, weight: w.outputNorm.pointer, into: s.xn + i * e, count: e, eps: c.rmsEpsilon)
        }
        let act = s.activation(for: w.output)
        act.quantize(s.xn, rows: rows, rowStride: e)
        multiply([MatMulJob(weight: w.output, input: act, output: logits, outputStride: c.vocabularySize)], pool: s.pool, tokens: rows)
    }

    func layer(_ l: Int, tokens n: Int, firstPosition first: Int, state s: InferenceState) {
        let c = config, lw = weights.layers[l]
        let e = c.embeddingLength
        let qw = c.headCount * c.keyLength, kw = c.kvHeadCount * c.keyLength, vw = c.kvHeadCount * c.valueLength
        let eps = c.rmsEpsilon

        // Attention block.
        for t in 0..<n {
            VectorOps.rmsNorm(s.x + t * e, weight: lw.attentionNorm.pointer, into: s.xn + t * e, count: e, eps: eps)
        }
        let aq = s.activation(for: lw.query), ak = s.activation(for: lw.key), av = s.activation(for: lw.value)
        aq.quantize(s.xn, rows: n, rowStride: e)
        if ak !== aq { ak.quantize(s.xn, rows: n, rowStride: e) }
        if av !== aq && av !== ak { av.quantize(s.xn, rows: n, rowStride: e) }
        multiply([MatMulJob(weight: lw.query, input: aq, output: s.q, outputStride: qw),
                  MatMulJob(weight: lw.key, input: ak, output: s.k, outputStride: kw),
                  MatMulJob(weight: lw.value, input: av, output: s.v, outputStride: vw)], pool: s.pool, tokens: n)
        if let b = lw.queryBias { for t in 0..<n { VectorOps.add(s.q + t * qw, b.pointer, qw) } }
        if let b = lw.keyBias { for t in 0..<n { VectorOps.add(s.k + t * kw, b.pointer, kw) } }
        if let b = lw.valueBias { for t in 0..<n { VectorOps.add(s.v + t * vw, b.pointer, vw) } }
        if let qn = lw.queryNorm, let kn = lw.keyNorm {
            let d = c.keyLength
            for t in 0..<n {
                for h in 0..<c.headCount { let p = s.q + t * qw + h * d; VectorOps.rmsNorm(p, weight: qn.pointer, into: p, count: d, eps: eps) }
                for h in 0..<c.kvHeadCount { let p = s.k + t * kw + h * d; VectorOps.rmsNorm(p, weight: kn.pointer, into: p, count: d, eps: eps) }
            }
        }
        let ri = s.ropeIndex[l]
        let rope = s.ropes[ri]
        let half = rope.dimensions / 2
        for t in 0..<n {
            rope.apply(s.q + t * qw, heads: c.headCount, headDim: c.keyLength, cos: s.ropeCos[ri] + t * half, sin: s.ropeSin[ri] + t * half)
        }
        s.cache.write(layer: l, keys: s.k, keyStride: kw, values: s.v, valueStride: vw, tokens: n, firstPosition: first,
                      angles: RoPEAngles(cos: s.ropeCos[ri], sin: s.ropeSin[ri], stride: half), pool: s.pool)
        let aw = c.headCount * c.valueLength
        s.cache.attend(layer: l, queries: s.q, queryStride: qw, heads: c.headCount, tokens: n, firstPosition: first,
                       scale: c.attentionScale, into: s.attention, outStride: aw, pool: s.pool)
        let ao = s.activation(for: lw.output)
        ao.quantize(s.attention, rows: n, rowStride: aw)
        multiply([MatMulJob(weight: lw.output, input: ao, output: s.projected, outputStride: e)], pool: s.pool, tokens: n)
        for t in 0..<n {
            let p = s.projected + t * e
            if let pn = lw.postAttentionNorm { VectorOps.rmsNorm(p, weight: pn.pointer, into: p, count: e, eps: eps) }
            VectorOps.add(s.x + t * e, p, e)
        }

        // Feed-forward block.
        let ff = c.feedForwardLength
        for t in 0..<n {
            VectorOps.rmsNorm(s.x + t * e, weight: lw.ffnNorm.pointer, into: s.xn + t * e, count: e, eps: eps)
        }
        let ag = s.activation(for: lw.gate), au = s.activation(for: lw.up)
        ag.quantize(s.xn, rows: n, rowStride: e)
        if au !== ag { au.quantize(s.xn, rows: n, rowStride: e) }
        multiply([MatMulJob(weight: lw.gate, input: ag, output: s.gate, outputStride: ff),
                  MatMulJob(weight: lw.up, input: au, output: s.up, outputStride: ff)], pool: s.pool, tokens: n)
        for t in 0..<n {
            switch c.feedForward {
            case .swiglu: VectorOps.swiglu(gate: s.gate + t * ff, up: s.up + t * ff, into: s.xn + t * ff, count: ff)
            case .geglu: VectorOps.geglu(gate: s.gate + t * ff, up: s.up + t * ff, into: s.xn + t * ff, count: ff)
            }
        }
        let ad = s.activation(for: lw.down)
        ad.quantize(s.xn, rows: n, rowStride: ff)
        multiply([MatMulJob(weight: lw.down, input: ad, output: s.projected, outputStride: e)], pool: s.pool, tokens: n)
        for t in 0..<n {
            let p = s.projected + t * e
            if let pn = lw.postFFNNorm { VectorOps.rmsNorm(p, weight: pn.pointer, into: p, count: e, eps: eps) }
            VectorOps.add(s.x + t * e, p, e)
        }
    }

    static let decodePieces = 2
    /// Runs several matrix products in one parallel section, split into row chunks. Decode (one
    /// token) cuts each matrix into `decodePieces` contiguous pieces per thread (multiples of 16 rows):
    /// long sequential streams are what the hardware prefetcher follows — 32-row chunks handed out
    /// alternately ran decode at 128 t/s, 2 pieces per thread at ~240 (1 piece: same, 4: −6 %, 8: −11 %),
    /// and two pieces still let a thread that is ahead take over work from a slow one.
    func multiply(_ jobs: [MatMulJob], pool: ThreadPool, tokens: Int) {
        var starts = (0, 0, 0, 0), chunks = (0, 0, 0, 0)
        var total = 0
        withUnsafeMutableBytes(of: &starts) { rawStarts in
            withUnsafeMutableBytes(of: &chunks) { rawChunks in
                let st = rawStarts.bindMemory(to: Int.self), ch = rawChunks.bindMemory(to: Int.self)
                for (i, j) in jobs.enumerated() {
                    let pieces = pool.threadCount * Self.decodePieces
                    let chunk = tokens == 1 ? max(16, ((j.weight.rows + pieces - 1) / pieces + 15) / 16 * 16) : 64
                    st[i] = total
                    ch[i] = chunk
                    total += (j.weight.rows + chunk - 1) / chunk
                }
            }
        }
        let count = jobs.count
        pool.parallelFor(total) { task, _ in
            var ji = 0
            withUnsafeBytes(of: starts) { rawStarts in
                withUnsafeBytes(of: chunks) { rawChunks in
                    let st = rawStarts.bindMemory(to: Int.self), ch = rawChunks.bindMemory(to: Int.self)
                    while ji + 1 < count && task >= st[ji + 1] { ji += 1 }
                    let j = jobs[ji]
                    let chunk = ch[ji]
                    let r0 = (task - st[ji]) * chunk
                    j.weight.multiply(j.input, rows: r0..<min(j.weight.rows, r0 + chunk), into: j.output, outStride: j.outputStride)
                }
            }
        }
    }
}
