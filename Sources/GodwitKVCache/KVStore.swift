// The storage contract between the cache and the schemes. A store holds one role (K or V) of one
// layer for every KV head, addressed by absolute token position: position p lives in slot
// p % capacity (global layers have capacity ≥ context, so slot = p; sliding-window layers keep a
// ring). Attention reads positions in ranges that never wrap inside one call (the driver splits).


/// Geometry of one store. Layout is the scheme's own, but every built-in one is head-major:
/// [headCount, capacity, bytesPerVector], so a head's positions are contiguous for streaming reads.
public struct KVStoreGeometry: Sendable, Equatable {
    public let layer: Int
    public let headCount: Int
    public let headDim: Int
    /// Slots held (ring size for sliding-window layers).
    public let capacity: Int
    /// Whether the layer attends to all positions or a sliding window of this many positions.
    public let window: Int?

    public init(layer: Int, headCount: Int, headDim: Int, capacity: Int, window: Int? = nil) {
        self.layer = layer
        self.headCount = headCount
        self.headDim = headDim
        self.capacity = capacity
        self.window = window
    }
}

/// Storage for one role of one layer.
public protocol KVStore: AnyObject {
    var geometry: KVStoreGeometry { get }
    /// Bytes allocated (fixed at creation so decoding never allocates).
    var allocatedBytes: Int { get }
    /// Bytes that hold the given number of cached tokens (payload, scales, side data; for bpv).
    func bytesHeld(tokens: Int) -> Int
    /// Encodes `count` tokens at positions first..<first+count.
    /// src: [count, headCount, headDim] with `tokenStride` floats between tokens.
    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int)
    /// Decodes positions of one head into floats (tests, prompt-processing tiles): out [positions.count, headDim].
    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>)
    /// Forgets positions ≥ `count` (truncation); stores with internal grouping re-derive their state.
    func truncate(to count: Int)
    /// Whether `write` is dear enough (a search per vector) that the cache gives it a task of its own on
    /// the thread pool beside the layer's other store (default false; HeadParallelWrite stores get a task
    /// per head anyway; wrappers report their inner store's cost).
    var writesExpensively: Bool { get }
}

extension KVStore {
    public func truncate(to count: Int) {}
    public var writesExpensively: Bool { self is any HeadParallelWrite }
}

/// A store whose encoding is dear (a search per head vector, tcq{b}) and can encode one KV head per
/// task: `write(head:…)` touches only that head's records and that head's scratch, so the cache runs
/// the heads of a layer on its thread pool.
public protocol HeadParallelWrite: KVStore {
    /// `write` restricted to one head: src [count, headCount, headDim] as for `write`.
    func write(head: Int, _ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int)
}

extension HeadParallelWrite {
    /// One write is each head's write in turn.
    public func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        for h in 0..<geometry.headCount { write(head: h, src, tokenStride: tokenStride, count: count, firstPosition: firstPosition) }
    }
}

/// Key storage: scores queries directly against the encoded keys.
public protocol KeyStore: KVStore {
    /// Whether `write` receives keys before or after RoPE (default: after).
    var keyInput: KeyInput { get }
    /// Scratch bytes one prepared query occupies.
    var preparedQueryBytes: Int { get }
    /// Encodes a query vector q [headDim] (already RoPE'd, rotated and scaled) for `scores`.
    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer)
    /// out[g * outStride + j] = q_g · k(head, positions.lowerBound + j) for g in 0..<queryCount.
    /// queries: queryCount prepared queries, `preparedQueryBytes` apart.
    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int)
}

/// Value storage: accumulates probability-weighted values directly from the encoded values.
public protocol ValueStore: KVStore {
    /// acc[g * accStride + d] += Σ_j w[g * weightStride + j] · v(head, positions.lowerBound + j)[d]
    func accumulate(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                    positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int)
}

/// What the key store expects to receive: keys after RoPE (all parity formats) or before
/// (KVQuant-style schemes, which apply RoPE when reading).
public enum KeyInput: Sendable { case postRoPE, preRoPE }

extension KeyStore {
    public var keyInput: KeyInput { .postRoPE }
}
