// Small f32 row kernels shared by the per-vector schemes (FP8, Q8_KV, TurboQuant): a decoded row
// [d] (d a multiple of 16) dotted with, or added into, f32 rows. Source: this project (the same loops
// as GodwitKernels' VectorOps.dot / addScaled). They are repeated here so they inline into the
// stores' loops: VectorOps' versions were emitted as out-of-line cross-module calls (one call per
// key per query head, checked with objdump).

import GodwitKernels

enum VectorRowKernels {
    /// Σ a[i]·b[i] over [d], d a multiple of 16: two SIMD16 accumulators, tree reduction.
    @inline(__always) static func dot(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ d: Int) -> Float {
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
        var i = 0
        while i + 32 <= d {
            acc0 = acc0.addingProduct(a.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self),
                                      b.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
            acc1 = acc1.addingProduct(a.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self),
                                      b.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self))
            i += 32
        }
        if i < d {
            acc0 = acc0.addingProduct(a.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self),
                                      b.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
        }
        return hsum(acc0 + acc1)
    }

    /// acc[i] += w · x[i] over [d], d a multiple of 16.
    @inline(__always) static func addScaled(_ acc: UnsafeMutableRawPointer, _ x: UnsafeRawPointer, _ w: Float, _ d: Int) {
        let wv = SIMD16<Float>(repeating: w)
        var i = 0
        while i < d {
            let v = acc.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                .addingProduct(x.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self), wv)
            acc.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
    }

    /// Horizontal sum as a tree (lowHalf + highHalf).
    @inline(__always) static func hsum(_ v: SIMD16<Float>) -> Float {
        let a = v.lowHalf + v.highHalf
        let b = a.lowHalf + a.highHalf
        let c = b.lowHalf + b.highHalf
        return c[0] + c[1]
    }
}

/// The f16 value at byte `offset` of `p`, as a Float.
@inline(__always) func halfAt(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    halfToFloat(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
}

/// Σ_i a[i]·b[i] over 32 signed bytes (a fixed-length loop: vectorized by the compiler).
@inline(__always) func dotI8x32(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer) -> Int32 {
    let x = a.assumingMemoryBound(to: Int8.self), y = b.assumingMemoryBound(to: Int8.self)
    var s: Int32 = 0
    for i in 0..<32 { s &+= Int32(x[i]) &* Int32(y[i]) }
    return s
}
