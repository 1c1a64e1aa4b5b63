// Everything one session needs to run the model: the KV cache, the thread pool and scratch buffers
// sized for the largest batch, allocated once so that a decode step allocates nothing.
import GodwitKernels
import GodwitKVCache

public final class InferenceState: @unchecked Sendable {
    public let cache: KVCache
    public let pool: ThreadPool
    public let maxBatch: Int

    /// Residual stream [maxBatch, embedding].
    let x: UnsafeMutablePointer<Float>
    /// Normalized stream / generic [maxBatch, max(embedding, attention out)].
    let xn: UnsafeMutablePointer<Float>
    /// [maxBatch, heads·keyLength]
    let q: UnsafeMutablePointer<Float>
    /// [maxBatch, kvHeads·keyLength]
    let k: UnsafeMutablePointer<Float>
    /// [maxBatch, kvHeads·valueLength]
    let v: UnsafeMutablePointer<Float>
    /// Attention output [maxBatch, heads·valueLength]
    let attention: UnsafeMutablePointer<Float>
    /// Projection output [maxBatch, embedding]
    let projected: UnsafeMutablePointer<Float>
    /// FFN gate and up [maxBatch, feedForward]
    let gate: UnsafeMutablePointer<Float>
    let up: UnsafeMutablePointer<Float>
    /// RoPE tables per distinct RoPE (index by `ropeIndex[layer]`): [maxBatch, dims/2] each.
    let ropeCos: [UnsafeMutablePointer<Float>]
    let ropeSin: [UnsafeMutablePointer<Float>]
    let ropes: [RotaryEmbedding]
    let ropeIndex: [Int]
    /// Quantized activations, one buffer per (activation type, width) the weights need.
    let activations: [ActivationBuffer]
    private var allocations: [UnsafeMutablePointer<Float>] = []

    init(config c: ModelConfig, weights w: ModelWeights, cache: KVCache, pool: ThreadPool, maxBatch: Int) {
        self.cache = cache
        self.pool = pool
        self.maxBatch = maxBatch
        var all = [UnsafeMutablePointer<Float>]()
        func buffer(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n))
            p.initialize(repeating: 0, count: max(1, n))
            all.append(p)
            return p
        }
        let e = c.embeddingLength
        let attnWidth = c.headCount * c.valueLength
        x = buffer(maxBatch * e)
        xn = buffer(maxBatch * max(e, attnWidth, c.feedForwardLength))
        q = buffer(maxBatch * c.headCount * c.keyLength)
        k = buffer(maxBatch * c.kvHeadCount * c.keyLength)
        v = buffer(maxBatch * c.kvHeadCount * c.valueLength)
        attention = buffer(maxBatch * attnWidth)
        projected = buffer(maxBatch * e)
        gate = buffer(maxBatch * c.feedForwardLength)
        up = buffer(maxBatch * c.feedForwardLength)

        var ropes = [RotaryEmbedding](), index = [Int]()
        for l in 0..<c.layerCount {
            let r = c.rope(layer: l, frequencyFactors: w.ropeFrequencyFactors)
            if let i = ropes.firstIndex(of: r) { index.append(i) } else { index.append(ropes.count); ropes.append(r) }
        }
        self.ropes = ropes
        ropeIndex = index
        ropeCos = ropes.map { buffer(maxBatch * $0.dimensions / 2) }
        ropeSin = ropes.map { buffer(maxBatch * $0.dimensions / 2) }

        var acts = [ActivationBuffer]()
        func need(_ m: WeightMatrix) {
            let t = m.type.activationType
            if !acts.contains(where: { $0.type == t && $0.cols == m.cols }) {
                acts.append(ActivationBuffer(type: t, maxRows: maxBatch, cols: m.cols))
            }
        }
        need(w.output)
        for l in w.layers { for m in [l.query, l.key, l.value, l.output, l.gate, l.up, l.down] { need(m) } }
        activations = acts
        allocations = all
    }

    deinit { for p in allocations { p.deallocate() } }

    /// The activation buffer a weight matrix multiplies against.
    @inline(__always)
    func activation(for m: WeightMatrix) -> ActivationBuffer {
        let t = m.type.activationType
        for a in activations where a.type == t && a.cols == m.cols { return a }
        preconditionFailure("no activation buffer for \(m.type) × \(m.cols)")
    }
}
