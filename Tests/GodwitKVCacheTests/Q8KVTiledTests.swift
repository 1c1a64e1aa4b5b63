import GodwitKVCache
import Testing

/// q8_kv keys in 16-position tiles (TiledQ8KVKeyStore) and values through the column kernel:
/// scores are bitwise the row formula Float(Σ k_i·q_i as Int32) · (d_k·d_q) and value sums bitwise
/// the sequential fma of the decoded rows, on a ring whose capacity is not a multiple of 16, written
/// in uneven batches, over ranges that start and end inside tiles, at head dims 64 and 256.
@Suite struct Q8KVTiledTests {
    /// ik_llama's quantize_row_q8_KV as Q8KVStore.encode does it: d = absmax/127, q = rne(x/d).
    static func encode(_ x: ArraySlice<Float>) -> (d: Float, q: [Int32]) {
        var amax: Float = 0
        for v in x { amax = max(amax, abs(v)) }
        let scale = amax / 127
        let inv: Float = scale > 0 && scale.isFinite ? 1 / scale : 0
        return (inv == 0 ? 0 : scale, x.map { Int32(max(-127, min(127, ($0 * inv).rounded(.toNearestOrEven)))) })
    }

    static func store(role: KVRole, dim: Int, heads: Int, capacity: Int) throws -> any KVStore {
        let scheme = try KVSchemeRegistry.shared.scheme(named: "q8_kv")
        let ctx = KVStoreContext(geometry: KVStoreGeometry(layer: 0, headCount: heads, headDim: dim, capacity: capacity),
                                 role: role, options: .init(), rope: nil)
        return role == .key ? try scheme.makeKeyStore(ctx) : try scheme.makeValueStore(ctx)
    }

    /// Writes `data` [written, heads·dim] in uneven batches (positions past the capacity overwrite the ring).
    static func fill(_ store: any KVStore, _ data: [Float], written: Int, width: Int) {
        data.withUnsafeBufferPointer { k in
            var t = 0
            for n in [1, 12, 40, 2, 15] where t < written {
                let m = min(n, written - t)
                store.write(k.baseAddress! + t * width, tokenStride: width, count: m, firstPosition: t)
                t += m
            }
            if t < written { store.write(k.baseAddress! + t * width, tokenStride: width, count: written - t, firstPosition: t) }
        }
    }

    @Test("Tiled q8_kv scores are bitwise the row formula", arguments: [64, 256])
    func scoresBitwise(dim: Int) throws {
        let heads = 2, capacity = 37, written = 70
        let store = try Self.store(role: .key, dim: dim, heads: heads, capacity: capacity) as! any KeyStore
        var rng = TestRandom(seed: UInt64(dim) + 11)
        let keys = rng.vectors(count: written, dim: heads * dim)
        Self.fill(store, keys, written: written, width: heads * dim)
        let queries = rng.vectors(count: 3, dim: dim, outliers: false)
        let qb = store.preparedQueryBytes
        var prepared = [UInt8](repeating: 0, count: 3 * qb)
        prepared.withUnsafeMutableBytes { p in
            queries.withUnsafeBufferPointer { q in for i in 0..<3 { store.prepareQuery(q.baseAddress! + i * dim, into: p.baseAddress! + i * qb) } }
        }
        let q = (0..<3).map { Self.encode(queries[$0 * dim..<($0 + 1) * dim]) }
        for head in 0..<heads {
            // Live positions 33..<70 (slots 33..<37, then 0..<33); no range wraps the ring.
            for range in [33..<37, 37..<70, 40..<55, 47..<49, 69..<70, 53..<69] {
                var fast = [Float](repeating: .nan, count: 3 * range.count)
                prepared.withUnsafeBytes { p in
                    fast.withUnsafeMutableBufferPointer {
                        store.scores(queries: p.baseAddress!, queryCount: 3, head: head, positions: range, into: $0.baseAddress!, outStride: range.count)
                    }
                }
                var back = [Float](repeating: 0, count: range.count * dim)
                back.withUnsafeMutableBufferPointer { store.read(head: head, positions: range, into: $0.baseAddress!) }
                for (j, p) in range.enumerated() {
                    let k = Self.encode(keys[(p * heads + head) * dim..<(p * heads + head + 1) * dim])
                    #expect(Array(back[j * dim..<(j + 1) * dim]) == k.q.map { Float($0) * k.d }, "read-back of position \(p)")
                    for i in 0..<3 {
                        var dot: Int32 = 0
                        for c in 0..<dim { dot &+= k.q[c] * q[i].q[c] }
                        let expected = Float(dot) * (k.d * q[i].d)
                        #expect(fast[i * range.count + j].bitPattern == expected.bitPattern,
                                "dim \(dim) head \(head) query \(i) position \(p): \(fast[i * range.count + j]) vs \(expected)")
                    }
                }
            }
        }
        #expect(store.bytesHeld(tokens: capacity) == capacity * (4 + dim) * heads)
        #expect(store.allocatedBytes == 48 * (4 + dim) * heads)
    }

    @Test("q8_kv value sums are bitwise the sequential fma of the decoded rows", arguments: [64, 256])
    func accumulateBitwise(dim: Int) throws {
        let heads = 2, capacity = 37, written = 70
        let store = try Self.store(role: .value, dim: dim, heads: heads, capacity: capacity) as! any ValueStore
        var rng = TestRandom(seed: UInt64(dim) + 29)
        let values = rng.vectors(count: written, dim: heads * dim)
        Self.fill(store, values, written: written, width: heads * dim)
        for rows in [1, 3, 4, 5] {
            for range in [33..<37, 37..<70, 40..<55, 69..<70] {
                var weights = [Float](repeating: 0, count: rows * range.count)
                for i in weights.indices { weights[i] = rng.uniform() }
                var acc = [Float](repeating: 0, count: rows * dim)
                for i in acc.indices { acc[i] = rng.uniform() - 0.5 }
                var expected = acc
                var v = [Float](repeating: 0, count: range.count * dim)
                v.withUnsafeMutableBufferPointer { store.read(head: 1, positions: range, into: $0.baseAddress!) }
                for g in 0..<rows {
                    for j in 0..<range.count {
                        for i in 0..<dim { expected[g * dim + i] = expected[g * dim + i].addingProduct(v[j * dim + i], weights[g * range.count + j]) }
                    }
                }
                weights.withUnsafeBufferPointer { w in
                    acc.withUnsafeMutableBufferPointer {
                        store.accumulate(weights: w.baseAddress!, weightStride: range.count, queryCount: rows, head: 1,
                                         positions: range, into: $0.baseAddress!, accStride: dim)
                    }
                }
                #expect(acc.map(\.bitPattern) == expected.map(\.bitPattern), "dim \(dim) rows \(rows) range \(range)")
            }
        }
    }
}
