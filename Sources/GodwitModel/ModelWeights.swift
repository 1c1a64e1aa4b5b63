// Binds GGUF tensors (llama.cpp names, ggml shapes) to typed weights. Matrices stay in the memory
// map; small vectors (norms, biases) are copied into owned float arrays.
import GodwitGGUF
import GodwitKernels

/// A float vector owned by the model (norm weights, biases). [count]
public final class VectorWeight: @unchecked Sendable {
    public let count: Int
    let pointer: UnsafeMutablePointer<Float>

    init(tensor: GGUFTensor, count expected: Int) throws(ModelError) {
        guard tensor.info.elementCount == expected, tensor.info.dims.count == 1 || tensor.info.dims.dropFirst().allSatisfy({ $0 == 1 }) else {
            throw .tensorShape(name: tensor.info.name, expected: [expected], found: tensor.info.dims)
        }
        count = expected
        pointer = .allocate(capacity: expected)
        switch tensor.info.type {
        case .f32:
            for i in 0..<expected { pointer[i] = tensor.data.loadUnaligned(fromByteOffset: i * 4, as: Float.self) }
        case .f16:
            for i in 0..<expected { pointer[i] = Float(Float16(bitPattern: tensor.data.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) }
        case .bf16:
            for i in 0..<expected { pointer[i] = Float(bitPattern: UInt32(tensor.data.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16) }
        default:
            pointer.deallocate()
            throw .unsupportedTensorType(name: tensor.info.name, type: tensor.info.type)
        }
    }

    deinit { pointer.deallocate() }

    /// The values as an array (tests, inspection).
    public var values: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// The weights of one transformer block.
public struct LayerWeights: @unchecked Sendable {
    public let attentionNorm: VectorWeight
    public let query: WeightMatrix
    public let key: WeightMatrix
    public let value: WeightMatrix
    public let output: WeightMatrix
    public let queryBias: VectorWeight?
    public let keyBias: VectorWeight?
    public let valueBias: VectorWeight?
    /// Gemma 3: per-head RMSNorm weights [keyLength].
    public let queryNorm: VectorWeight?
    public let keyNorm: VectorWeight?
    public let postAttentionNorm: VectorWeight?
    public let ffnNorm: VectorWeight
    public let gate: WeightMatrix
    public let up: WeightMatrix
    public let down: WeightMatrix
    public let postFFNNorm: VectorWeight?
}

public struct ModelWeights: @unchecked Sendable {
    /// [vocab rows, embedding cols]
    public let tokenEmbedding: WeightMatrix
    public let outputNorm: VectorWeight
    /// The output head; the token embedding when tied.
    public let output: WeightMatrix
    public let outputIsTied: Bool
    /// Llama 3.x `rope_freqs` divisors [ropeDimensions/2], or empty.
    public let ropeFrequencyFactors: [Float]
    public let layers: [LayerWeights]
    /// Owner of the repacked layer matrices (q4_1 in 16-row groups).
    let repacked: RepackedWeights

    public init(gguf: GGUFFile, config c: ModelConfig) throws(ModelError) {
        func tensor(_ name: String) throws(ModelError) -> GGUFTensor {
            do { return try gguf.tensor(name) } catch { throw .gguf(error) }
        }
        let repacked = RepackedWeights()
        self.repacked = repacked
        /// `repack`: the layer matrices, which only the products read (the embedding is looked up by row).
        func matrix(_ name: String, rows: Int, cols: Int, repack: Bool = false) throws(ModelError) -> WeightMatrix {
            let t = try tensor(name)
            guard t.info.dims.count == 2, t.info.dims[0] == cols, t.info.dims[1] == rows else {
                throw .tensorShape(name: name, expected: [cols, rows], found: t.info.dims)
            }
            let m: WeightMatrix
            do { m = try WeightMatrix(type: t.info.type, rows: rows, cols: cols, data: t.data.baseAddress!) }
            catch { throw .unsupportedTensorType(name: name, type: t.info.type) }
            return repack ? repacked.repack(m) : m
        }
        func vector(_ name: String, _ count: Int) throws(ModelError) -> VectorWeight {
            try VectorWeight(tensor: try tensor(name), count: count)
        }
        func optionalVector(_ name: String, _ count: Int) throws(ModelError) -> VectorWeight? {
            gguf.tensorInfo(name) == nil ? nil : try vector(name, count)
        }

        let e = c.embeddingLength, qDim = c.headCount * c.keyLength
        let kDim = c.kvHeadCount * c.keyLength, vDim = c.kvHeadCount * c.valueLength
        let attnOut = c.headCount * c.valueLength
        tokenEmbedding = try matrix("token_embd.weight", rows: c.vocabularySize, cols: e)
        outputNorm = try vector("output_norm.weight", e)
        if gguf.tensorInfo("output.weight") != nil {
            output = try matrix("output.weight", rows: c.vocabularySize, cols: e)
            outputIsTied = false
        } else {
            output = tokenEmbedding
            outputIsTied = true
        }
        ropeFrequencyFactors = try optionalVector("rope_freqs.weight", c.ropeDimensions / 2)?.values ?? []

        var layers = [LayerWeights]()
        for l in 0..<c.layerCount {
            let p = "blk.\(l)."
            layers.append(LayerWeights(
                attentionNorm: try vector(p + "attn_norm.weight", e),
                query: try matrix(p + "attn_q.weight", rows: qDim, cols: e, repack: true),
                key: try matrix(p + "attn_k.weight", rows: kDim, cols: e, repack: true),
                value: try matrix(p + "attn_v.weight", rows: vDim, cols: e, repack: true),
                output: try matrix(p + "attn_output.weight", rows: e, cols: attnOut, repack: true),
                queryBias: c.hasQKVBias ? try vector(p + "attn_q.bias", qDim) : nil,
                keyBias: c.hasQKVBias ? try vector(p + "attn_k.bias", kDim) : nil,
                valueBias: c.hasQKVBias ? try vector(p + "attn_v.bias", vDim) : nil,
                queryNorm: c.hasQKNorm ? try vector(p + "attn_q_norm.weight", c.keyLength) : nil,
                keyNorm: c.hasQKNorm ? try vector(p + "attn_k_norm.weight", c.keyLength) : nil,
                postAttentionNorm: c.hasPostNorms ? try vector(p + "post_attention_norm.weight", e) : nil,
                ffnNorm: try vector(p + "ffn_norm.weight", e),
                gate: try matrix(p + "ffn_gate.weight", rows: c.feedForwardLength, cols: e, repack: true),
                up: try matrix(p + "ffn_up.weight", rows: c.feedForwardLength, cols: e, repack: true),
                down: try matrix(p + "ffn_down.weight", rows: e, cols: c.feedForwardLength, repack: true),
                postFFNNorm: c.hasPostNorms ? try vector(p + "post_ffw_norm.weight", e) : nil))
        }
        self.layers = layers
    }
}
