import Foundation
import GodwitKVCache
import Testing

/// tcq keys in 16-position tiles (TiledTCQKeyStore): decode-sized query groups (≤ 4 rows, scored while
/// the tile decodes) and prompt-sized ones (> 4 rows, the tile decoded once) equal the scalar twin,
/// over a ring that wrapped and ranges starting and ending inside tiles (per-head writes: TCQHeadParallelTests);
/// tcq3 at head dim 16 (k·d = 48, not a multiple of 32) keeps row records and still scores right.
@Suite struct TiledTCQKeyTests {
    static func keyStore(_ name: String, dim: Int, heads: Int, capacity: Int) throws -> any ScalarTwinKeyStore {
        let g = KVStoreGeometry(layer: 0, headCount: heads, headDim: dim, capacity: capacity)
        let ctx = KVStoreContext(geometry: g, role: .key, options: .init(), rope: nil)
        return try #require(try KVSchemeRegistry.shared.scheme(named: name).makeKeyStore(ctx) as? any ScalarTwinKeyStore)
    }

    @Test("Fused and batched tile scores equal the scalar twin across a ring wrap and partial tiles",
          arguments: [("tcq2", 64), ("tcq3", 64), ("tcq4", 64), ("tcq3", 256), ("tcq2", 16), ("tcq3", 16)])
    func scoresMatchTwin(name: String, dim: Int) throws {
        let heads = 2, capacity = 37, written = 50
        let store = try Self.keyStore(name, dim: dim, heads: heads, capacity: capacity)
        var rng = TestRandom(seed: UInt64(dim) ^ 0x7C9)
        let keys = rng.vectors(count: written, dim: heads * dim)
        keys.withUnsafeBufferPointer { store.write($0.baseAddress!, tokenStride: heads * dim, count: written, firstPosition: 0) }
        for queryCount in [1, 3, 4, 6] {
            let queries = rng.vectors(count: queryCount, dim: dim, outliers: false)
            let prepared = preparedQueries(store, queries, count: queryCount, dim: dim)
            // Slots 13…36 (from lane 13 of a tile to lane 4 of the last) and 0…12 after the wrap.
            for positions in [13..<37, 37..<50, 40..<45] {
                for head in 0..<heads {
                    let n = positions.count
                    let (fast, twin) = fastAndTwinScores(store, prepared, count: queryCount, head: head, positions: positions, stride: n)
                    let mag = queries.map(abs).reduce(0, +) * 4
                    for i in 0..<queryCount * n {
                        #expect(abs(fast[i] - twin[i]) <= 1e-5 * mag, "\(name) d\(dim) q\(queryCount) \(positions) h\(head) #\(i): \(fast[i]) vs \(twin[i])")
                    }
                }
            }
        }
    }

    @Test("tcq stores, and sink/window wrappers around them, ask for their own write task; cheap stores do not")
    func writeCost() throws {
        let g = KVStoreGeometry(layer: 0, headCount: 3, headDim: 64, capacity: 32)
        func store(_ name: String, _ role: KVRole) throws -> any KVStore {
            let ctx = KVStoreContext(geometry: g, role: role, options: .init(), rope: nil)
            let scheme = try KVSchemeRegistry.shared.scheme(named: name)
            return role == .key ? try scheme.makeKeyStore(ctx) : try scheme.makeValueStore(ctx)
        }
        #expect(try store("tcq3", .key).writesExpensively && store("tcq3", .value).writesExpensively)
        #expect(try !store("f16", .key).writesExpensively && !store("q4_0", .value).writesExpensively)
        let wrapped = MixedPrecisionValueStore(inner: try store("tcq2", .value) as! any ValueStore, sinkTokens: 1, windowTokens: 0, maxBatch: 8)
        #expect(wrapped.writesExpensively)
        let cheap = MixedPrecisionValueStore(inner: try store("q4_0", .value) as! any ValueStore, sinkTokens: 1, windowTokens: 0, maxBatch: 8)
        #expect(!cheap.writesExpensively)
    }
}
