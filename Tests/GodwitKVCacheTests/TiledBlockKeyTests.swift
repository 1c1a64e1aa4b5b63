import GodwitGGUF
import GodwitKVCache
import GodwitKernels
import Testing

/// q8_0 / q4_0 keys in 16-position tiles: scores are bitwise the ggml block formula
/// (acc = 0; acc = acc + (d_k·d_q)·Σ k_i·q_i per block in order), on a ring whose capacity is not a
/// multiple of 16, over ranges that start and end inside tiles; read-back equals ggml's dequantized rows.
@Suite struct TiledBlockKeyTests {
    @Test("Tiled block key scores are bitwise the block formula", arguments: ["q8_0", "q4_0"], [64, 256])
    func bitwise(name: String, dim: Int) throws {
        let type = try #require(GGMLType.allCases.first { $0.name == name })
        let scheme = try KVSchemeRegistry.shared.scheme(named: name)
        let heads = 2, capacity = 40, written = 70
        let g = KVStoreGeometry(layer: 0, headCount: heads, headDim: dim, capacity: capacity)
        let store = try scheme.makeKeyStore(KVStoreContext(geometry: g, role: .key, options: .init(), rope: nil))
        var rng = TestRandom(seed: UInt64(dim) + 3)
        let keys = rng.vectors(count: written, dim: heads * dim)
        // Written in three uneven batches; positions ≥ 40 overwrite the ring's first slots.
        keys.withUnsafeBufferPointer { k in
            var t = 0
            for n in [13, 40, 17] {
                store.write(k.baseAddress! + t * heads * dim, tokenStride: heads * dim, count: n, firstPosition: t)
                t += n
            }
        }
        let nb = dim / 32
        // Expected: the ggml rows quantized from the same floats, decoded to codes and scales.
        func codes(_ src: UnsafePointer<Float>, _ t: GGMLType) throws -> (codes: [Float], d: [Float]) {
            var row = [UInt8](repeating: 0, count: nb * t.typeSize)
            var c = [Float](repeating: 0, count: dim), d = [Float](repeating: 0, count: nb), m = [Float](repeating: 0, count: nb)
            try row.withUnsafeMutableBytes { r in
                try quantizeRowReference(type: t, src: src, dst: r.baseAddress!, count: dim)
                try decodeBlockCodes(type: t, src: UnsafeRawPointer(r.baseAddress!), rowBytes: 0, rows: 1, count: dim,
                                     codes: &c, scales: &d, mins: &m)
            }
            return (c, d)
        }
        let queries = rng.vectors(count: 3, dim: dim, outliers: false)
        let qb = store.preparedQueryBytes
        var prepared = [UInt8](repeating: 0, count: 3 * qb)
        prepared.withUnsafeMutableBytes { p in
            queries.withUnsafeBufferPointer { q in for i in 0..<3 { store.prepareQuery(q.baseAddress! + i * dim, into: p.baseAddress! + i * qb) } }
        }
        for head in 0..<heads {
            // Live positions 30..<70; attention never asks for a range that wraps the ring.
            for range in [30..<40, 40..<70, 45..<51, 63..<70] {
                var fast = [Float](repeating: .nan, count: 3 * range.count)
                prepared.withUnsafeBytes { p in
                    fast.withUnsafeMutableBufferPointer {
                        store.scores(queries: p.baseAddress!, queryCount: 3, head: head, positions: range, into: $0.baseAddress!, outStride: range.count)
                    }
                }
                var back = [Float](repeating: 0, count: range.count * dim)
                back.withUnsafeMutableBufferPointer { store.read(head: head, positions: range, into: $0.baseAddress!) }
                for (j, p) in range.enumerated() {
                    let k = try keys.withUnsafeBufferPointer { try codes($0.baseAddress! + (p * heads + head) * dim, type) }
                    var expectedRow = [Float](repeating: 0, count: dim)
                    for c in 0..<dim { expectedRow[c] = k.codes[c] * k.d[c / 32] }
                    #expect(Array(back[j * dim..<(j + 1) * dim]) == expectedRow, "\(name) read-back of position \(p)")
                    for i in 0..<3 {
                        let q = try queries.withUnsafeBufferPointer { try codes($0.baseAddress! + i * dim, .q8_0) }
                        var acc: Float = 0
                        for b in 0..<nb {
                            var isum = 0.0
                            for c in b * 32..<(b + 1) * 32 { isum += Double(k.codes[c]) * Double(q.codes[c]) }
                            acc += k.d[b] * q.d[b] * Float(isum)
                        }
                        #expect(fast[i * range.count + j].bitPattern == acc.bitPattern,
                                "\(name) dim \(dim) head \(head) query \(i) position \(p): \(fast[i * range.count + j]) vs \(acc)")
                    }
                }
            }
        }
        #expect(store.bytesHeld(tokens: capacity) == capacity * nb * type.typeSize * heads)
    }
}
