// A loaded model: hyper-parameters and weights over a memory-mapped GGUF file. Immutable and
// shareable; per-session state (KV cache, scratch) lives in `InferenceState`.
import GodwitGGUF
import GodwitKernels
import GodwitKVCache

public final class Transformer: @unchecked Sendable {
    public let config: ModelConfig
    public let weights: ModelWeights
    /// Keeps the memory map alive for the weights.
    public let file: GGUFFile

    public init(gguf: GGUFFile) throws(ModelError) {
        file = gguf
        config = try ModelConfig(gguf: gguf)
        weights = try ModelWeights(gguf: gguf, config: config)
    }

    /// K/V geometry per layer, for building a cache.
    public var cacheSpecs: [KVLayerSpec] { config.cacheSpecs(frequencyFactors: weights.ropeFrequencyFactors) }

    /// Creates a session state: a KV cache of `contextLength` tokens in the configured schemes and
    /// scratch for batches of up to `maxBatch` tokens.
    public func makeState(contextLength: Int, maxBatch: Int, cache configuration: KVCacheConfiguration,
                          pool: ThreadPool, calibration: KVCalibration? = nil, registry: KVSchemeRegistry = .shared) throws(ModelError) -> InferenceState {
        let batch = max(1, min(maxBatch, contextLength))
        let cache: KVCache
        do {
            cache = try KVCache(specs: cacheSpecs, contextLength: contextLength, maxBatch: batch,
                                configuration: configuration, threads: pool.threadCount, registry: registry, calibration: calibration)
        } catch { throw .cache(error) }
        return InferenceState(config: config, weights: weights, cache: cache, pool: pool, maxBatch: batch)
    }

    /// Bytes of the weights as stored.
    public var weightBytes: Int { file.tensors.reduce(0) { $0 + $1.byteCount } }

    /// Number of parameters.
    public var parameterCount: Int { file.tensors.reduce(0) { $0 + $1.elementCount } }
}
