// What the user chooses for the cache: a scheme for K and one for V (independently), options, and
import Foundation
import GodwitKernels
// per-layer overrides. Validated against the model's geometry when the cache is created.

/// A per-layer override: these layers use other schemes (e.g. first and last two layers at q8_0).
/// Layer indices may be negative, counting from the end (−1 is the last layer).
public struct KVLayerOverride: Sendable, Equatable {
    public var layers: [Int]
    public var keyScheme: String?
    public var valueScheme: String?

    public init(layers: [Int], keyScheme: String?, valueScheme: String?) {
        self.layers = layers
        self.keyScheme = keyScheme
        self.valueScheme = valueScheme
    }

    /// Parses `LAYERS=K[/V]`: LAYERS is a comma list of indices and ranges `a-b` (negative indices
    /// count from the end, e.g. `0,1,-2,-1`); K and V are scheme names, `-` keeps the default,
    /// and a lone K applies to both. Examples: `0,1,-2,-1=q8_0`, `0-3=q8_0/-`, `29=f16/f16`.
    public static func parse(_ spec: String) throws(KVCacheError) -> KVLayerOverride {
        let parts = spec.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw .invalidLayerOverride("'\(spec)' is not LAYERS=K[/V] (e.g. 0,1,-2,-1=q8_0/q8_0)")
        }
        var layers = [Int]()
        for item in parts[0].split(separator: ",") {
            let t = item.trimmingCharacters(in: .whitespaces)
            // A range a-b (either end may be negative: "-3--1").
            if let dash = t.dropFirst().firstIndex(of: "-"), let a = Int(t[..<dash]), let b = Int(t[t.index(after: dash)...]) {
                guard (a >= 0) == (b >= 0), a <= b else { throw .invalidLayerOverride("bad layer range '\(t)' in '\(spec)'") }
                layers += Array(a...b)
            } else if let i = Int(t) {
                layers.append(i)
            } else {
                throw .invalidLayerOverride("'\(t)' in '\(spec)' is not a layer index or range")
            }
        }
        let kv = parts[1].split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard kv.count <= 2, !kv[0].isEmpty else { throw .invalidLayerOverride("'\(parts[1])' in '\(spec)' is not K[/V]") }
        let k = kv[0] == "-" ? nil : kv[0]
        let v = kv.count == 2 ? (kv[1] == "-" ? nil : kv[1]) : k
        return KVLayerOverride(layers: layers, keyScheme: k, valueScheme: v)
    }

    /// Whether the override covers `layer` of a model with `layerCount` layers.
    public func covers(_ layer: Int, layerCount: Int) -> Bool {
        layers.contains { ($0 >= 0 ? $0 : layerCount + $0) == layer }
    }
}

public struct KVCacheConfiguration: Sendable, Equatable {
    public var keyScheme: String
    public var valueScheme: String
    public var options: KVSchemeOptions
    public var overrides: [KVLayerOverride]
    /// First tokens kept in f16 on global layers (`--kv-sink`).
    public var sinkTokens: Int
    /// Most recent tokens kept in f16 (`--kv-window`).
    public var windowTokens: Int
    /// Online-softmax (flash) attention, the default. `false` (`-fa off`) computes the full softmax
    /// row first and rounds the probabilities to the V cache's element type before the value sum,
    /// as llama.cpp does without flash attention (float caches only).
    public var flashAttention: Bool
    /// Numerics of the whole forward pass (`--numerics`); kept here because the cache configuration
    /// reaches every place a session is built. `.ggml` also selects the flash-attention-off path
    /// on f32/f16 caches. Set it through `SessionConfiguration.numerics`.
    public var numerics: Numerics

    public init(keyScheme: String = "f16", valueScheme: String = "f16", options: KVSchemeOptions = .init(),
                overrides: [KVLayerOverride] = [], sinkTokens: Int = 0, windowTokens: Int = 0,
                flashAttention: Bool = true, numerics: Numerics = .fast) {
        self.keyScheme = keyScheme
        self.valueScheme = valueScheme
        self.options = options
        self.overrides = overrides
        self.sinkTokens = sinkTokens
        self.windowTokens = windowTokens
        self.flashAttention = flashAttention
        self.numerics = numerics
    }

    /// The K and V scheme names for `layer` after overrides (the last matching override wins).
    public func schemes(forLayer layer: Int, layerCount: Int) -> (key: String, value: String) {
        var k = keyScheme, v = valueScheme
        for o in overrides where o.covers(layer, layerCount: layerCount) {
            if let ok = o.keyScheme { k = ok }
            if let ov = o.valueScheme { v = ov }
        }
        return (k, v)
    }
}

/// The model's view of one layer's cache: heads, dims, attention span and RoPE.
public struct KVLayerSpec: Sendable, Equatable {
    public let kvHeads: Int
    public let keyDim: Int
    public let valueDim: Int
    /// nil for global attention, else the sliding-window length (a query sees this many positions, itself included).
    public let window: Int?
    public let rope: RotaryEmbedding?

    public init(kvHeads: Int, keyDim: Int, valueDim: Int, window: Int? = nil, rope: RotaryEmbedding?) {
        self.kvHeads = kvHeads
        self.keyDim = keyDim
        self.valueDim = valueDim
        self.window = window
        self.rope = rope
    }
}
