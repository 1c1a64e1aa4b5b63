import GodwitKVCache
import Testing

/// nuq3 / nuq4 values through the column kernel (NUQValueColumns): the weighted sums are bitwise the
/// scalar-decoded rows (NUQInspection.referenceValue: centroid · s, outliers patched, the sink in f16)
/// added with one fma per term in position order — on a ring whose capacity is not a multiple of 16,
/// written in uneven batches, over ranges with and without the sink, for 1 to 5 query rows, at head
/// dims 64, 128 and 256 (1, 2 and 3 outliers per vector), with outliers in every 16-dim column.
@Suite struct NUQValueColumnsTests {
    @Test("NUQ value sums are bitwise the decoded rows added in order", arguments: [3, 4], [64, 128, 256])
    func bitwise(bits: Int, dim: Int) throws {
        let heads = 2, width = heads * dim
        let cal = NUQTests.calibration(dim: dim, heads: heads)
        var rng = TestRandom(seed: UInt64(bits * 1000 + dim))
        var values = rng.vectors(count: 120, dim: width)
        // Large values at varying channels (first and last lanes of columns too), so outliers land everywhere.
        for p in 0..<120 {
            for h in 0..<heads {
                let c = [(p * 7 + h * 13) % dim, (p * 16 + 15) % dim, (p * 16) % dim][p % 3]
                values[p * width + h * dim + c] = (p % 2 == 0 ? 9 : -9) + rng.uniform()
            }
        }
        for (capacity, written, ranges) in [(120, 50, [0..<50, 0..<1, 0..<17, 1..<50, 13..<31, 49..<50]),
                                             (37, 100, [63..<74, 74..<100, 80..<95, 99..<100])] {
            let g = KVStoreGeometry(layer: 0, headCount: heads, headDim: dim, capacity: capacity)
            let store = try NUQScheme(bits: bits).makeValueStore(
                KVStoreContext(geometry: g, role: .value, options: .init(), rope: nil, calibration: cal))
            values.withUnsafeBufferPointer { v in
                var t = 0
                for n in [1, 12, 40, 2, 15, 30] where t < written {
                    let m = min(n, written - t)
                    store.write(v.baseAddress! + t * width, tokenStride: width, count: m, firstPosition: t)
                    t += m
                }
            }
            for rows in [1, 3, 4, 5] {
                for range in ranges {
                    let head = range.count % heads
                    var weights = [Float](repeating: 0, count: rows * range.count)
                    for i in weights.indices { weights[i] = rng.uniform() }
                    if weights.count > 2 { weights[1] = 0 }
                    var acc = [Float](repeating: 0, count: rows * dim)
                    for i in acc.indices { acc[i] = rng.uniform() - 0.5 }
                    var expected = acc
                    for (j, p) in range.enumerated() {
                        let v = try #require(NUQInspection.referenceValue(store, head: head, position: p))
                        for r in 0..<rows {
                            for i in 0..<dim { expected[r * dim + i] = expected[r * dim + i].addingProduct(v[i], weights[r * range.count + j]) }
                        }
                    }
                    weights.withUnsafeBufferPointer { w in
                        acc.withUnsafeMutableBufferPointer {
                            store.accumulate(weights: w.baseAddress!, weightStride: range.count, queryCount: rows, head: head,
                                             positions: range, into: $0.baseAddress!, accStride: dim)
                        }
                    }
                    #expect(acc.map(\.bitPattern) == expected.map(\.bitPattern), "nuq\(bits) dim \(dim) rows \(rows) range \(range)")
                }
            }
        }
    }
}
