import Foundation
import GodwitGGUF
import GodwitKVCache
import GodwitKernels
import Testing

/// Every registered scheme: declared size, round-trip error within a budget per bit width, exact
/// memory accounting. Budgets are relative RMS errors on Gaussian data with outlier channels
/// (uniform b-bit quantization with absmax scaling gives ≈ 2^−b·√3·(max/σ)/… ≈ 0.09 at 4 bits).
@Suite struct SchemeRoundTripTests {
    static let schemes = KVSchemeRegistry.shared.names

    /// Nominal bits per value and error budget per scheme name.
    static let expected: [String: (bpv: Double, budget: Double)] = [
        "f32": (32, 1e-7), "f16": (16, 1e-3), "bf16": (16, 5e-3),
        "q8_0": (8.5, 0.01), "q5_0": (5.5, 0.07), "q5_1": (6.0, 0.07),
        "q4_0": (4.5, 0.12), "q4_1": (5.0, 0.12), "iq4_nl": (4.5, 0.11),
    ]

    @Test("Block sizes and bits per value match ggml", arguments: ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl", "f16", "bf16", "f32"])
    func bitsPerValue(name: String) throws {
        let s = try KVSchemeRegistry.shared.scheme(named: name)
        #expect(s.bitsPerValue(headDim: 64, role: .key, options: .init()) == Self.expected[name]!.bpv)
    }

    @Test("Round trip within the budget for its bit width", arguments: ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl", "f16", "bf16", "f32"])
    func roundTrip(name: String) throws {
        let scheme = try KVSchemeRegistry.shared.scheme(named: name)
        for dim in [64, 256] {
            let g = KVStoreGeometry(layer: 0, headCount: 3, headDim: dim, capacity: 40)
            for role in KVRole.allCases {
                let ctx = KVStoreContext(geometry: g, role: role, options: .init(), rope: nil)
                let store: any KVStore = role == .key ? try scheme.makeKeyStore(ctx) : try scheme.makeValueStore(ctx)
                var rng = TestRandom(seed: UInt64(dim))
                let data = rng.vectors(count: 40, dim: dim * 3)
                data.withUnsafeBufferPointer { store.write($0.baseAddress!, tokenStride: dim * 3, count: 40, firstPosition: 0) }
                var worst = 0.0
                for h in 0..<3 {
                    var back = [Float](repeating: 0, count: 40 * dim)
                    back.withUnsafeMutableBufferPointer { store.read(head: h, positions: 0..<40, into: $0.baseAddress!) }
                    var orig = [Float]()
                    for t in 0..<40 { orig += data[(t * 3 + h) * dim..<(t * 3 + h + 1) * dim] }
                    worst = max(worst, relativeRMSError(orig, back))
                }
                #expect(worst <= Self.expected[name]!.budget, "\(name) \(role) dim \(dim): error \(worst)")
                let bits = Double(store.bytesHeld(tokens: 40) * 8) / Double(40 * 3 * dim)
                #expect(abs(bits - scheme.bitsPerValue(headDim: dim, role: role, options: .init())) < 1e-9)
            }
        }
    }

    @Test("Fast scores equal the dequantized (scalar) twin", arguments: ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl", "f16", "bf16", "f32"])
    func scoresMatchTwin(name: String) throws {
        let scheme = try KVSchemeRegistry.shared.scheme(named: name)
        let dim = 64
        let g = KVStoreGeometry(layer: 0, headCount: 1, headDim: dim, capacity: 33)
        let store = try scheme.makeKeyStore(KVStoreContext(geometry: g, role: .key, options: .init(), rope: nil))
        var rng = TestRandom(seed: 7)
        let keys = rng.vectors(count: 33, dim: dim)
        keys.withUnsafeBufferPointer { store.write($0.baseAddress!, tokenStride: dim, count: 33, firstPosition: 0) }
        let queries = rng.vectors(count: 3, dim: dim, outliers: false)
        let qb = store.preparedQueryBytes
        var prepared = [UInt8](repeating: 0, count: 3 * qb)
        prepared.withUnsafeMutableBytes { p in
            queries.withUnsafeBufferPointer { q in for i in 0..<3 { store.prepareQuery(q.baseAddress! + i * dim, into: p.baseAddress! + i * qb) } }
        }
        var fast = [Float](repeating: 0, count: 3 * 33)
        prepared.withUnsafeBytes { p in
            fast.withUnsafeMutableBufferPointer { store.scores(queries: p.baseAddress!, queryCount: 3, head: 0, positions: 0..<33, into: $0.baseAddress!, outStride: 33) }
        }
        // Twin: dequantized keys · decoded prepared query, in double. Float caches prepare the f32
        // query [dim]; block caches the q8_0/q8_1 query as codes [dim], d [dim/32], s [dim/32].
        var k = [Float](repeating: 0, count: 33 * dim)
        k.withUnsafeMutableBufferPointer { store.read(head: 0, positions: 0..<33, into: $0.baseAddress!) }
        let qType: GGMLType? = ["q4_1", "q5_1"].contains(name) ? .q8_1 : (["f16", "bf16", "f32"].contains(name) ? nil : .q8_0)
        for i in 0..<3 {
            let word = { (n: Int) in prepared.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: i * qb + 4 * n, as: Float.self) } }
            let q = (0..<dim).map { c in qType == nil ? word(c) : word(c) * word(dim + c / 32) }
            if let qType {
                var encoded = [UInt8](repeating: 0, count: dim / 32 * qType.typeSize)
                var expected = [Float](repeating: 0, count: dim)
                try encoded.withUnsafeMutableBytes { e in
                    try queries.withUnsafeBufferPointer { try quantizeRowReference(type: qType, src: $0.baseAddress! + i * dim, dst: e.baseAddress!, count: dim) }
                    try expected.withUnsafeMutableBufferPointer { try dequantizeRowReference(type: qType, src: e.baseAddress!, dst: $0.baseAddress!, count: dim) }
                }
                #expect(q == expected, "\(name): prepared query \(i) does not decode to the \(qType.name) query")
            }
            for j in 0..<33 {
                var ref = 0.0
                for c in 0..<dim { ref += Double(q[c]) * Double(k[j * dim + c]) }
                // q8_1 stores s = d·Σq as f16 (ggml's block_q8_1); the kernel uses it for the min term
                // m·s, so allow |m|·|s|·2⁻¹⁰ per block (one f16 ulp; |m| ≤ the block's largest |k|).
                var tolerance = 1e-4 * max(1, abs(ref))
                if qType == .q8_1 {
                    for b in 0..<dim / 32 {
                        let sb = Double(word(dim + dim / 32 + b))
                        let kmax = (0..<32).map { Double(abs(k[j * dim + b * 32 + $0])) }.max()!
                        tolerance += kmax * abs(sb) * 1.0 / 1024
                    }
                }
                #expect(abs(Double(fast[i * 33 + j]) - ref) <= tolerance, "\(name) q\(i) k\(j): \(fast[i * 33 + j]) vs \(ref)")
            }
        }
    }
}
