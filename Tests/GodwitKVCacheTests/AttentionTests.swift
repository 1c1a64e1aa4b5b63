import Foundation
import GodwitKVCache
import GodwitKernels
import Testing

/// The cache's fused attention against a naive softmax attention in double precision, for an f32
/// cache (exact storage), prompt batches and decode steps, grouped-query heads, sliding windows
/// and long sequences that cross the decode chunking.
@Suite struct AttentionTests {
    struct Case: Sendable, CustomStringConvertible {
        let heads: Int, kvHeads: Int, dim: Int, window: Int?, prompt: Int, decode: Int, context: Int
        var description: String { "H\(heads)/\(kvHeads) d\(dim) window \(window.map(String.init) ?? "none") prompt \(prompt) + \(decode)" }
    }

    static let cases: [Case] = [
        Case(heads: 6, kvHeads: 2, dim: 64, window: nil, prompt: 37, decode: 5, context: 64),
        Case(heads: 4, kvHeads: 1, dim: 256, window: nil, prompt: 130, decode: 3, context: 160),
        Case(heads: 4, kvHeads: 1, dim: 64, window: 24, prompt: 50, decode: 40, context: 128),
        Case(heads: 3, kvHeads: 3, dim: 64, window: nil, prompt: 300, decode: 300, context: 640),
    ]

    @Test("Fused attention equals naive softmax attention (f32 cache)", arguments: cases)
    func matchesNaive(_ c: Case) throws {
        let spec = KVLayerSpec(kvHeads: c.kvHeads, keyDim: c.dim, valueDim: c.dim, window: c.window, rope: nil)
        let pool = ThreadPool(threads: 2)
        for flash in [true, false] {
            let cache = try KVCache(specs: [spec], contextLength: c.context, maxBatch: c.prompt,
                                    configuration: KVCacheConfiguration(keyScheme: "f32", valueScheme: "f32", flashAttention: flash),
                                    threads: 2)
            var rng = TestRandom(seed: UInt64(c.dim + c.prompt))
            let total = c.prompt + c.decode
            let keys = rng.vectors(count: total, dim: c.kvHeads * c.dim)
            let values = rng.vectors(count: total, dim: c.kvHeads * c.dim, outliers: false)
            let queries = rng.vectors(count: total, dim: c.heads * c.dim, outliers: false)
            let scale = 1 / Float(c.dim).squareRoot()
            var worst = 0.0
            var position = 0
            for n in [c.prompt] + Array(repeating: 1, count: c.decode) {
                var k = Array(keys[position * c.kvHeads * c.dim..<(position + n) * c.kvHeads * c.dim])
                var v = Array(values[position * c.kvHeads * c.dim..<(position + n) * c.kvHeads * c.dim])
                k.withUnsafeMutableBufferPointer { kp in
                    v.withUnsafeMutableBufferPointer { vp in
                        cache.write(layer: 0, keys: kp.baseAddress!, keyStride: c.kvHeads * c.dim, values: vp.baseAddress!,
                                    valueStride: c.kvHeads * c.dim, tokens: n, firstPosition: position, angles: nil)
                    }
                }
                var out = [Float](repeating: 0, count: n * c.heads * c.dim)
                let q = Array(queries[position * c.heads * c.dim..<(position + n) * c.heads * c.dim])
                q.withUnsafeBufferPointer { qp in
                    out.withUnsafeMutableBufferPointer { op in
                        cache.attend(layer: 0, queries: qp.baseAddress!, queryStride: c.heads * c.dim, heads: c.heads, tokens: n,
                                     firstPosition: position, scale: scale, into: op.baseAddress!, outStride: c.heads * c.dim, pool: pool)
                    }
                }
                cache.commit(firstPosition: position, tokens: n)
                for t in 0..<n {
                    let p = position + t
                    let lo = c.window.map { max(0, p - $0 + 1) } ?? 0
                    for h in 0..<c.heads {
                        let kvh = h / (c.heads / c.kvHeads)
                        var s = [Double]()
                        for j in lo...p {
                            var d = 0.0
                            for i in 0..<c.dim { d += Double(queries[(p * c.heads + h) * c.dim + i]) * Double(keys[(j * c.kvHeads + kvh) * c.dim + i]) }
                            s.append(d * Double(scale))
                        }
                        let m = s.max()!
                        let e = s.map { Foundation.exp($0 - m) }
                        let z = e.reduce(0, +)
                        for i in 0..<c.dim {
                            var r = 0.0
                            for (idx, j) in (lo...p).enumerated() { r += e[idx] / z * Double(values[(j * c.kvHeads + kvh) * c.dim + i]) }
                            worst = max(worst, abs(r - Double(out[(t * c.heads + h) * c.dim + i])))
                        }
                    }
                }
                position += n
            }
            #expect(worst < (flash ? 2e-5 : 2e-5), "\(c) flash \(flash): max error \(worst)")
        }
    }

    @Test("A full context is a clear error")
    func contextFull() throws {
        let spec = KVLayerSpec(kvHeads: 1, keyDim: 64, valueDim: 64, rope: nil)
        let cache = try KVCache(specs: [spec], contextLength: 8, maxBatch: 8, configuration: .init(), threads: 1)
        #expect(throws: KVCacheError.contextFull(layer: 0, position: 8, capacity: 8)) {
            try cache.checkRoom(firstPosition: 4, tokens: 5)
        }
        #expect(throws: KVCacheError.self) { try KVCache(specs: [spec], contextLength: 8, maxBatch: 8,
                                                           configuration: .init(keyScheme: "q3_z"), threads: 1) }
    }

    @Test("Sliding-window layers hold a ring of window + batch − 1 positions")
    func ringSize() throws {
        let spec = KVLayerSpec(kvHeads: 1, keyDim: 256, valueDim: 256, window: 512, rope: nil)
        let global = KVLayerSpec(kvHeads: 1, keyDim: 256, valueDim: 256, rope: nil)
        let cache = try KVCache(specs: [spec, global], contextLength: 32768, maxBatch: 512, configuration: .init(), threads: 1)
        let m = cache.memory(tokens: 32768)
        // Values hold 1023 slots; f16 keys are stored in 16-slot tiles, so 1024 (TiledFloatKeyStore).
        #expect(m.sliding.allocated == (512 + 511) * 256 * 2 + 1024 * 256 * 2)
        #expect(m.sliding.logical == 2 * 512 * 256 * 2)
        #expect(m.global.logical == 2 * 32768 * 256 * 2)
    }
}
