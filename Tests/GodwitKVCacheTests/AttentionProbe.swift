import Foundation
import GodwitKVCache
import GodwitKernels

/// Relative RMS error of fused attention on a cache with the given schemes against exact attention
/// (double precision) on the unquantized vectors: 4 query heads on 2 KV heads of dim 64, 70 positions
/// written as a 64-token prompt batch and then 6 decode steps (both attention paths).
enum AttentionProbe {
    /// Returns +infinity when any output is not finite. `calibration` reaches schemes that need one (nuq).
    static func error(keyScheme k: String, valueScheme v: String, dim: Int = 64, threads: Int = 2,
                      calibration: KVCalibration? = nil) throws -> Double {
        let heads = 4, kvHeads = 2, n = 70
        let spec = KVLayerSpec(kvHeads: kvHeads, keyDim: dim, valueDim: dim, rope: nil)
        let cache = try KVCache(specs: [spec], contextLength: 128, maxBatch: 64,
                                configuration: KVCacheConfiguration(keyScheme: k, valueScheme: v), threads: threads,
                                calibration: calibration)
        let pool = ThreadPool(threads: threads)
        var rng = TestRandom(seed: 99)
        let keys = rng.vectors(count: n, dim: kvHeads * dim), values = rng.vectors(count: n, dim: kvHeads * dim)
        let queries = rng.vectors(count: n, dim: heads * dim, outliers: false)
        let scale = 1 / Float(dim).squareRoot()
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
                             firstPosition: position, scale: scale, into: op.baseAddress!, outStride: heads * dim, pool: pool)
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
                        s.append(d * Double(scale))
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
        guard ours.allSatisfy({ $0.isFinite }) else { return .infinity }
        return relativeRMSError(exact, ours)
    }
}
