// Dot products of one quantized cache row with a q8-quantized query, block by block, with the
// integer math of ggml's vec_dot for each pair (ggml/src/ggml-cpu/quants.c *_generic):
//   q8_0·q8_0, q4_0·q8_0, q5_0·q8_0, iq4_nl·q8_0:  Σ_b d_k·d_q·Σ_i k_i·q_i
//   q4_1·q8_1, q5_1·q8_1:                          Σ_b d_k·d_q·Σ_i k_i·q_i + m_k·s_q
// Each block's integer dot is a fixed 32-long loop on raw pointers (vectorized by the compiler);
// the float accumulation order is this file's own (llama.cpp's flash-attention CPU path calls
// the per-format vec_dot with its SIMD order), so results agree with ggml to rounding.
import GodwitGGUF
import GodwitKernels

/// A ggml 32-value block format usable as a quantized cache row.
protocol CacheBlockFormat {
    static var type: GGMLType { get }
    /// The query encoding its dot product needs (q8_0 or q8_1).
    static var queryType: GGMLType { get }
    /// Σ over `blocks` blocks of k · q, k a cache row and q a prepared query row.
    static func dot(_ k: UnsafeRawPointer, _ q: UnsafeRawPointer, blocks: Int) -> Float
}

@inline(__always) func halfAt(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    halfToFloat(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
}

/// Σ_i a[i]·b[i] over 32 signed bytes.
@inline(__always) func dotI8x32(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer) -> Int32 {
    let x = a.assumingMemoryBound(to: Int8.self), y = b.assumingMemoryBound(to: Int8.self)
    var s: Int32 = 0
    for i in 0..<32 { s &+= Int32(x[i]) &* Int32(y[i]) }
    return s
}

/// Σ over 32 values of (nibble − bias)·q, nibbles packed ggml-style (low = 0..15, high = 16..31).
@inline(__always) func dotNibbles(_ qs: UnsafeRawPointer, _ q: UnsafeRawPointer, bias: Int32) -> Int32 {
    let x = qs.assumingMemoryBound(to: UInt8.self), y = q.assumingMemoryBound(to: Int8.self)
    var s: Int32 = 0
    for i in 0..<16 {
        s &+= (Int32(x[i] & 15) &- bias) &* Int32(y[i])
        s &+= (Int32(x[i] >> 4) &- bias) &* Int32(y[i + 16])
    }
    return s
}

/// Same with a fifth bit per value from `qh` (bit i for value i).
@inline(__always) func dotNibbles5(_ qs: UnsafeRawPointer, _ qh: UInt32, _ q: UnsafeRawPointer, bias: Int32) -> Int32 {
    let x = qs.assumingMemoryBound(to: UInt8.self), y = q.assumingMemoryBound(to: Int8.self)
    var s: Int32 = 0
    for i in 0..<16 {
        let lo = Int32(x[i] & 15) | Int32((qh >> UInt32(i)) & 1) << 4
        let hi = Int32(x[i] >> 4) | Int32((qh >> UInt32(i + 16)) & 1) << 4
        s &+= (lo &- bias) &* Int32(y[i])
        s &+= (hi &- bias) &* Int32(y[i + 16])
    }
    return s
}

enum Q8_0Cache: CacheBlockFormat {
    static let type = GGMLType.q8_0, queryType = GGMLType.q8_0
    @inline(__always) static func dot(_ k: UnsafeRawPointer, _ q: UnsafeRawPointer, blocks: Int) -> Float {
        var acc: Float = 0
        for b in 0..<blocks {
            let kb = k + b * 34, qb = q + b * 34
            acc += halfAt(kb, 0) * halfAt(qb, 0) * Float(dotI8x32(kb + 2, qb + 2))
        }
        return acc
    }
}

enum Q4_0Cache: CacheBlockFormat {
    static let type = GGMLType.q4_0, queryType = GGMLType.q8_0
    @inline(__always) static func dot(_ k: UnsafeRawPointer, _ q: UnsafeRawPointer, blocks: Int) -> Float {
        var acc: Float = 0
        for b in 0..<blocks {
            let kb = k + b * 18, qb = q + b * 34
            acc += halfAt(kb, 0) * halfAt(qb, 0) * Float(dotNibbles(kb + 2, qb + 2, bias: 8))
        }
        return acc
    }
}

enum Q4_1Cache: CacheBlockFormat {
    static let type = GGMLType.q4_1, queryType = GGMLType.q8_1
    @inline(__always) static func dot(_ k: UnsafeRawPointer, _ q: UnsafeRawPointer, blocks: Int) -> Float {
        var acc: Float = 0
        for b in 0..<blocks {
            let kb = k + b * 20, qb = q + b * 36
            acc += halfAt(kb, 0) * halfAt(qb, 0) * Float(dotNibbles(kb + 4, qb + 4, bias: 0)) + halfAt(kb, 2) * halfAt(qb, 2)
        }
        return acc
    }
}

enum Q5_0Cache: CacheBlockFormat {
    static let type = GGMLType.q5_0, queryType = GGMLType.q8_0
    @inline(__always) static func dot(_ k: UnsafeRawPointer, _ q: UnsafeRawPointer, blocks: Int) -> Float {
        var acc: Float = 0
        for b in 0..<blocks {
            let kb = k + b * 22, qb = q + b * 34
            let qh = kb.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
            acc += halfAt(kb, 0) * halfAt(qb, 0) * Float(dotNibbles5(kb + 6, qh, qb + 2, bias: 16))
        }
        return acc
    }
}

enum Q5_1Cache: CacheBlockFormat {
    static let type = GGMLType.q5_1, queryType = GGMLType.q8_1
    @inline(__always) static func dot(_ k: UnsafeRawPointer, _ q: UnsafeRawPointer, blocks: Int) -> Float {
        var acc: Float = 0
        for b in 0..<blocks {
            let kb = k + b * 24, qb = q + b * 36
            let qh = kb.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
            acc += halfAt(kb, 0) * halfAt(qb, 0) * Float(dotNibbles5(kb + 8, qh, qb + 4, bias: 0)) + halfAt(kb, 2) * halfAt(qb, 2)
        }
        return acc
    }
}

enum IQ4_NLCache: CacheBlockFormat {
    static let type = GGMLType.iq4_nl, queryType = GGMLType.q8_0
    @inline(__always) static func dot(_ k: UnsafeRawPointer, _ q: UnsafeRawPointer, blocks: Int) -> Float {
        var acc: Float = 0
        let levels: SIMD16<Int8> = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
        for b in 0..<blocks {
            let kb = k + b * 18, qb = q + b * 34
            let x = (kb + 2).assumingMemoryBound(to: UInt8.self), y = (qb + 2).assumingMemoryBound(to: Int8.self)
            var s: Int32 = 0
            for i in 0..<16 {
                s &+= Int32(levels[Int(x[i] & 15)]) &* Int32(y[i])
                s &+= Int32(levels[Int(x[i] >> 4)]) &* Int32(y[i + 16])
            }
            acc += halfAt(kb, 0) * halfAt(qb, 0) * Float(s)
        }
        return acc
    }
}
