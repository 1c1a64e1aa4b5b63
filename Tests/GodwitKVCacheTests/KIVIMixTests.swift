import Foundation
import GodwitKVCache
import GodwitKernels
import Testing

/// kivi{b}mix: pinned group size, the per-channel bit allocation (budget, ordering, weights), round trip
/// against uniform KIVI keys, fast tile scores against the scalar twin (pre-RoPE, with and without
/// calibrated weights), exact accounting, rings and truncation; kivi{b}tcq (trellis-coded channels) through
/// the same tests, and against kivi{b}mix.
@Suite struct KIVIMixTests {
    static let rope = RotaryEmbedding(dimensions: 64, base: 10000, style: .neox)

    static func keyStore(_ name: String, _ g: KVStoreGeometry, group: Int, residual: Int,
                         rope: RotaryEmbedding? = nil, calibration: KVCalibration? = nil) throws -> any KeyStore {
        try KVSchemeRegistry.shared.scheme(named: name)
            .makeKeyStore(KVStoreContext(geometry: g, role: .key, options: KIVITests.options(group: group, residual: residual),
                                         rope: rope, calibration: calibration))
    }

    /// Query energies for layer 0: channel 3 of every head heavily weighted.
    static func calibration(heads: Int, dim: Int) -> KVCalibration {
        var e = [Float](repeating: 1, count: heads * dim)
        for h in 0..<heads { e[h * dim + 3] = 400 }
        return KVCalibration(tensors: [KIVIMixScheme.queryEnergyTensor(layer: 0): e])
    }

    @Test("Group size is pinned; bits per key value = b + 40/G")
    func recordSize() throws {
        #expect(KIVIMixGroupLayout(headDim: 64, groupSize: 256, bits: 4).byteSize == 64 * 4 + 64 + 16 * 512)
        #expect(KIVIMixGroupLayout(headDim: 256, groupSize: 64, bits: 2).byteSize == 256 * 4 + 256 + 4 * 1024)
        let s = try KVSchemeRegistry.shared.scheme(named: "kivi4mix")
        #expect(s.bitsPerValue(headDim: 64, role: .key, options: KIVITests.options(group: 256, residual: 0)) == 4 + 40.0 / 256)
        #expect(s.rotation(role: .key, headDim: 64, options: .init()) == nil)
    }

    @Test("Allocation spends the budget, favours wide and weighted channels, skips constant ones")
    func allocation() {
        let d = 8
        let range: [Float] = [1, 16, 0, 4, 1, 1, 2, 8]
        let widths = KIVIBitAllocation.widths(range: range, weight: nil, budget: 4 * d)
        #expect(widths.reduce(0) { $0 + Int($1) } == 4 * d)
        #expect(widths[2] == 0)
        #expect(widths[1] > widths[7] && widths[7] > widths[3] && widths[3] > widths[0])
        #expect(widths.allSatisfy { $0 != 1 && $0 <= 8 })
        var w = [Float](repeating: 1, count: d)
        w[0] = 1000
        let weighted = KIVIBitAllocation.widths(range: range, weight: w, budget: 4 * d)
        #expect(weighted[0] > widths[0])
        #expect(weighted.reduce(0) { $0 + Int($1) } == 4 * d)
    }

    @Test("Round trip beats uniform KIVI keys at the same bits", arguments: [2, 3, 4])
    func roundTrip(bits: Int) throws {
        for dim in [64, 256] {
            let g = KVStoreGeometry(layer: 0, headCount: 3, headDim: dim, capacity: 64)
            var rng = TestRandom(seed: UInt64(dim))
            // Keys-like channels: scales 1/4 … 4 (cycle of 5) times the Gaussian with outlier channels.
            var data = rng.vectors(count: 64, dim: dim * 3)
            for i in data.indices { data[i] *= Float(1 << ((i % dim) % 5)) / 4 }
            let mix = try Self.keyStore("kivi\(bits)mix", g, group: 32, residual: 0)
            let uniform = try Self.keyStore("kivi\(bits)pre", g, group: 32, residual: 0)
            KIVITests.write(mix, data, dim: dim * 3, first: 0, count: 64)
            KIVITests.write(uniform, data, dim: dim * 3, first: 0, count: 64)
            for h in 0..<3 {
                var orig = [Float]()
                for t in 0..<64 { orig += data[(t * 3 + h) * dim..<(t * 3 + h + 1) * dim] }
                let em = relativeRMSError(orig, KIVITests.read(mix, head: h, 0..<64))
                let eu = relativeRMSError(orig, KIVITests.read(uniform, head: h, 0..<64))
                #expect(em < eu * 0.8, "kivi\(bits)mix dim \(dim) head \(h): \(em) vs uniform \(eu)")
            }
            let bpv = Double(mix.bytesHeld(tokens: 64) * 8) / Double(64 * 3 * dim)
            // Two groups of 32 (position 0 is also coded, unused) plus the f16 copy of position 0.
            #expect(abs(bpv - (Double(bits) + 40.0 / 32 + 16.0 / 64)) < 1e-9)
        }
    }

    @Test("Trellis channels beat uniform codes on Gaussian-like channels; outlier channels keep min/max codes", arguments: [2, 3, 4])
    func trellisBeatsMix(bits: Int) throws {
        let dim = 64, n = 256
        let g = KVStoreGeometry(layer: 0, headCount: 2, headDim: dim, capacity: n)
        var rng = TestRandom(seed: 41)
        var data = rng.vectors(count: n, dim: dim * 2)
        for i in data.indices { data[i] *= Float(1 << ((i % dim) % 5)) / 4 }
        let mix = try Self.keyStore("kivi\(bits)mix", g, group: 128, residual: 0)
        let tcq = try Self.keyStore("kivi\(bits)tcq", g, group: 128, residual: 0)
        KIVITests.write(mix, data, dim: dim * 2, first: 0, count: n)
        KIVITests.write(tcq, data, dim: dim * 2, first: 0, count: n)
        for h in 0..<2 {
            var orig = [Float]()
            for t in 1..<n { orig += data[(t * 2 + h) * dim..<(t * 2 + h + 1) * dim] }
            let em = relativeRMSError(orig, KIVITests.read(mix, head: h, 1..<n))
            let et = relativeRMSError(orig, KIVITests.read(tcq, head: h, 1..<n))
            print("kivi\(bits) head \(h): mix \(em), tcq \(et)")
            #expect(et < em * (bits == 4 ? 1.0 : 0.9), "kivi\(bits)tcq head \(h): \(et) vs mix \(em)")
        }
        #expect(tcq.bytesHeld(tokens: n) == mix.bytesHeld(tokens: n))
        // A channel of rare spikes: the trellis levels (trained on Gaussians) would clip them; the
        // channel keeps its min/max codes, so the spikes come back within a uniform step.
        var spiky = rng.vectors(count: n, dim: dim, outliers: false)
        for t in stride(from: 7, to: n, by: 50) { spiky[t * dim + 5] = 40 }
        let one = KVStoreGeometry(layer: 0, headCount: 1, headDim: dim, capacity: n)
        let s = try Self.keyStore("kivi\(bits)tcq", one, group: 128, residual: 0)
        KIVITests.write(s, spiky, dim: dim, first: 0, count: n)
        let back = KIVITests.read(s, head: 0, 1..<n)
        for t in stride(from: 57, to: n, by: 50) { #expect(abs(back[(t - 1) * dim + 5] - 40) < 2, "spike at \(t): \(back[(t - 1) * dim + 5])") }
    }

    @Test("Fast tile scores equal the scalar twin (RoPE, residual tail, partial tiles, weights)",
          arguments: ["mix", "tcq"].flatMap { kind in [(2, false), (3, true), (4, false), (4, true), (5, true)].map { ($0.0, $0.1, kind) } })
    func fastMatchesTwin(bits: Int, weighted: Bool, kind: String) throws {
        let dim = 64, n = 75, heads = 2
        let g = KVStoreGeometry(layer: 0, headCount: heads, headDim: dim, capacity: 96)
        let keys = try Self.keyStore("kivi\(bits)\(kind)", g, group: 16, residual: 8, rope: Self.rope,
                                     calibration: weighted ? Self.calibration(heads: heads, dim: dim) : nil) as! any ScalarTwinKeyStore
        var rng = TestRandom(seed: 17)
        let data = rng.vectors(count: n, dim: dim * heads)
        KIVITests.write(keys, data, dim: dim * heads, first: 0, count: 20)
        KIVITests.write(keys, data, dim: dim * heads, first: 20, count: n - 20)
        let queries = rng.vectors(count: 3, dim: dim, outliers: false)
        let prepared = preparedQueries(keys, queries, count: 3, dim: dim)
        for h in 0..<heads {
            for range in [0..<n, 5..<40, 33..<75, 47..<48, 60..<75] {
                let (fast, twin) = fastAndTwinScores(keys, prepared, count: 3, head: h, positions: range, stride: n)
                for i in 0..<3 * n { #expect(abs(fast[i] - twin[i]) <= 1e-4 * max(1, abs(twin[i])), "kivi\(bits)\(kind) \(range) \(i)") }
            }
        }
    }

    @Test("Calibrated weights move bits to the weighted channel")
    func weightsMoveBits() throws {
        let dim = 64, heads = 1, n = 64
        let g = KVStoreGeometry(layer: 0, headCount: heads, headDim: dim, capacity: n)
        var rng = TestRandom(seed: 23)
        let data = rng.vectors(count: n, dim: dim, outliers: false)
        let plain = try Self.keyStore("kivi3mix", g, group: 64, residual: 0)
        let weighted = try Self.keyStore("kivi3mix", g, group: 64, residual: 0, calibration: Self.calibration(heads: heads, dim: dim))
        KIVITests.write(plain, data, dim: dim, first: 0, count: n)
        KIVITests.write(weighted, data, dim: dim, first: 0, count: n)
        func channelError(_ s: any KeyStore, _ c: Int) -> Double {
            let back = KIVITests.read(s, head: 0, 1..<n)
            return (1..<n).reduce(0.0) { $0 + Double(pow(back[($1 - 1) * dim + c] - data[$1 * dim + c], 2)) }
        }
        #expect(channelError(weighted, 3) < channelError(plain, 3) / 4)
        let bad = KVCalibration(tensors: [KIVIMixScheme.queryEnergyTensor(layer: 0): [1, 2, 3]])
        #expect(throws: KVCacheError.self) { try Self.keyStore("kivi3mix", g, group: 64, residual: 0, calibration: bad) }
        // A calibration without query energies (a file from before them) is refused, not silently unweighted.
        let old = KVCalibration(tensors: ["blk.0.k.lower": [0]])
        #expect(throws: KVCacheError.self) { try Self.keyStore("kivi3mix", g, group: 64, residual: 0, calibration: old) }
    }

    @Test("Sliding-window ring keeps what a full store keeps; truncation re-quantizes consistently", arguments: ["kivi4mix", "kivi3tcq"])
    func ringAndTruncation(name: String) throws {
        let dim = 64, heads = 2, window = 24, total = 150
        let ring = KVStoreGeometry(layer: 0, headCount: heads, headDim: dim, capacity: 40, window: window)
        let full = KVStoreGeometry(layer: 0, headCount: heads, headDim: dim, capacity: total)
        let rk = try Self.keyStore(name, ring, group: 16, residual: 4), fk = try Self.keyStore(name, full, group: 16, residual: 4)
        var rng = TestRandom(seed: 5)
        let data = rng.vectors(count: total, dim: heads * dim)
        var position = 0
        for n in [17] + Array(repeating: 1, count: 40) + Array(repeating: 16, count: 5) + Array(repeating: 1, count: total - 137) {
            for s in [rk, fk] { KIVITests.write(s, data, dim: heads * dim, first: position, count: n) }
            position += n
            // Group 0 differs: the full store keeps position 0 as its f16 sink and leaves it out of the
            // group's ranges; a sliding-window layer has no sink.
            let lo = max(16, position - window)
            guard lo < position else { continue }
            for h in 0..<heads { #expect(KIVITests.read(rk, head: h, lo..<position) == KIVITests.read(fk, head: h, lo..<position), "at \(position)") }
        }
        let g = KVStoreGeometry(layer: 0, headCount: 1, headDim: dim, capacity: 128)
        let first = rng.vectors(count: 50, dim: dim), second = rng.vectors(count: 60, dim: dim)
        let combined = Array(first[0..<20 * dim]) + Array(second[20 * dim..<60 * dim])
        let ks = try Self.keyStore(name, g, group: 16, residual: 4), rks = try Self.keyStore(name, g, group: 16, residual: 4)
        KIVITests.write(ks, first, dim: dim, first: 0, count: 50)
        ks.truncate(to: 20)
        KIVITests.write(ks, second, dim: dim, first: 20, count: 40)
        KIVITests.write(rks, combined, dim: dim, first: 0, count: 60)
        #expect(KIVITests.read(ks, head: 0, 0..<16) == KIVITests.read(rks, head: 0, 0..<16))
        #expect(KIVITests.read(ks, head: 0, 32..<60) == KIVITests.read(rks, head: 0, 32..<60))
        #expect(relativeRMSError(Array(combined[16 * dim..<32 * dim]), KIVITests.read(ks, head: 0, 16..<32)) <= 0.15)
    }
}
