// Full-precision sinks and recent window around any quantized store (`--kv-sink S`, `--kv-window W`).
// Sources: attention sinks (StreamingLLM, arXiv 2309.17453) and the full-precision recent window of
// KIVI (arXiv 2402.02750) / "residual" of QuantizedCache, applied to any inner scheme.
// Positions of one store are split in three parts:
//   sinks   0 ..< S            f16 (global layers only; a sliding-window layer has S = 0)
//   inner   S ..< innerEnd     the quantized scheme's own store (positions enter it only when they
//                              leave the window: deferred encode from the f16 ring)
//   window  innerEnd ..< end   f16 ring of W + maxBatch slots (slot p % (W + maxBatch)); after every
//                              write end − innerEnd ≤ W
// bytesHeld(t) = f16 · (min(S, t) + min(W, t − S′)) · heads · dim + inner.bytesHeld(t − S′ − W′):
// the inner store only ever holds the middle part.
// Keys arrive after RoPE and after the inner scheme's rotation (the f16 copies hold rotated vectors;
// scores are invariant). Inner stores that want pre-RoPE keys are refused (KVCacheError).
// Deviation: prompt tokens are written before attention reads them, so within a prompt batch the
// window is the last W positions of the batch, not of each query (decode is exact).
import GodwitKernels

/// The f16 parts shared by the key and value wrappers, and the bookkeeping of who holds what.
final class MixedPrecisionParts {
    let geometry: KVStoreGeometry
    let inner: any KVStore
    let sinkTokens: Int
    let windowTokens: Int
    /// [headCount, sinkTokens, headDim] f16, nil without sinks.
    let sinks: FloatStore<F16Element>?
    /// [headCount, windowTokens + maxBatch, headDim] f16 ring.
    let window: FloatStore<F16Element>
    /// Staging for evicted tokens: [evictChunk, headCount, headDim] f32.
    let staging: UnsafeMutablePointer<Float>
    static let evictChunk = 16
    private(set) var end = 0
    private(set) var innerEnd: Int

    init(inner: any KVStore, sinkTokens: Int, windowTokens: Int, maxBatch: Int) {
        let g = inner.geometry
        geometry = g
        self.inner = inner
        self.sinkTokens = g.window == nil ? max(0, min(sinkTokens, g.capacity)) : 0
        self.windowTokens = max(0, min(windowTokens, g.capacity))
        sinks = self.sinkTokens > 0
            ? FloatStore<F16Element>(KVStoreGeometry(layer: g.layer, headCount: g.headCount, headDim: g.headDim, capacity: self.sinkTokens))
            : nil
        window = FloatStore<F16Element>(KVStoreGeometry(layer: g.layer, headCount: g.headCount, headDim: g.headDim,
                                                        capacity: self.windowTokens + max(1, maxBatch)))
        staging = .allocate(capacity: Self.evictChunk * g.headCount * g.headDim)
        staging.initialize(repeating: 0, count: Self.evictChunk * g.headCount * g.headDim)
        innerEnd = self.sinkTokens
    }

    deinit { staging.deallocate() }

    var vectorBytes: Int { geometry.headCount * geometry.headDim * 2 }

    var allocatedBytes: Int {
        (sinks?.allocatedBytes ?? 0) + window.allocatedBytes + inner.allocatedBytes
            + Self.evictChunk * geometry.headCount * geometry.headDim * 4
    }

    func bytesHeld(tokens: Int) -> Int {
        let t = max(0, tokens)
        let s = min(sinkTokens, t)
        let w = min(windowTokens, t - s)
        return (s + w) * vectorBytes + inner.bytesHeld(tokens: t - s - w)
    }

    /// The parts of a position range: sinks, inner, window (each possibly empty).
    @inline(__always) func split(_ r: Range<Int>) -> (sink: Range<Int>, inner: Range<Int>, window: Range<Int>) {
        let a = r.lowerBound, b = r.upperBound
        let s = min(max(a, min(b, sinkTokens)), b)
        let i = min(max(s, min(b, innerEnd)), b)
        return (a..<s, s..<i, i..<b)
    }

    /// Calls `body` with the sub-ranges of `r` (window positions) that do not wrap in the ring.
    @inline(__always) func windowRuns(_ r: Range<Int>, _ body: (Range<Int>) -> Void) {
        let cap = window.geometry.capacity
        var p = r.lowerBound
        while p < r.upperBound {
            let stop = min(r.upperBound, (p / cap + 1) * cap)
            body(p..<stop)
            p = stop
        }
    }

    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        if firstPosition < end { truncate(to: firstPosition) }
        // A gap (never produced by KVCache) is filled with zero vectors.
        while end < firstPosition {
            let n = min(Self.evictChunk, firstPosition - end)
            staging.update(repeating: 0, count: n * geometry.headCount * geometry.headDim)
            place(staging, tokenStride: geometry.headCount * geometry.headDim, count: n, firstPosition: end)
        }
        place(src, tokenStride: tokenStride, count: count, firstPosition: firstPosition)
    }

    /// Writes into sinks / the window ring, then moves what left the window into the inner store.
    private func place(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let toSinks = max(0, min(count, sinkTokens - firstPosition))
        if toSinks > 0 { sinks!.write(src, tokenStride: tokenStride, count: toSinks, firstPosition: firstPosition) }
        if count > toSinks {
            window.write(src + toSinks * tokenStride, tokenStride: tokenStride, count: count - toSinks,
                         firstPosition: firstPosition + toSinks)
        }
        end = firstPosition + count
        let d = geometry.headDim, hc = geometry.headCount
        while innerEnd < end - windowTokens {
            let n = min(Self.evictChunk, end - windowTokens - innerEnd)
            for t in 0..<n {
                for h in 0..<hc { window.read(head: h, positions: (innerEnd + t)..<(innerEnd + t + 1), into: staging + (t * hc + h) * d) }
            }
            inner.write(staging, tokenStride: hc * d, count: n, firstPosition: innerEnd)
            innerEnd += n
        }
    }

    func truncate(to count: Int) {
        guard count < end else { return }
        end = max(0, count)
        if end < innerEnd {
            inner.truncate(to: end)
            innerEnd = max(end, sinkTokens)
        }
    }

    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let (s, i, w) = split(positions)
        let d = geometry.headDim, lo = positions.lowerBound
        if !s.isEmpty { sinks!.read(head: head, positions: s, into: out + (s.lowerBound - lo) * d) }
        if !i.isEmpty { inner.read(head: head, positions: i, into: out + (i.lowerBound - lo) * d) }
        windowRuns(w) { run in window.read(head: head, positions: run, into: out + (run.lowerBound - lo) * d) }
    }
}

/// Keys: f16 sinks and window around a quantized key store.
/// Prepared query: [the f16 stores' prepared query, padded to 64 bytes][the inner store's prepared query].
public final class MixedPrecisionKeyStore: KeyStore {
    let parts: MixedPrecisionParts
    let inner: any KeyStore
    let floatQueryBytes: Int
    public let preparedQueryBytes: Int

    public init(inner: any KeyStore, sinkTokens: Int, windowTokens: Int, maxBatch: Int) throws(KVCacheError) {
        guard inner.keyInput == .postRoPE else {
            throw .invalidOption(name: sinkTokens > 0 ? "kv-sink" : "kv-window", value: "\(sinkTokens > 0 ? sinkTokens : windowTokens)",
                                 reason: "the f16 sink/window wrapper needs a key store that takes keys after RoPE; layer \(inner.geometry.layer)'s keys are kept before RoPE")
        }
        self.inner = inner
        parts = MixedPrecisionParts(inner: inner, sinkTokens: sinkTokens, windowTokens: windowTokens, maxBatch: maxBatch)
        floatQueryBytes = (parts.window.preparedQueryBytes + 63) / 64 * 64
        preparedQueryBytes = floatQueryBytes + (inner.preparedQueryBytes + 63) / 64 * 64
    }

    public var geometry: KVStoreGeometry { parts.geometry }
    public var allocatedBytes: Int { parts.allocatedBytes }
    public var writesExpensively: Bool { parts.inner.writesExpensively }
    public func bytesHeld(tokens: Int) -> Int { parts.bytesHeld(tokens: tokens) }
    public func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        parts.write(src, tokenStride: tokenStride, count: count, firstPosition: firstPosition)
    }
    public func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) { parts.read(head: head, positions: positions, into: out) }
    public func truncate(to count: Int) { parts.truncate(to: count) }

    public func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        parts.window.prepareQuery(q, into: dst)   // the sinks are the same f16 store type
        inner.prepareQuery(q, into: dst + floatQueryBytes)
    }

    /// Each part scores its positions; the float parts and the inner store see one query at a time
    /// (their prepared queries are not `preparedQueryBytes` apart).
    public func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let (s, i, w) = parts.split(positions)
        let lo = positions.lowerBound
        for r in 0..<queryCount {
            let q = queries + r * preparedQueryBytes
            let o = out + r * outStride
            if !s.isEmpty {
                parts.sinks!.scores(queries: q, queryCount: 1, head: head, positions: s, into: o + (s.lowerBound - lo), outStride: outStride)
            }
            if !i.isEmpty {
                inner.scores(queries: q + floatQueryBytes, queryCount: 1, head: head, positions: i,
                             into: o + (i.lowerBound - lo), outStride: outStride)
            }
            parts.windowRuns(w) { run in
                parts.window.scores(queries: q, queryCount: 1, head: head, positions: run, into: o + (run.lowerBound - lo), outStride: outStride)
            }
        }
    }
}

/// Values: f16 sinks and window around a quantized value store.
public final class MixedPrecisionValueStore: ValueStore {
    let parts: MixedPrecisionParts
    let inner: any ValueStore

    public init(inner: any ValueStore, sinkTokens: Int, windowTokens: Int, maxBatch: Int) {
        self.inner = inner
        parts = MixedPrecisionParts(inner: inner, sinkTokens: sinkTokens, windowTokens: windowTokens, maxBatch: maxBatch)
    }

    public var geometry: KVStoreGeometry { parts.geometry }
    public var allocatedBytes: Int { parts.allocatedBytes }
    public var writesExpensively: Bool { parts.inner.writesExpensively }
    public func bytesHeld(tokens: Int) -> Int { parts.bytesHeld(tokens: tokens) }
    public func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        parts.write(src, tokenStride: tokenStride, count: count, firstPosition: firstPosition)
    }
    public func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) { parts.read(head: head, positions: positions, into: out) }
    public func truncate(to count: Int) { parts.truncate(to: count) }

    public func accumulate(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                    positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int) {
        let (s, i, w) = parts.split(positions)
        let lo = positions.lowerBound
        if !s.isEmpty {
            parts.sinks!.accumulate(weights: weights + (s.lowerBound - lo), weightStride: weightStride, queryCount: queryCount,
                                    head: head, positions: s, into: acc, accStride: accStride)
        }
        if !i.isEmpty {
            inner.accumulate(weights: weights + (i.lowerBound - lo), weightStride: weightStride, queryCount: queryCount,
                             head: head, positions: i, into: acc, accStride: accStride)
        }
        parts.windowRuns(w) { run in
            parts.window.accumulate(weights: weights + (run.lowerBound - lo), weightStride: weightStride, queryCount: queryCount,
                                    head: head, positions: run, into: acc, accStride: accStride)
        }
    }
}
