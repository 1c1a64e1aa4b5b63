// The dot product of one query row with a 16-position key tile, shared by the tiled key stores that
// decode their codes into an f32 tile first (TiledBlockKeyStore, TiledFP8KeyStore). Source: this
// project. TiledFloatKeyStore keeps its own loop: it mirrors the row kernel's lane order bitwise.

enum TileDot {
    /// Lane l = Σ_i q[i]·k[i, l] over n dims (n a multiple of 8, passed at run time: with a constant
    /// trip count LLVM unrolled the loop fully and split the vectors into xmm pieces).
    /// q: n f32; k: [n, 16] f32. Eight FMA chains (dims i ≡ c mod 8), then added in chain order,
    /// each addition written as fma(x, 1, y) — a chain of stdlib `+` became xmm pieces as well.
    @inline(__always)
    static func sums(_ q: UnsafeRawPointer, _ k: UnsafeRawPointer, _ n: Int) -> SIMD16<Float> {
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
        var a4 = SIMD16<Float>(), a5 = SIMD16<Float>(), a6 = SIMD16<Float>(), a7 = SIMD16<Float>()
        var i = 0
        while i < n {
            @inline(__always) func kc(_ l: Int) -> SIMD16<Float> { k.load(fromByteOffset: (i + l) * 64, as: SIMD16<Float>.self) }
            @inline(__always) func qb(_ l: Int) -> SIMD16<Float> {
                SIMD16<Float>(repeating: q.loadUnaligned(fromByteOffset: (i + l) * 4, as: Float.self))
            }
            a0 = a0.addingProduct(qb(0), kc(0)); a1 = a1.addingProduct(qb(1), kc(1))
            a2 = a2.addingProduct(qb(2), kc(2)); a3 = a3.addingProduct(qb(3), kc(3))
            a4 = a4.addingProduct(qb(4), kc(4)); a5 = a5.addingProduct(qb(5), kc(5))
            a6 = a6.addingProduct(qb(6), kc(6)); a7 = a7.addingProduct(qb(7), kc(7))
            i += 8
        }
        let one = SIMD16<Float>(repeating: 1)
        var s = a0
        s = s.addingProduct(a1, one); s = s.addingProduct(a2, one); s = s.addingProduct(a3, one)
        s = s.addingProduct(a4, one); s = s.addingProduct(a5, one); s = s.addingProduct(a6, one)
        return s.addingProduct(a7, one)
    }

    /// The 16 lanes' q·k of a decoded tile [n, 16] f32 into out [16] (not inlined: inlined into the
    /// tile loops, LLVM split the vectors into xmm pieces).
    @inline(never)
    static func scores(_ q: UnsafeRawPointer, _ tile: UnsafeRawPointer, _ n: Int, into out: UnsafeMutableRawPointer) {
        out.storeBytes(of: sums(q, tile, n), as: SIMD16<Float>.self)
    }

    /// Copies lanes lane0..<lane0+n of a row of 16 scores to out[0..<n] (one vector store for a whole tile).
    @inline(__always)
    static func copyLanes(_ lanes: UnsafeRawPointer, from lane0: Int, count n: Int, to out: UnsafeMutablePointer<Float>) {
        if n == 16 {
            UnsafeMutableRawPointer(out).storeBytes(of: lanes.loadUnaligned(as: SIMD16<Float>.self), as: SIMD16<Float>.self)
        } else {
            let l = lanes.assumingMemoryBound(to: Float.self) + lane0
            for k in 0..<n { out[k] = l[k] }
        }
    }
}
