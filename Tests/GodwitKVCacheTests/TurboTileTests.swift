import GodwitKVCache
import Testing

/// TurboQuant keys in 16-position tiles (TiledTurboKeyStore) and values through the column kernels
/// (TurboStore + TurboColumns): fast paths against their scalar twins on a ring whose capacity is not a
/// multiple of 16, written in uneven batches, over ranges that start and end inside tiles; key tiles
/// hold the same codes and scales as value records of the same vectors.
@Suite struct TurboTileTests {
    static func stores(_ name: String, dim: Int, heads: Int, capacity: Int) throws -> (any ScalarTwinKeyStore, any ScalarTwinValueStore) {
        let scheme = try KVSchemeRegistry.shared.scheme(named: name)
        let g = KVStoreGeometry(layer: 0, headCount: heads, headDim: dim, capacity: capacity)
        let k = try scheme.makeKeyStore(KVStoreContext(geometry: g, role: .key, options: .init(), rope: nil))
        let v = try scheme.makeValueStore(KVStoreContext(geometry: g, role: .value, options: .init(), rope: nil))
        return (try #require(k as? any ScalarTwinKeyStore), try #require(v as? any ScalarTwinValueStore))
    }

    static func read(_ s: any KVStore, head: Int, _ r: Range<Int>) -> [Float] {
        var out = [Float](repeating: .nan, count: r.count * s.geometry.headDim)
        out.withUnsafeMutableBufferPointer { s.read(head: head, positions: r, into: $0.baseAddress!) }
        return out
    }

    /// The row kernel's dot (VectorRowKernels.dot: 16-lane FMA accumulators over the even and the odd
    /// 16-dim chunks, added, then the lowHalf + highHalf tree), written out per lane in scalars.
    static func rowKernelDot(_ q: [Float], _ k: [Float]) -> Float {
        var a0 = [Float](repeating: 0, count: 16), a1 = a0
        for c in 0..<q.count / 16 {
            for m in 0..<16 {
                let i = 16 * c + m
                if c % 2 == 0 { a0[m] = a0[m].addingProduct(q[i], k[i]) }
                else { a1[m] = a1[m].addingProduct(q[i], k[i]) }
            }
        }
        var v = (0..<16).map { a0[$0] + a1[$0] }
        var w = 8
        while w >= 1 {
            v = (0..<w).map { v[$0] + v[$0 + w] }
            w /= 2
        }
        return v[0]
    }

    @Test("Tiled turbo scores are bitwise the row kernel; scores and column accumulate match their scalar twins",
          arguments: ["turbo2", "turbo3", "turbo4"], [64, 256])
    func fastMatchesTwin(name: String, dim: Int) throws {
        let heads = 2, capacity = 40, written = 70, rowsCount = 3
        let (keys, values) = try Self.stores(name, dim: dim, heads: heads, capacity: capacity)
        var rng = TestRandom(seed: UInt64(dim) * 7 + UInt64(name.count))
        let data = rng.vectors(count: written, dim: heads * dim)
        // Uneven batches; positions ≥ 40 overwrite the ring's first slots (lanes of partly live tiles).
        data.withUnsafeBufferPointer { k in
            var t = 0
            for n in [13, 1, 39, 17] {
                keys.write(k.baseAddress! + t * heads * dim, tokenStride: heads * dim, count: n, firstPosition: t)
                values.write(k.baseAddress! + t * heads * dim, tokenStride: heads * dim, count: n, firstPosition: t)
                t += n
            }
        }
        let queries = rng.vectors(count: rowsCount, dim: dim, outliers: false)
        let qb = keys.preparedQueryBytes
        var prepared = [UInt8](repeating: 0, count: rowsCount * qb)
        prepared.withUnsafeMutableBytes { p in
            queries.withUnsafeBufferPointer { q in for i in 0..<rowsCount { keys.prepareQuery(q.baseAddress! + i * dim, into: p.baseAddress! + i * qb) } }
        }
        let n = 40
        let weights = (0..<rowsCount * n).map { _ in rng.uniform() }
        for head in 0..<heads {
            // Live positions 30..<70; attention never asks for a range that wraps the ring.
            for range in [30..<40, 40..<70, 45..<51, 63..<70, 48..<64, 32..<33, 41..<70] {
                // The key tiles decode to exactly the value records of the same vectors.
                let kb = Self.read(keys, head: head, range)
                #expect(kb == Self.read(values, head: head, range), "\(name) dim \(dim): key read-back differs from the value records")
                var fast = [Float](repeating: .nan, count: rowsCount * n), twin = fast
                prepared.withUnsafeBytes { p in
                    fast.withUnsafeMutableBufferPointer {
                        keys.scores(queries: p.baseAddress!, queryCount: rowsCount, head: head, positions: range, into: $0.baseAddress!, outStride: n)
                    }
                    twin.withUnsafeMutableBufferPointer {
                        keys.scalarScores(queries: p.baseAddress!, queryCount: rowsCount, head: head, positions: range, into: $0.baseAddress!, outStride: n)
                    }
                }
                for g in 0..<rowsCount {
                    for j in 0..<range.count {
                        // Rounding bound: a few ulps of Σ|q_i·k_i|.
                        var mag: Float = 0
                        for i in 0..<dim { mag += abs(queries[g * dim + i] * kb[j * dim + i]) }
                        let a = fast[g * n + j], b = twin[g * n + j]
                        #expect(abs(a - b) <= 1e-5 * mag + 1e-7, "\(name) dim \(dim) head \(head) \(range) row \(g) position \(j): \(a) vs \(b)")
                        let r = Self.rowKernelDot(Array(queries[g * dim..<(g + 1) * dim]), Array(kb[j * dim..<(j + 1) * dim]))
                        #expect(a.bitPattern == r.bitPattern, "\(name) dim \(dim) \(range) row \(g) position \(j): \(a) vs row kernel \(r)")
                    }
                    for j in range.count..<n { #expect(fast[g * n + j].isNaN, "\(name): wrote past the range") }
                }
                for rowsUsed in [1, rowsCount] {
                    var accFast = [Float](repeating: 0.25, count: rowsUsed * dim), accTwin = accFast
                    weights.withUnsafeBufferPointer { w in
                        accFast.withUnsafeMutableBufferPointer {
                            values.accumulate(weights: w.baseAddress!, weightStride: n, queryCount: rowsUsed, head: head, positions: range,
                                              into: $0.baseAddress!, accStride: dim)
                        }
                        accTwin.withUnsafeMutableBufferPointer {
                            values.scalarAccumulate(weights: w.baseAddress!, weightStride: n, queryCount: rowsUsed, head: head, positions: range,
                                                    into: $0.baseAddress!, accStride: dim)
                        }
                    }
                    let vb = Self.read(values, head: head, range)
                    for g in 0..<rowsUsed {
                        for i in 0..<dim {
                            var mag: Float = 0.25
                            for j in 0..<range.count { mag += abs(weights[g * n + j] * vb[j * dim + i]) }
                            let a = accFast[g * dim + i], b = accTwin[g * dim + i]
                            #expect(abs(a - b) <= 1e-5 * mag, "\(name) dim \(dim) head \(head) \(range) row \(g) dim \(i): \(a) vs \(b)")
                        }
                    }
                }
            }
        }
        let recordBytes = 2 + dim * Int(name.dropFirst(5))! / 8
        #expect(keys.bytesHeld(tokens: 70) == capacity * recordBytes * heads)
        #expect(keys.allocatedBytes == 48 * recordBytes * heads)
        #expect(values.allocatedBytes == capacity * recordBytes * heads)
    }
}
