// The KV cache's bookkeeping: which positions are cached, one K store and one V store per layer
// (built by the schemes chosen for that layer), rotations, and the memory report. Encoding lives in
// the schemes (Schemes/), attention in KVCache+Attention.swift.
//
// Positions: a single sequence, tokens 0..<count. Global layers keep every position (capacity =
// context length); sliding-window layers keep a ring of window + maxBatch − 1 slots, enough for a
// batch whose first query still needs `window − 1` earlier keys (llama.cpp allocates the same).
import GodwitKernels

/// One layer's stores and the transforms around them.
final class KVLayerCache {
    let spec: KVLayerSpec
    let keyScheme: any KVScheme
    let valueScheme: any KVScheme
    let keys: any KeyStore
    let values: any ValueStore
    let keyRotation: (any KVRotation)?
    let valueRotation: (any KVRotation)?
    let capacity: Int

    init(spec: KVLayerSpec, keyScheme: any KVScheme, valueScheme: any KVScheme, keys: any KeyStore,
         values: any ValueStore, keyRotation: (any KVRotation)?, valueRotation: (any KVRotation)?, capacity: Int) {
        self.spec = spec
        self.keyScheme = keyScheme
        self.valueScheme = valueScheme
        self.keys = keys
        self.values = values
        self.keyRotation = keyRotation
        self.valueRotation = valueRotation
        self.capacity = capacity
    }
}

/// cos/sin tables of the tokens being written: cos, sin [tokens, stride] (stride ≥ dims/2).
public struct RoPEAngles {
    public let cos: UnsafePointer<Float>
    public let sin: UnsafePointer<Float>
    public let stride: Int

    public init(cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, stride: Int) {
        self.cos = cos
        self.sin = sin
        self.stride = stride
    }
}

public final class KVCache: @unchecked Sendable {
    public let contextLength: Int
    public let maxBatch: Int
    public let configuration: KVCacheConfiguration
    /// Tokens cached: positions 0..<count.
    public private(set) var count = 0
    let layers: [KVLayerCache]
    let attentionScratch: AttentionScratch

    /// Builds every layer's stores. Throws for unknown schemes, unsupported head dims, bad options.
    public init(specs: [KVLayerSpec], contextLength: Int, maxBatch: Int, configuration: KVCacheConfiguration,
                threads: Int, registry: KVSchemeRegistry = .shared, calibration: KVCalibration? = nil) throws(KVCacheError) {
        guard contextLength > 0 else { throw .invalidOption(name: "context", value: "\(contextLength)", reason: "must be positive") }
        guard maxBatch > 0 else { throw .invalidOption(name: "batch", value: "\(maxBatch)", reason: "must be positive") }
        self.contextLength = contextLength
        let batch = min(maxBatch, contextLength)
        self.maxBatch = batch
        self.configuration = configuration
        let options = configuration.options
        for o in configuration.overrides {
            for l in o.layers where !(l >= -specs.count && l < specs.count) {
                throw .invalidLayerOverride("layer \(l) does not exist (the model has \(specs.count) layers)")
            }
        }
        var built = [KVLayerCache]()
        for (index, spec) in specs.enumerated() {
            let names = configuration.schemes(forLayer: index, layerCount: specs.count)
            let ks = try registry.scheme(named: names.key)
            let vs = try registry.scheme(named: names.value)
            if let why = ks.unsupportedReason(role: .key, headDim: spec.keyDim) {
                throw .unsupportedHeadDim(scheme: ks.name, role: .key, headDim: spec.keyDim, reason: why)
            }
            if let why = vs.unsupportedReason(role: .value, headDim: spec.valueDim) {
                throw .unsupportedHeadDim(scheme: vs.name, role: .value, headDim: spec.valueDim, reason: why)
            }
            let capacity = spec.window.map { min(contextLength, $0 + batch - 1) } ?? contextLength
            let kg = KVStoreGeometry(layer: index, headCount: spec.kvHeads, headDim: spec.keyDim, capacity: capacity, window: spec.window)
            let vg = KVStoreGeometry(layer: index, headCount: spec.kvHeads, headDim: spec.valueDim, capacity: capacity, window: spec.window)
            var keys = try ks.makeKeyStore(KVStoreContext(geometry: kg, role: .key, options: options, rope: spec.rope, calibration: calibration))
            var values = try vs.makeValueStore(KVStoreContext(geometry: vg, role: .value, options: options, rope: spec.rope, calibration: calibration))
            // f16 sinks (global layers only) and recent window around quantized stores (MixedPrecisionStore.swift).
            guard configuration.sinkTokens >= 0 else {
                throw .invalidOption(name: "kv-sink", value: "\(configuration.sinkTokens)", reason: "must be ≥ 0")
            }
            guard configuration.windowTokens >= 0 else {
                throw .invalidOption(name: "kv-window", value: "\(configuration.windowTokens)", reason: "must be ≥ 0")
            }
            let sinks = spec.window == nil ? configuration.sinkTokens : 0
            if sinks > 0 || configuration.windowTokens > 0 {
                // Pre-RoPE key stores (nuq, kivi{b}pre) keep position 0 in f16 themselves and cannot be
                // wrapped; with --kv-sink alone they are left as they are (the sink then covers the values).
                if ks.isQuantized && (keys.keyInput == .postRoPE || configuration.windowTokens > 0) {
                    keys = try MixedPrecisionKeyStore(inner: keys, sinkTokens: sinks, windowTokens: configuration.windowTokens, maxBatch: batch)
                }
                if vs.isQuantized {
                    values = MixedPrecisionValueStore(inner: values, sinkTokens: sinks, windowTokens: configuration.windowTokens, maxBatch: batch)
                }
            }
            built.append(KVLayerCache(spec: spec, keyScheme: ks, valueScheme: vs, keys: keys, values: values,
                                      keyRotation: ks.rotation(role: .key, headDim: spec.keyDim, options: options),
                                      valueRotation: vs.rotation(role: .value, headDim: spec.valueDim, options: options),
                                      capacity: capacity))
        }
        layers = built
        attentionScratch = AttentionScratch(layers: built, maxBatch: batch, threads: threads)
    }

    public var layerCount: Int { layers.count }

    /// Scheme names of a layer after overrides.
    public func schemeNames(layer: Int) -> (key: String, value: String) { (layers[layer].keyScheme.name, layers[layer].valueScheme.name) }

    /// Checks that tokens firstPosition..<firstPosition+n can be written.
    public func checkRoom(firstPosition: Int, tokens n: Int) throws(KVCacheError) {
        guard n <= maxBatch else { throw .batchTooLarge(tokens: n, maxBatch: maxBatch) }
        guard firstPosition + n <= contextLength else {
            throw .contextFull(layer: 0, position: firstPosition + n - 1, capacity: contextLength)
        }
    }

    /// Encodes K and V of tokens firstPosition..<firstPosition+n for one layer.
    /// keys: [n, kvHeads, keyDim] with `keyStride` floats per token, *before* RoPE; modified in place
    /// (RoPE and the scheme's rotation are applied here unless the store keeps pre-RoPE keys).
    /// values: [n, kvHeads, valueDim] with `valueStride` floats per token; modified in place.
    public func write(layer index: Int, keys: UnsafeMutablePointer<Float>, keyStride: Int,
                      values: UnsafeMutablePointer<Float>, valueStride: Int,
                      tokens n: Int, firstPosition: Int, angles: RoPEAngles?, pool: ThreadPool? = nil) {
        let layer = layers[index]
        let spec = layer.spec
        if layer.keys.keyInput == .postRoPE {
            for t in 0..<n {
                let k = keys + t * keyStride
                if let rope = spec.rope, let a = angles {
                    rope.apply(k, heads: spec.kvHeads, headDim: spec.keyDim, cos: a.cos + t * a.stride, sin: a.sin + t * a.stride)
                }
                if let r = layer.keyRotation {
                    for h in 0..<spec.kvHeads { r.apply(k + h * spec.keyDim, dim: spec.keyDim) }
                }
            }
        }
        if let r = layer.valueRotation {
            for t in 0..<n {
                for h in 0..<spec.kvHeads { r.apply(values + t * valueStride + h * spec.valueDim, dim: spec.valueDim) }
            }
        }
        let heads = spec.kvHeads
        let parallelKeys = layer.keys as? any HeadParallelWrite, parallelValues = layer.values as? any HeadParallelWrite
        if let pool, layer.keys.writesExpensively || layer.values.writesExpensively {
            // One section for both stores, one task per head of a head-parallel store and one for the other
            // store (K and V of a layer in separate sections left a thread idle: 3 heads on 2 threads, twice;
            // a store wrapped for sinks or a window encodes its heads in one task, beside the other store).
            let keyTasks = parallelKeys == nil ? 1 : heads, valueTasks = parallelValues == nil ? 1 : heads
            pool.parallelFor(keyTasks + valueTasks) { task, _ in
                if task < keyTasks {
                    if let p = parallelKeys {
                        p.write(head: task, keys, tokenStride: keyStride, count: n, firstPosition: firstPosition)
                    } else {
                        layer.keys.write(keys, tokenStride: keyStride, count: n, firstPosition: firstPosition)
                    }
                } else if let p = parallelValues {
                    p.write(head: task - keyTasks, values, tokenStride: valueStride, count: n, firstPosition: firstPosition)
                } else {
                    layer.values.write(values, tokenStride: valueStride, count: n, firstPosition: firstPosition)
                }
            }
        } else {
            layer.keys.write(keys, tokenStride: keyStride, count: n, firstPosition: firstPosition)
            layer.values.write(values, tokenStride: valueStride, count: n, firstPosition: firstPosition)
        }
    }

    /// Marks positions up to `firstPosition + n` as cached (call after every layer was written).
    public func commit(firstPosition: Int, tokens n: Int) {
        count = max(count, firstPosition + n)
    }

    /// Whether positions ≥ `newCount` can be forgotten without losing a position that a later query
    /// needs: a sliding-window ring holds window + maxBatch − 1 positions, so at most maxBatch
    /// can be dropped there. Global layers can always go back.
    public func canTruncate(to newCount: Int) -> Bool {
        guard newCount < count else { return true }
        let hasSliding = layers.contains { $0.spec.window != nil }
        return !hasSliding || count - newCount <= maxBatch
    }

    /// Forgets positions ≥ `newCount`. Sliding-window layers can only go back within their ring
    /// (see `canTruncate(to:)`).
    public func truncate(to newCount: Int) {
        guard newCount < count else { return }
        count = max(0, newCount)
        for l in layers {
            l.keys.truncate(to: count)
            l.values.truncate(to: count)
        }
    }

    /// Empties the cache (storage is kept and reused).
    public func reset() { truncate(to: 0) }

    /// Memory held now: allocated and logical bytes per layer kind, and bits per cached value.
    public func memory() -> KVMemoryReport { memory(tokens: count) }

    /// Memory as it would be with `tokens` cached.
    public func memory(tokens: Int) -> KVMemoryReport {
        var report = KVMemoryReport()
        report.tokens = tokens
        for l in layers {
            let held = l.spec.window.map { min(tokens, $0) } ?? min(tokens, contextLength)
            var part = l.spec.window == nil ? report.global : report.sliding
            part.layers += 1
            part.keyAllocated += l.keys.allocatedBytes
            part.valueAllocated += l.values.allocatedBytes
            part.keyLogical += l.keys.bytesHeld(tokens: held)
            part.valueLogical += l.values.bytesHeld(tokens: held)
            part.keyValues += held * l.spec.kvHeads * l.spec.keyDim
            part.valueValues += held * l.spec.kvHeads * l.spec.valueDim
            if l.spec.window == nil { report.global = part } else { report.sliding = part }
        }
        return report
    }
}
