import Foundation
import GodwitKVCache
import Testing

/// The bitshift trellis behind tcq{b} and kivi{b}tcq (TrellisCode.swift): deterministic trained
/// codebooks, their error against the scalar Lloyd–Max codebooks at the same bits, and the
/// tail-biting bit string: every coordinate's state read back from the k·d bits is the searched path's.
@Suite struct TrellisCodeTests {
    @Test("Codebooks are deterministic and cached; invalid parameters throw", arguments: [2, 3, 4])
    func deterministic(bits: Int) throws {
        let a = try TrellisCodebook.compute(dim: 64, bits: bits), b = try TrellisCodebook.shared(dim: 64, bits: bits)
        #expect(a == b)
        #expect(a.levels.count == TrellisCodebook.states && a.levels.allSatisfy(\.isFinite))
        #expect(throws: KVCacheError.self) { try TrellisCodebook.shared(dim: 64, bits: 1) }
        #expect(throws: KVCacheError.self) { try TrellisCodebook.shared(dim: 64, bits: 5) }
        #expect(throws: KVCacheError.self) { try TrellisCodebook.shared(dim: 40, bits: bits) }
    }

    /// The stored codebooks (TrellisCodebook+Pretrained.swift) are exactly what training computes; a stale
    /// entry fails and prints its replacement.
    @Test("Stored codebooks equal what training computes", arguments: [64, 128, 256].flatMap { d in [2, 3, 4].map { d << 8 | $0 } })
    func storedMatchTraining(key: Int) throws {
        let dim = key >> 8, bits = key & 0xFF
        let trained = try TrellisCodebook.compute(dim: dim, bits: bits)
        let stored = TrellisCodebook.pretrained(dim: dim, bits: bits)
        if stored != trained { print("Replace the entry of TrellisCodebook.stored:\n" + trained.storedEntry) }
        #expect(stored == trained, "dim \(dim) bits \(bits)")
        #expect(try TrellisCodebook.shared(dim: dim, bits: bits) == trained)
    }

    /// Lloyd–Max at d = 64 (TurboCodebook.mse, per unit-variance coordinate): 0.1155, 0.0334, 0.0091 for
    /// 2, 3, 4 bits; the 8-bit-state trellis trains to 0.079, 0.022, 0.0063 (0.086, 0.025, 0.0071 when
    /// the overlap came from the end of an unrotated first pass).
    @Test("The trellis errs less than Lloyd–Max at the same bits", arguments: [2, 3, 4])
    func beatsLloydMax(bits: Int) throws {
        let trellis = try TrellisCodebook.shared(dim: 64, bits: bits), scalar = try TurboCodebook.shared(dim: 64, bits: bits)
        print("trellis \(bits) bits: mse \(trellis.mse), Lloyd–Max \(scalar.mse)")
        #expect(trellis.mse < scalar.mse * 0.72)
    }

    @Test("Tail-biting: each coordinate's state reads back from the k·d bits", arguments: [2, 3, 4])
    func tailBiting(bits: Int) throws {
        for dim in [64, 256] {
            let book = try TrellisCodebook.shared(dim: dim, bits: bits)
            var rng = TestRandom(seed: UInt64(dim + bits))
            for _ in 0..<8 {
                let y = (0..<dim).map { _ in rng.gaussian() }
                let (states, packed) = book.quantize(y)
                #expect(packed.count == dim * bits / 8)
                #expect((0..<dim).map { book.state($0, in: packed) } == states)
                // Consecutive states share their 8 − k bits (the shift structure), including last → first.
                for i in 0..<dim {
                    let previous = states[(i + dim - 1) % dim]
                    #expect(states[i] >> bits == previous & ((1 << (TrellisCodebook.stateBits - bits)) - 1), "dim \(dim) i \(i)")
                }
                let error = zip(y, states).reduce(0.0) { $0 + Double(($1.0 - book.levels[$1.1]) * ($1.0 - book.levels[$1.1])) } / Double(dim)
                #expect(error < book.mse * 2.5, "dim \(dim): \(error) vs trained \(book.mse)")
            }
        }
    }
}

/// tcq stores (row values, tiled keys) encode each head with its own encoder (HeadParallelWrite): heads
/// written one at a time, in any order (as the cache's thread pool does), hold exactly what one `write` holds.
@Suite struct TCQHeadParallelTests {
    @Test("Per-head writes equal one write", arguments: ["tcq2", "tcq3", "tcq4"].flatMap { n in KVRole.allCases.map { (n, $0) } })
    func perHead(name: String, role: KVRole) throws {
        let dim = 64, heads = 3, n = 21
        let g = KVStoreGeometry(layer: 0, headCount: heads, headDim: dim, capacity: n)
        let scheme = try KVSchemeRegistry.shared.scheme(named: name)
        let ctx = KVStoreContext(geometry: g, role: role, options: .init(), rope: nil)
        func make() throws -> any KVStore { role == .key ? try scheme.makeKeyStore(ctx) : try scheme.makeValueStore(ctx) }
        let whole = try make(), parts = try make()
        let parallel = try #require(parts as? any HeadParallelWrite)
        var rng = TestRandom(seed: 99)
        let data = rng.vectors(count: n, dim: heads * dim)
        data.withUnsafeBufferPointer { p in
            whole.write(p.baseAddress!, tokenStride: heads * dim, count: n, firstPosition: 0)
            for h in (0..<heads).reversed() { parallel.write(head: h, p.baseAddress!, tokenStride: heads * dim, count: n, firstPosition: 0) }
        }
        for h in 0..<heads {
            var a = [Float](repeating: 0, count: n * dim), b = a
            a.withUnsafeMutableBufferPointer { whole.read(head: h, positions: 0..<n, into: $0.baseAddress!) }
            b.withUnsafeMutableBufferPointer { parts.read(head: h, positions: 0..<n, into: $0.baseAddress!) }
            #expect(a == b, "\(name) \(role) head \(h)")
        }
    }
}
