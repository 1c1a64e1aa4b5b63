// A cache scheme that records what the model writes, for `godwit calibrate`
// (GodwitEval/Calibration.swift): keys before RoPE (like the KVQuant key store receives them) and
// values, per layer, skipping position 0 (the attention sink, which the nuq schemes keep in f16).
// It otherwise behaves like f32 (keys kept pre-RoPE and rotated when scoring). Not registered
// globally: the calibration driver registers it in a private KVSchemeRegistry.
import Foundation
import GodwitKernels

/// Recorded K (pre-RoPE) and V per layer: keys[layer] [tokens, kvHeads · keyDim], values[layer] [tokens, kvHeads · valueDim].
public final class KVRecording: @unchecked Sendable {
    private let lock = NSLock()
    private var keyData: [Int: [Float]] = [:]
    private var valueData: [Int: [Float]] = [:]
    private var widths: [Int: (key: Int, value: Int)] = [:]
    /// Σ q_c² per layer over the query rows seen, [kvHeads · keyDim] (a KV head's query heads summed).
    private var queryEnergySums: [Int: [Float]] = [:]
    private var queryRows: [Int: Int] = [:]

    public init() {}

    func append(layer: Int, role: KVRole, _ src: UnsafePointer<Float>, tokenStride: Int, width: Int, count: Int, firstPosition: Int) {
        lock.lock(); defer { lock.unlock() }
        var w = widths[layer] ?? (0, 0)
        if role == .key { w.key = width } else { w.value = width }
        widths[layer] = w
        for t in 0..<count where firstPosition + t > 0 {
            let row = UnsafeBufferPointer(start: src + t * tokenStride, count: width)
            if role == .key { keyData[layer, default: []].append(contentsOf: row) } else { valueData[layer, default: []].append(contentsOf: row) }
        }
    }

    /// Adds the squared coordinates of `count` prepared (RoPE'd, scaled) queries of one KV head,
    /// `stride` bytes apart, each [dim] f32, to the layer's energies.
    func addQueries(layer: Int, head: Int, heads: Int, _ q: UnsafeRawPointer, count: Int, stride: Int, dim: Int) {
        lock.lock(); defer { lock.unlock() }
        if queryEnergySums[layer] == nil { queryEnergySums[layer] = [Float](repeating: 0, count: heads * dim) }
        // Mutated in place (a local copy taken out of the dictionary would copy the array on every call).
        queryEnergySums[layer]!.withUnsafeMutableBufferPointer { e in
            for r in 0..<count {
                let row = (q + r * stride).assumingMemoryBound(to: Float.self)
                for c in 0..<dim { e[head * dim + c] += row[c] * row[c] }
            }
        }
        if head == 0 { queryRows[layer, default: 0] += count }
    }

    /// Mean over query rows of q_c² (post-RoPE, scaled) per KV head's query heads, [kvHeads · keyDim]; empty if none seen.
    public func queryEnergy(layer: Int) -> [Float] {
        lock.lock(); defer { lock.unlock() }
        guard let e = queryEnergySums[layer], let n = queryRows[layer], n > 0 else { return [] }
        return e.map { $0 / Float(n) }
    }

    /// Layers recorded so far, ascending.
    public var layers: [Int] { lock.lock(); defer { lock.unlock() }; return widths.keys.sorted() }
    /// Recorded pre-RoPE keys of a layer: [tokens, kvHeads · keyDim].
    public func keys(layer: Int) -> [Float] { lock.lock(); defer { lock.unlock() }; return keyData[layer] ?? [] }
    /// Recorded values of a layer: [tokens, kvHeads · valueDim].
    public func values(layer: Int) -> [Float] { lock.lock(); defer { lock.unlock() }; return valueData[layer] ?? [] }
    /// Frees a layer's samples.
    public func drop(layer: Int) { lock.lock(); defer { lock.unlock() }; keyData[layer] = nil; valueData[layer] = nil }
}

/// The recorder scheme (f32, pre-RoPE keys). Register it in a private registry.
public struct KVRecordingScheme: KVScheme {
    public let name: String
    public let recording: KVRecording

    public init(name: String = "record", recording: KVRecording) {
        self.name = name
        self.recording = recording
    }

    public var summary: String { "f32, records pre-RoPE K and V for calibration" }
    public var source: String { "godwit calibrate" }
    public var isQuantized: Bool { false }
    public func bitsPerValue(headDim: Int, role: KVRole, options: KVSchemeOptions) -> Double { 32 }
    public func rotation(role: KVRole, headDim: Int, options: KVSchemeOptions) -> (any KVRotation)? { nil }
    public func makeKeyStore(_ context: KVStoreContext) throws(KVCacheError) -> any KeyStore {
        RecordingKeyStore(context.geometry, rope: context.rope, recording: recording)
    }
    public func makeValueStore(_ context: KVStoreContext) throws(KVCacheError) -> any ValueStore {
        RecordingValueStore(context.geometry, recording: recording)
    }
}

final class RecordingKeyStore: PreRoPEFloatKeyStore {
    let recording: KVRecording
    init(_ g: KVStoreGeometry, rope: RotaryEmbedding?, recording: KVRecording) {
        self.recording = recording
        super.init(g, rope: rope)
    }
    override func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        recording.append(layer: geometry.layer, role: .key, src, tokenStride: tokenStride,
                         width: geometry.headCount * geometry.headDim, count: count, firstPosition: firstPosition)
        super.write(src, tokenStride: tokenStride, count: count, firstPosition: firstPosition)
    }
    /// Records the query rows once per row block: every block's first key range starts at position 0
    /// (global layers; a sliding-window layer's later blocks are not recorded).
    override func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                         into out: UnsafeMutablePointer<Float>, outStride: Int) {
        if positions.lowerBound == 0 {
            recording.addQueries(layer: geometry.layer, head: head, heads: geometry.headCount, queries, count: queryCount,
                                 stride: preparedQueryBytes, dim: geometry.headDim)
        }
        super.scores(queries: queries, queryCount: queryCount, head: head, positions: positions, into: out, outStride: outStride)
    }
}

/// f32 values that are also recorded. [headCount, capacity, headDim] floats (FloatStore).
final class RecordingValueStore: ValueStore {
    let base: FloatStore<F32Element>
    let recording: KVRecording
    init(_ g: KVStoreGeometry, recording: KVRecording) {
        base = FloatStore<F32Element>(g)
        self.recording = recording
    }
    var geometry: KVStoreGeometry { base.geometry }
    var allocatedBytes: Int { base.allocatedBytes }
    func bytesHeld(tokens: Int) -> Int { base.bytesHeld(tokens: tokens) }
    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        recording.append(layer: geometry.layer, role: .value, src, tokenStride: tokenStride,
                         width: geometry.headCount * geometry.headDim, count: count, firstPosition: firstPosition)
        base.write(src, tokenStride: tokenStride, count: count, firstPosition: firstPosition)
    }
    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) { base.read(head: head, positions: positions, into: out) }
    func accumulate(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                    positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int) {
        base.accumulate(weights: weights, weightStride: weightStride, queryCount: queryCount, head: head,
                        positions: positions, into: acc, accStride: accStride)
    }
}
