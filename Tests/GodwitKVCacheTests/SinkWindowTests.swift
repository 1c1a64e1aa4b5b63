import Foundation
import GodwitKVCache
import GodwitKernels
import Testing

/// The --kv-sink / --kv-window wrapper: f16 parts score and accumulate exactly like an f16 store,
/// middle positions exactly like the inner scheme's store, honest bytesHeld, no sinks on
/// sliding-window layers, option validation, and attention through the cache.
@Suite struct SinkWindowTests {
    static let dim = 64, heads = 2

    static func store(_ scheme: String, _ g: KVStoreGeometry, role: KVRole) throws -> any KVStore {
        var o = KVSchemeOptions()
        o.groupSize = 16
        o.residual = 0
        let s = try KVSchemeRegistry.shared.scheme(named: scheme)
        let c = KVStoreContext(geometry: g, role: role, options: o, rope: nil)
        return role == .key ? try s.makeKeyStore(c) : try s.makeValueStore(c)
    }

    static func scores(_ k: any KeyStore, queries: [Float], head: Int, _ range: Range<Int>) -> [Float] {
        let qb = k.preparedQueryBytes, n = queries.count / dim
        var prepared = [UInt8](repeating: 0, count: n * qb)
        prepared.withUnsafeMutableBytes { p in
            queries.withUnsafeBufferPointer { q in for i in 0..<n { k.prepareQuery(q.baseAddress! + i * dim, into: p.baseAddress! + i * qb) } }
        }
        var out = [Float](repeating: .nan, count: n * range.count)
        prepared.withUnsafeBytes { p in
            out.withUnsafeMutableBufferPointer {
                k.scores(queries: p.baseAddress!, queryCount: n, head: head, positions: range, into: $0.baseAddress!, outStride: range.count)
            }
        }
        return out
    }

    static func accumulate(_ v: any ValueStore, weights: [Float], head: Int, _ range: Range<Int>) -> [Float] {
        let n = weights.count / range.count
        var acc = [Float](repeating: 0, count: n * dim)
        weights.withUnsafeBufferPointer { w in
            acc.withUnsafeMutableBufferPointer {
                v.accumulate(weights: w.baseAddress!, weightStride: range.count, queryCount: n, head: head, positions: range,
                             into: $0.baseAddress!, accStride: dim)
            }
        }
        return acc
    }

    static func write(_ s: any KVStore, _ data: [Float], first: Int, count: Int) {
        data.withUnsafeBufferPointer { s.write($0.baseAddress! + first * heads * dim, tokenStride: heads * dim, count: count, firstPosition: first) }
    }

    @Test("Sink and window positions equal f16, middle positions equal the inner store", arguments: ["q4_0", "kivi2", "kivi4"])
    func partsMatchReferences(scheme: String) throws {
        let sink = 4, window = 8, total = 70, batch = 16
        let g = KVStoreGeometry(layer: 0, headCount: Self.heads, headDim: Self.dim, capacity: 128)
        let keys = try MixedPrecisionKeyStore(inner: try Self.store(scheme, g, role: .key) as! any KeyStore,
                                              sinkTokens: sink, windowTokens: window, maxBatch: batch)
        let values = MixedPrecisionValueStore(inner: try Self.store(scheme, g, role: .value) as! any ValueStore,
                                              sinkTokens: sink, windowTokens: window, maxBatch: batch)
        let f16k = try Self.store("f16", g, role: .key) as! any KeyStore, f16v = try Self.store("f16", g, role: .value) as! any ValueStore
        let innerK = try Self.store(scheme, g, role: .key) as! any KeyStore, innerV = try Self.store(scheme, g, role: .value) as! any ValueStore
        var rng = TestRandom(seed: 21)
        let data = rng.vectors(count: total, dim: Self.heads * Self.dim)
        let queries = rng.vectors(count: 3, dim: Self.dim, outliers: false)
        // The inner store encodes from the f16 ring: its reference gets the f16-rounded vectors.
        let data16 = data.map { Float(Float16($0)) }
        var position = 0
        for n in [13, 16, 1, 1, 16, 5, 1, 16, 1] {
            for s in [keys as any KVStore, values, f16k, f16v] { Self.write(s, data, first: position, count: n) }
            position += n
            // The inner references hold exactly the middle positions sink..<position − window.
            let middle = sink..<max(sink, position - window)
            innerK.truncate(to: 0); innerV.truncate(to: 0)
            if !middle.isEmpty {
                Self.write(innerK, data16, first: middle.lowerBound, count: middle.count)
                Self.write(innerV, data16, first: middle.lowerBound, count: middle.count)
            }
            for h in 0..<Self.heads {
                let all = Self.scores(keys, queries: queries, head: h, 0..<position)
                let f16 = Self.scores(f16k, queries: queries, head: h, 0..<position)
                let mid = middle.isEmpty ? [] : Self.scores(innerK, queries: queries, head: h, middle)
                for r in 0..<3 {
                    for p in 0..<position {
                        let got = all[r * position + p]
                        let want = middle.contains(p) ? mid[r * middle.count + p - middle.lowerBound] : f16[r * position + p]
                        #expect(got == want, "\(scheme) keys: query \(r) position \(p) of \(position)")
                    }
                }
                // Values: one-hot weights pick single positions; dense weights cover all parts at once.
                for p in [0, sink - 1, sink, position / 2, position - window, position - 1] where p >= 0 && p < position {
                    var w = [Float](repeating: 0, count: position)
                    w[p] = 1
                    let got = Self.accumulate(values, weights: w, head: h, 0..<position)
                    let want = middle.contains(p)
                        ? Self.accumulate(innerV, weights: [1], head: h, p..<p + 1)
                        : Self.accumulate(f16v, weights: [1], head: h, p..<p + 1)
                    #expect(got == want, "\(scheme) values: position \(p) of \(position)")
                }
            }
        }
        #expect(keys.bytesHeld(tokens: position) == (sink + window) * Self.heads * Self.dim * 2 + innerK.bytesHeld(tokens: position - sink - window))
    }

    @Test("bytesHeld = f16 sinks + f16 window + inner bytes for the rest")
    func accounting() throws {
        let g = KVStoreGeometry(layer: 0, headCount: 3, headDim: 64, capacity: 512)
        let inner = try Self.store("q4_0", g, role: .key) as! any KeyStore
        let k = try MixedPrecisionKeyStore(inner: inner, sinkTokens: 4, windowTokens: 32, maxBatch: 64)
        let row = 3 * 64 * 2
        for t in [0, 1, 4, 5, 20, 36, 37, 100, 512] {
            let s = min(4, t), w = min(32, t - s)
            #expect(k.bytesHeld(tokens: t) == (s + w) * row + inner.bytesHeld(tokens: t - s - w), "t \(t)")
        }
        #expect(k.bytesHeld(tokens: 512) == 36 * row + 476 * 3 * 2 * 18)
    }

    @Test("A sliding-window layer has no sinks", arguments: ["q4_0", "kivi4"])
    func slidingHasNoSinks(scheme: String) throws {
        let window = 24, batch = 8, wf16 = 4
        let g = KVStoreGeometry(layer: 0, headCount: Self.heads, headDim: Self.dim, capacity: window + batch - 1, window: window)
        let inner = try Self.store(scheme, g, role: .key) as! any KeyStore
        let keys = try MixedPrecisionKeyStore(inner: inner, sinkTokens: 4, windowTokens: wf16, maxBatch: batch)
        let reference = try Self.store(scheme, KVStoreGeometry(layer: 0, headCount: Self.heads, headDim: Self.dim, capacity: 200), role: .key) as! any KeyStore
        let f16 = try Self.store("f16", KVStoreGeometry(layer: 0, headCount: Self.heads, headDim: Self.dim, capacity: 200), role: .key) as! any KeyStore
        var rng = TestRandom(seed: 8)
        let total = 90
        let data = rng.vectors(count: total, dim: Self.heads * Self.dim)
        let queries = rng.vectors(count: 1, dim: Self.dim, outliers: false)
        var position = 0
        while position < total {
            let n = min(batch, total - position)
            for s in [keys as any KVStore, f16] { Self.write(s, data, first: position, count: n) }
            position += n
            reference.truncate(to: 0)
            Self.write(reference, data.map { Float(Float16($0)) }, first: 0, count: position - min(wf16, position))
            // The oldest positions a query may still read (never wrapping the ring in one call).
            let lo = max(0, position - window)
            let ringEnd = (lo / g.capacity + 1) * g.capacity
            for range in [lo..<min(position, ringEnd), min(position, ringEnd)..<position] where !range.isEmpty {
                let got = Self.scores(keys, queries: queries, head: 1, range)
                let inMiddle = range.clamped(to: 0..<(position - min(wf16, position)))
                let mid = inMiddle.isEmpty ? [] : Self.scores(reference, queries: queries, head: 1, inMiddle)
                let top = Self.scores(f16, queries: queries, head: 1, range)
                for (j, p) in range.enumerated() {
                    let want = inMiddle.contains(p) ? mid[p - inMiddle.lowerBound] : top[j]
                    #expect(got[j] == want, "\(scheme) position \(p) after \(position)")
                }
            }
            #expect(keys.bytesHeld(tokens: min(position, window)) ==
                    min(wf16, position) * Self.heads * Self.dim * 2 + inner.bytesHeld(tokens: min(position, window) - min(wf16, position)))
        }
    }

    @Test("Truncation keeps the parts consistent")
    func truncate() throws {
        let g = KVStoreGeometry(layer: 0, headCount: Self.heads, headDim: Self.dim, capacity: 128)
        let keys = try MixedPrecisionKeyStore(inner: try Self.store("kivi4", g, role: .key) as! any KeyStore, sinkTokens: 2, windowTokens: 6, maxBatch: 16)
        let again = try MixedPrecisionKeyStore(inner: try Self.store("kivi4", g, role: .key) as! any KeyStore, sinkTokens: 2, windowTokens: 6, maxBatch: 16)
        var rng = TestRandom(seed: 4)
        let a = rng.vectors(count: 60, dim: Self.heads * Self.dim), b = rng.vectors(count: 60, dim: Self.heads * Self.dim)
        for start in stride(from: 0, to: 40, by: 8) { Self.write(keys, a, first: start, count: 8) }
        keys.truncate(to: 30)
        for start in stride(from: 30, to: 60, by: 10) { Self.write(keys, b, first: start, count: 10) }
        // The reference never went back: positions < 30 from a, ≥ 30 from b, same write batches.
        let mixed = Array(a[0..<30 * Self.heads * Self.dim]) + Array(b[30 * Self.heads * Self.dim..<60 * Self.heads * Self.dim])
        for start in stride(from: 0, to: 30, by: 8) { Self.write(again, mixed, first: start, count: min(8, 30 - start)) }
        for start in stride(from: 30, to: 60, by: 10) { Self.write(again, mixed, first: start, count: 10) }
        var x = [Float](repeating: 0, count: 60 * Self.dim), y = x
        x.withUnsafeMutableBufferPointer { keys.read(head: 1, positions: 0..<60, into: $0.baseAddress!) }
        y.withUnsafeMutableBufferPointer { again.read(head: 1, positions: 0..<60, into: $0.baseAddress!) }
        // kivi groups of 16 start after the 2 sinks: [2, 18), [18, 34), [34, 50), …; the
        // truncation went back into [18, 34), which was re-quantized; every other position is identical.
        #expect(Array(x[0..<18 * Self.dim]) == Array(y[0..<18 * Self.dim]))
        #expect(Array(x[34 * Self.dim..<60 * Self.dim]) == Array(y[34 * Self.dim..<60 * Self.dim]))
        #expect(relativeRMSError(Array(y[18 * Self.dim..<34 * Self.dim]), Array(x[18 * Self.dim..<34 * Self.dim])) < 0.1)
    }

    @Test("Options are validated and float schemes are not wrapped")
    func validation() throws {
        let spec = KVLayerSpec(kvHeads: 1, keyDim: 64, valueDim: 64, rope: nil)
        #expect(throws: KVCacheError.self) {
            try KVCache(specs: [spec], contextLength: 64, maxBatch: 8,
                        configuration: KVCacheConfiguration(keyScheme: "q4_0", valueScheme: "q4_0", sinkTokens: -1), threads: 1)
        }
        #expect(throws: KVCacheError.self) {
            try KVCache(specs: [spec], contextLength: 64, maxBatch: 8,
                        configuration: KVCacheConfiguration(keyScheme: "q4_0", valueScheme: "q4_0", windowTokens: -2), threads: 1)
        }
        #expect(throws: KVCacheError.self) {
            try MixedPrecisionKeyStore(inner: PreRoPEKeys(), sinkTokens: 4, windowTokens: 0, maxBatch: 8)
        }
        // f16 everywhere: wrapping would change nothing; the memory report equals the plain cache's.
        let plain = try KVCache(specs: [spec], contextLength: 64, maxBatch: 8, configuration: KVCacheConfiguration(), threads: 1)
        let wrapped = try KVCache(specs: [spec], contextLength: 64, maxBatch: 8,
                                  configuration: KVCacheConfiguration(sinkTokens: 4, windowTokens: 16), threads: 1)
        #expect(plain.memory(tokens: 40) == wrapped.memory(tokens: 40))
        let q = try KVCache(specs: [spec], contextLength: 64, maxBatch: 8,
                            configuration: KVCacheConfiguration(keyScheme: "q4_0", valueScheme: "q4_0", sinkTokens: 4, windowTokens: 16), threads: 1)
        #expect(q.memory(tokens: 40).logicalBytes == 2 * (20 * 64 * 2 + 20 * 2 * 18))
    }

    @Test("Attention with the whole sequence in the window equals an f16 cache", arguments: ["q4_0", "kivi2"])
    func attentionAllWindow(scheme: String) throws {
        let heads = 4, kvHeads = 2, dim = 64, n = 40
        let spec = KVLayerSpec(kvHeads: kvHeads, keyDim: dim, valueDim: dim, rope: nil)
        var rng = TestRandom(seed: 12)
        let keys = rng.vectors(count: n, dim: kvHeads * dim), values = rng.vectors(count: n, dim: kvHeads * dim)
        let queries = rng.vectors(count: n, dim: heads * dim, outliers: false)
        let pool = ThreadPool(threads: 2)
        var outputs = [[Float]]()
        for config in [KVCacheConfiguration(keyScheme: scheme, valueScheme: scheme, sinkTokens: 4, windowTokens: 64),
                       KVCacheConfiguration(keyScheme: "f16", valueScheme: "f16")] {
            let cache = try KVCache(specs: [spec], contextLength: 64, maxBatch: 16, configuration: config, threads: 2)
            var all = [Float]()
            var position = 0
            for batch in [16, 16] + Array(repeating: 1, count: n - 32) {
                var kb = Array(keys[position * kvHeads * dim..<(position + batch) * kvHeads * dim])
                var vb = Array(values[position * kvHeads * dim..<(position + batch) * kvHeads * dim])
                kb.withUnsafeMutableBufferPointer { kp in vb.withUnsafeMutableBufferPointer { vp in
                    cache.write(layer: 0, keys: kp.baseAddress!, keyStride: kvHeads * dim, values: vp.baseAddress!,
                                valueStride: kvHeads * dim, tokens: batch, firstPosition: position, angles: nil)
                } }
                var out = [Float](repeating: 0, count: batch * heads * dim)
                let q = Array(queries[position * heads * dim..<(position + batch) * heads * dim])
                q.withUnsafeBufferPointer { qp in out.withUnsafeMutableBufferPointer { op in
                    cache.attend(layer: 0, queries: qp.baseAddress!, queryStride: heads * dim, heads: heads, tokens: batch,
                                 firstPosition: position, scale: 0.125, into: op.baseAddress!, outStride: heads * dim, pool: pool)
                } }
                cache.commit(firstPosition: position, tokens: batch)
                all += out
                position += batch
            }
            outputs.append(all)
        }
        // Same f16 vectors; only the Hadamard rotation of q4_0 (applied before the f16 copy) differs.
        #expect(relativeRMSError(outputs[1], outputs[0]) < 2e-3)
    }
}

/// A key store that wants pre-RoPE keys (the wrapper refuses it).
final class PreRoPEKeys: KeyStore {
    let geometry = KVStoreGeometry(layer: 0, headCount: 1, headDim: 64, capacity: 8)
    var keyInput: KeyInput { .preRoPE }
    var allocatedBytes: Int { 0 }
    var preparedQueryBytes: Int { 256 }
    func bytesHeld(tokens: Int) -> Int { 0 }
    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {}
    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {}
    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {}
    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {}
}
