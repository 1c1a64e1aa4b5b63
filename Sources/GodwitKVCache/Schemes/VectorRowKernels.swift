// Small f32 row kernels shared by the per-vector schemes (FP8, Q8_KV, TurboQuant): a decoded row
// [d] (d a multiple of 16) dotted with, or added into, f32 rows. Source: this project (the same loops
// as GodwitKernels' VectorOps.dot / addScaled). They are repeated here so they inline into the
// stores' loops: VectorOps' versions were emitted as out-of-line cross-module calls (one call per
// key per query head, checked with objdump).

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
