import Foundation
import GodwitGGUF
import GodwitKVCache
import GodwitKernels
import Testing

/// `--numerics ggml` with flash attention on: the cache's reproduction of llama.cpp's CPU flash
/// attention against scalar twins written from ggml's C (ops.cpp one_chunk and tiled kernels,
/// simd_gemm, ggml_fwht, x86 quantize_row_q8_0), bitwise, for prompt batches and decode steps,
/// grouped-query heads and a sliding window.
@Suite struct GGMLFlashAttentionTests {
    struct Case: Sendable, CustomStringConvertible {
        let k: String, v: String, dim: Int, window: Int?, prompt: Int, decode: Int
        var description: String { "\(k)/\(v) d\(dim) window \(window.map(String.init) ?? "none") prompt \(prompt) + \(decode)" }
    }

    static let cases: [Case] = [
        Case(k: "q8_0", v: "q8_0", dim: 64, window: nil, prompt: 40, decode: 3),
        Case(k: "q8_0", v: "q8_0", dim: 256, window: 24, prompt: 30, decode: 4),
        Case(k: "q4_0", v: "q4_0", dim: 64, window: nil, prompt: 20, decode: 2),
        Case(k: "q5_0", v: "q4_1", dim: 64, window: nil, prompt: 20, decode: 2),
        Case(k: "q8_0", v: "f16", dim: 64, window: nil, prompt: 20, decode: 2),
        Case(k: "f16", v: "q4_0", dim: 64, window: 9, prompt: 20, decode: 2),
        Case(k: "f16", v: "f16", dim: 64, window: nil, prompt: 150, decode: 3),      // tiled, then one chunk
        Case(k: "f16", v: "f16", dim: 256, window: 70, prompt: 100, decode: 2),
        Case(k: "f32", v: "f32", dim: 64, window: nil, prompt: 70, decode: 2),
    ]

    // MARK: Twins from the C

    /// ggml_compute_forward_fwht on one row: x·(1/√n), then butterflies of width 1, 2, 4, …
    static func fwht(_ x: inout [Float], block: Int) {
        let s = 1 / Float(block).squareRoot()
        for b in stride(from: 0, to: x.count, by: block) {
            for i in b..<b + block { x[i] *= s }
            var len = 1
            while len < block {
                for i in stride(from: b, to: b + block, by: 2 * len) {
                    for j in 0..<len { let u = x[i + j], v = x[i + len + j]; x[i + j] = u + v; x[i + len + j] = u - v }
                }
                len *= 2
            }
        }
    }

    /// x86 quantize_row_q8_0: d = amax/127 (stored f16), q = round-half-even(x·(127/amax)).
    static func quantizeQ8_0(_ x: [Float]) -> [UInt8] {
        var out = [UInt8]()
        for b in stride(from: 0, to: x.count, by: 32) {
            let amax = x[b..<b + 32].map(abs).max()!
            let id: Float = amax != 0 ? 127 / amax : 0
            let d = Float16(amax / 127).bitPattern
            out += [UInt8(d & 0xFF), UInt8(d >> 8)]
            for j in 0..<32 { out.append(UInt8(bitPattern: Int8((x[b + j] * id).rounded(.toNearestOrEven)))) }
        }
        return out
    }

    static func encode(_ type: GGMLType, _ x: [Float]) -> [UInt8] {
        if type == .q8_0 { return quantizeQ8_0(x) }
        var out = [UInt8](repeating: 0, count: type.rowBytes(x.count)!)
        x.withUnsafeBufferPointer { src in out.withUnsafeMutableBytes { try! quantizeRowReference(type: type, src: src.baseAddress!, dst: $0.baseAddress!, count: x.count) } }
        return out
    }

    static func decode(_ type: GGMLType, _ bytes: [UInt8], _ n: Int) -> [Float] {
        var out = [Float](repeating: 0, count: n)
        bytes.withUnsafeBytes { b in out.withUnsafeMutableBufferPointer { try! dequantizeRowReference(type: type, src: b.baseAddress!, dst: $0.baseAddress!, count: n) } }
        return out
    }

    static func dot(_ type: GGMLType, _ k: [UInt8], _ q: [UInt8], blocks: Int) -> Float {
        k.withUnsafeBytes { kb in q.withUnsafeBytes { qb in
            switch type {
            case .q8_0: GGMLExact.dotQ8_0Q8_0Reference(kb.baseAddress!, qb.baseAddress!, blocks: blocks)
            case .q4_0: GGMLExact.dotQ4_0Q8_0Reference(kb.baseAddress!, qb.baseAddress!, blocks: blocks)
            default: GGMLExact.dotQ5_0Q8_0Reference(kb.baseAddress!, qb.baseAddress!, blocks: blocks)
            }
        } }
    }

    static func f16(_ x: Float) -> Float { Float(Float16(x)) }
    static func type(_ name: String) -> GGMLType { GGMLType.allCases.first { $0.name == name }! }

    /// ggml_compute_forward_flash_attn_ext_f16_one_chunk for one row: quantized K (q8_0 query) or f16
    /// K (f16 query, ggml_vec_dot_f16); f32 accumulator, or f16 (VKQ16) for f16 values.
    static func oneChunk(q: [Float], keys: [[Float]], values: [[Float]], k: String, v: String, scale: Float, dim: Int) -> [Float] {
        let kType = Self.type(k), halfK = k == "f16" || k == "f32", halfV = v == "f16" || v == "f32"
        var qr = q
        if !halfK { fwht(&qr, block: dim) }
        let Q = halfK ? [] : quantizeQ8_0(qr)
        let qh = qr.map(f16)
        var acc = [Float](repeating: 0, count: dim)
        var M = -Float.infinity, S: Float = 0
        for (key, value) in zip(keys, values) {
            var s: Float
            if halfK {
                let kh = key.map(f16)
                s = GGMLExact.dotF16VecReference(kh, qh)
            } else {
                var kr = key; fwht(&kr, block: dim)
                s = dot(kType, encode(kType, kr), Q, blocks: dim / 32)
            }
            s = s * scale
            var vv = value
            if !halfV { fwht(&vv, block: 64); let t = Self.type(v); vv = decode(t, encode(t, vv), dim) } else { vv = vv.map(f16) }
            var ms: Float = 1, vs: Float = 1
            if s > M {
                let old = M; M = s; ms = Foundation.expf(old - M)
                for i in 0..<dim { acc[i] = halfV ? f16(acc[i] * ms) : acc[i] * ms }
            } else {
                vs = Foundation.expf(s - M)
            }
            for i in 0..<dim { acc[i] = halfV ? f16(acc[i].addingProduct(vv[i], vs)) : acc[i].addingProduct(vv[i], vs) }
            S = vs.addingProduct(S, ms)
        }
        let inv: Float = S == 0 ? 0 : 1 / S
        var out = acc.map { $0 * inv }
        if !halfV { fwht(&out, block: 64) }
        return out
    }

    /// ggml_compute_forward_flash_attn_ext_tiled for one row (f16 K and V, f32 query), cells from 0,
    /// visible cells lo...pos.
    static func tiled(q: [Float], keys: [[Float]], values: [[Float]], lo: Int, pos: Int, scale: Float, dim: Int) -> [Float] {
        var acc = [Float](repeating: 0, count: dim)
        var M = -Float.infinity, S: Float = 0
        for c in (lo / 64)...(pos / 64) {
            var kq = [Float](repeating: -.infinity, count: 64)
            for j in 0..<64 where c * 64 + j >= lo && c * 64 + j <= pos {
                var a: Float = 0
                let key = keys[c * 64 + j - lo].map(f16)
                for d in 0..<dim { a = a.addingProduct(key[d], q[d]) }
                kq[j] = a * scale
            }
            let newMax = max(M, kq.max()!)
            if newMax > M { let ms = Foundation.expf(M - newMax); acc = acc.map { $0 * ms }; S *= ms }
            M = newMax
            var sum: Double = 0
            for g in 0..<4 {
                var e = SIMD16<Float>()
                for l in 0..<16 { e[l] = kq[16 * g + l] == -.infinity ? 0 : GGMLExact.expfReference(kq[16 * g + l] - M) }
                for l in 0..<16 { kq[16 * g + l] = e[l] }
                sum += Double(GGMLExact.reduceAdd(e))
            }
            S = Float(Double(S) + sum)
            for j in 0..<64 where c * 64 + j >= lo && c * 64 + j <= pos {
                let value = values[c * 64 + j - lo].map(f16)
                for d in 0..<dim { acc[d] = acc[d].addingProduct(kq[j], value[d]) }
            }
        }
        let inv: Float = S == 0 ? 0 : 1 / S
        return acc.map { $0 * inv }
    }

    @Test("ggml flash attention equals llama.cpp's kernels written out in scalar code", arguments: cases)
    func matchesTwin(_ c: Case) throws {
        let heads = 4, kvHeads = 2, group = heads / kvHeads, d = c.dim
        let spec = KVLayerSpec(kvHeads: kvHeads, keyDim: d, valueDim: d, window: c.window, rope: nil)
        let total = c.prompt + c.decode
        let cache = try KVCache(specs: [spec], contextLength: total, maxBatch: c.prompt,
                                configuration: KVCacheConfiguration(keyScheme: c.k, valueScheme: c.v, numerics: .ggml), threads: 2)
        #expect(cache.usesGGMLFlashAttention(layer: 0) || cache.usesGGMLFlashF16(layer: 0))
        let pool = ThreadPool(threads: 2)
        var rng = TestRandom(seed: UInt64(d * 7 + c.prompt))
        let keys = rng.vectors(count: total, dim: kvHeads * d)
        let values = rng.vectors(count: total, dim: kvHeads * d, outliers: false)
        let queries = rng.vectors(count: total, dim: heads * d, outliers: false).map { $0 * 2 }
        let scale = 1 / Float(d).squareRoot()
        var position = 0, mismatches = 0, checked = 0
        for n in [c.prompt] + Array(repeating: 1, count: c.decode) {
            var k = Array(keys[position * kvHeads * d..<(position + n) * kvHeads * d])
            var v = Array(values[position * kvHeads * d..<(position + n) * kvHeads * d])
            k.withUnsafeMutableBufferPointer { kp in v.withUnsafeMutableBufferPointer { vp in
                cache.write(layer: 0, keys: kp.baseAddress!, keyStride: kvHeads * d, values: vp.baseAddress!,
                            valueStride: kvHeads * d, tokens: n, firstPosition: position, angles: nil)
            } }
            var out = [Float](repeating: 0, count: n * heads * d)
            let q = Array(queries[position * heads * d..<(position + n) * heads * d])
            q.withUnsafeBufferPointer { qp in out.withUnsafeMutableBufferPointer { op in
                cache.attend(layer: 0, queries: qp.baseAddress!, queryStride: heads * d, heads: heads, tokens: n,
                             firstPosition: position, scale: scale, into: op.baseAddress!, outStride: heads * d, pool: pool)
            } }
            cache.commit(firstPosition: position, tokens: n)
            for t in 0..<n {
                let p = position + t, lo = c.window.map { max(0, p - $0 + 1) } ?? 0
                for h in 0..<heads {
                    let kvh = h / group
                    let qrow = Array(queries[(p * heads + h) * d..<(p * heads + h + 1) * d])
                    let ks = (lo...p).map { Array(keys[($0 * kvHeads + kvh) * d..<($0 * kvHeads + kvh + 1) * d]) }
                    let vs = (lo...p).map { Array(values[($0 * kvHeads + kvh) * d..<($0 * kvHeads + kvh + 1) * d]) }
                    let twin = (c.k == "f16" || c.k == "f32") && n >= 64
                        ? Self.tiled(q: qrow, keys: ks, values: vs, lo: lo, pos: p, scale: scale, dim: d)
                        : Self.oneChunk(q: qrow, keys: ks, values: vs, k: c.k, v: c.v, scale: scale, dim: d)
                    let got = Array(out[(t * heads + h) * d..<(t * heads + h + 1) * d])
                    checked += 1
                    if zip(got, twin).contains(where: { $0.bitPattern != $1.bitPattern }) {
                        if mismatches == 0 { print("\(c) position \(p) head \(h): got \(got.prefix(4)) twin \(twin.prefix(4))") }
                        mismatches += 1
                    }
                }
            }
            position += n
        }
        #expect(mismatches == 0, "\(c): \(mismatches) of \(checked) rows differ from the twin")
    }
}
