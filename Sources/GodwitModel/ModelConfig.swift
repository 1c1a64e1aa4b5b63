// Hyper-parameters read from GGUF metadata, as llama.cpp's llama_model::load_hparams does for the
// supported architectures. The RoPE style is fixed per architecture (llama_model_rope_type), not read
// from metadata: llama → normal (adjacent pairs); qwen2, gemma3 → NeoX (halves).
import GodwitGGUF
import GodwitKernels
import GodwitKVCache

public struct ModelConfig: Sendable, Equatable {
    public static let supportedArchitectures = ["llama", "qwen2", "gemma3"]

    public let architecture: String
    public let name: String
    public let layerCount: Int
    public let embeddingLength: Int
    public let feedForwardLength: Int
    public let headCount: Int
    public let kvHeadCount: Int
    public let keyLength: Int
    public let valueLength: Int
    public let vocabularySize: Int
    public let trainedContextLength: Int
    public let rmsEpsilon: Float
    public let ropeDimensions: Int
    public let ropeBase: Float
    public let ropeFrequencyScale: Float
    public let ropeStyle: RotaryEmbedding.Style
    /// Sliding-window length for the layers marked in `slidingLayers` (nil: all layers global).
    public let slidingWindow: Int?
    /// [layerCount]: true where the layer uses the sliding window.
    public let slidingLayers: [Bool]
    /// RoPE base and scale of sliding-window layers (Gemma 3: 10,000 and 1).
    public let slidingRopeBase: Float
    public let slidingRopeFrequencyScale: Float
    /// Score scale applied to queries (1/√keyLength unless the architecture says otherwise).
    public let attentionScale: Float
    /// Multiplier applied to token embeddings (Gemma: √embeddingLength).
    public let embeddingScale: Float
    public let feedForward: FeedForwardKind
    /// Gemma 3: RMSNorm on each Q and K head, and norms after attention and after the FFN.
    public let hasQKNorm: Bool
    public let hasPostNorms: Bool
    public let hasQKVBias: Bool

    public enum FeedForwardKind: String, Sendable { case swiglu, geglu }

    public var isGemma: Bool { architecture == "gemma3" }

    /// Reads and validates the hyper-parameters of `gguf`.
    public init(gguf: GGUFFile) throws(ModelError) {
        do {
            let arch = try gguf.string("general.architecture")
            guard Self.supportedArchitectures.contains(arch) else { throw ModelError.unsupportedArchitecture(arch) }
            architecture = arch
            name = (try? gguf.string("general.name")) ?? arch
            func key(_ k: String) -> String { "\(arch).\(k)" }
            layerCount = try gguf.int(key("block_count"))
            embeddingLength = try gguf.int(key("embedding_length"))
            feedForwardLength = try gguf.int(key("feed_forward_length"))
            headCount = try gguf.int(key("attention.head_count"))
            kvHeadCount = try gguf.int(key("attention.head_count_kv"), default: headCount)
            let headDim = headCount > 0 ? embeddingLength / headCount : 0
            keyLength = try gguf.int(key("attention.key_length"), default: headDim)
            valueLength = try gguf.int(key("attention.value_length"), default: headDim)
            trainedContextLength = try gguf.int(key("context_length"))
            rmsEpsilon = Float(try gguf.double(key("attention.layer_norm_rms_epsilon")))
            ropeDimensions = try gguf.int(key("rope.dimension_count"), default: keyLength)
            ropeBase = Float(try gguf.double(key("rope.freq_base"), default: 10000))
            let scalingType = try gguf.optionalString(key("rope.scaling.type")) ?? "none"
            guard scalingType == "none" || scalingType == "linear" else {
                throw ModelError.invalidHyperparameter(key: key("rope.scaling.type"), value: scalingType,
                                                       reason: "only linear RoPE scaling is supported")
            }
            var factor = try gguf.double(key("rope.scaling.factor"), default: 0)
            if factor == 0 { factor = try gguf.double(key("rope.scale_linear"), default: 1) }
            ropeFrequencyScale = Float(1 / (factor == 0 ? 1 : factor))
            if let tokens = gguf["tokenizer.ggml.tokens"]?.arrayValue?.count {
                vocabularySize = try gguf.int(key("vocab_size"), default: tokens)
            } else {
                vocabularySize = try gguf.int(key("vocab_size"))
            }

            switch arch {
            case "gemma3":
                ropeStyle = .neox
                let window = try gguf.int(key("attention.sliding_window"), default: 0)
                slidingWindow = window > 0 ? window : nil
                let pattern = try gguf.int(key("attention.sliding_window_pattern"), default: 6)
                slidingLayers = (0..<layerCount).map { window > 0 && (pattern == 0 || $0 % pattern < pattern - 1) }
                slidingRopeBase = Float(try gguf.double(key("rope.freq_base_swa"), default: 10000))
                slidingRopeFrequencyScale = 1
                attentionScale = 1 / Float(keyLength).squareRoot()
                embeddingScale = Float(embeddingLength).squareRoot()
                feedForward = .geglu
                hasQKNorm = true
                hasPostNorms = true
                hasQKVBias = false
            default:
                ropeStyle = arch == "qwen2" ? .neox : .normal
                slidingWindow = nil
                slidingLayers = Array(repeating: false, count: layerCount)
                slidingRopeBase = ropeBase
                slidingRopeFrequencyScale = ropeFrequencyScale
                attentionScale = 1 / Float(keyLength).squareRoot()
                embeddingScale = 1
                feedForward = .swiglu
                hasQKNorm = false
                hasPostNorms = false
                hasQKVBias = arch == "qwen2"
            }
        } catch let e as ModelError {
            throw e
        } catch let e as GGUFError {
            throw .gguf(e)
        } catch {
            throw .invalidHyperparameter(key: "?", value: "?", reason: "\(error)")
        }
        try validate()
    }

    private func validate() throws(ModelError) {
        func check(_ ok: Bool, _ key: String, _ value: Int, _ reason: String) throws(ModelError) {
            if !ok { throw .invalidHyperparameter(key: "\(architecture).\(key)", value: "\(value)", reason: reason) }
        }
        try check(layerCount > 0 && layerCount <= 1024, "block_count", layerCount, "must be 1…1024")
        try check(embeddingLength > 0, "embedding_length", embeddingLength, "must be positive")
        try check(headCount > 0, "attention.head_count", headCount, "must be positive")
        try check(kvHeadCount > 0 && headCount % kvHeadCount == 0, "attention.head_count_kv", kvHeadCount,
                  "must divide the head count \(headCount)")
        try check(keyLength > 0 && keyLength % 2 == 0, "attention.key_length", keyLength, "must be positive and even")
        try check(valueLength > 0, "attention.value_length", valueLength, "must be positive")
        try check(ropeDimensions > 0 && ropeDimensions <= keyLength && ropeDimensions % 2 == 0, "rope.dimension_count",
                  ropeDimensions, "must be even and at most the key length \(keyLength)")
        try check(vocabularySize > 0, "vocab_size", vocabularySize, "must be positive")
        try check(trainedContextLength > 0, "context_length", trainedContextLength, "must be positive")
    }

    /// RoPE of layer `l` (sliding-window layers of Gemma 3 use their own base and scale).
    public func rope(layer l: Int, frequencyFactors: [Float] = []) -> RotaryEmbedding {
        let sliding = slidingLayers[l]
        return RotaryEmbedding(dimensions: ropeDimensions, base: sliding ? slidingRopeBase : ropeBase,
                               frequencyScale: sliding ? slidingRopeFrequencyScale : ropeFrequencyScale,
                               style: ropeStyle, frequencyFactors: frequencyFactors)
    }

    /// K/V cache geometry of every layer.
    public func cacheSpecs(frequencyFactors: [Float] = []) -> [KVLayerSpec] {
        (0..<layerCount).map {
            KVLayerSpec(kvHeads: kvHeadCount, keyDim: keyLength, valueDim: valueLength,
                             window: slidingLayers[$0] ? slidingWindow : nil, rope: rope(layer: $0, frequencyFactors: frequencyFactors))
        }
    }
}
