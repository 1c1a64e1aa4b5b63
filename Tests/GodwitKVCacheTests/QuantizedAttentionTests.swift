import Foundation
import GodwitKVCache
import GodwitKernels
import Testing

/// Attention computed on each compressed scheme (as K, and as V) stays close to exact attention on
/// the unquantized vectors: finite everywhere, relative RMS error within a budget per bit width.
/// Covers a prompt batch and decode steps (the two attention paths).
@Suite struct QuantizedAttentionTests {
    static let budget: [String: Double] = ["f32": 1e-5, "f16": 2e-3, "bf16": 1e-2, "q8_0": 0.02,
                                           "q5_0": 0.08, "q5_1": 0.08, "q4_0": 0.15, "q4_1": 0.15, "iq4_nl": 0.15,
                                           "nuq4": 0.10, "nuq3": 0.16, "kivi4": 0.10, "kivi2": 0.45,
                                           "fp8_e4m3": 0.04, "fp8_e5m2": 0.07, "q8_kv": 0.012, "turbo4": 0.12, "turbo3": 0.21, "turbo2": 0.38]

    @Test("Fused attention on each scheme tracks exact attention", arguments: KVSchemeRegistry.shared.names)
    func tracksExact(scheme: String) throws {
        for (k, v) in [(scheme, "f32"), ("f32", scheme)] {
            let heads = 4, kvHeads = 2, dim = 64, n = 70
            let spec = KVLayerSpec(kvHeads: kvHeads, keyDim: dim, valueDim: dim, rope: nil)
            var rng = TestRandom(seed: 99)
            // Calibrated schemes (nuq3/nuq4) get parameters fitted on other samples of the same distribution.
            var calibrationRNG = TestRandom(seed: 1234)
            let calibration = KVCalibration(tensors: NUQCalibrator.layerTensors(
                layer: 0, keys: calibrationRNG.vectors(count: 300, dim: kvHeads * dim), keyChannels: kvHeads * dim,
                values: calibrationRNG.vectors(count: 300, dim: kvHeads * dim), valueHeadDim: dim))
            let cache = try KVCache(specs: [spec], contextLength: 128, maxBatch: 64,
                                    configuration: KVCacheConfiguration(keyScheme: k, valueScheme: v), threads: 2,
                                    calibration: calibration)
            let pool = ThreadPool(threads: 2)
            let keys = rng.vectors(count: n, dim: kvHeads * dim), values = rng.vectors(count: n, dim: kvHeads * dim)
            let queries = rng.vectors(count: n, dim: heads * dim, outliers: false)
            var ours = [Float](), exact = [Float]()
            var position = 0
            for batch in [64] + Array(repeating: 1, count: n - 64) {
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
                ours += out
                for t in 0..<batch {
                    let p = position + t
                    for h in 0..<heads {
                        let kvh = h / (heads / kvHeads)
                        var s = [Double]()
                        for j in 0...p {
                            var d = 0.0
                            for i in 0..<dim { d += Double(queries[(p * heads + h) * dim + i]) * Double(keys[(j * kvHeads + kvh) * dim + i]) }
                            s.append(d * 0.125)
                        }
                        let m = s.max()!, e = s.map { Foundation.exp($0 - m) }, z = e.reduce(0, +)
                        for i in 0..<dim {
                            var r = 0.0
                            for j in 0...p { r += e[j] / z * Double(values[(j * kvHeads + kvh) * dim + i]) }
                            exact.append(Float(r))
                        }
                    }
                }
                position += batch
            }
            #expect(ours.allSatisfy { $0.isFinite }, "\(k)/\(v): non-finite attention output")
            let error = relativeRMSError(exact, ours)
            print("\(k)/\(v): relative RMS error \(error)")
            let budget = try #require(Self.budget[scheme], "no attention error budget for \(scheme)")
            #expect(error <= budget, "\(k)/\(v): relative RMS error \(error)")
        }
    }
}
