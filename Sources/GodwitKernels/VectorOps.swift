// Elementwise and reduction kernels on float vectors (ggml-cpu/vec.h and ops.cpp equivalents).
// All functions take raw pointers plus a length; shapes are documented per function. 16-lane
// SIMD bodies with scalar tails; reductions use a tree of SIMD16 accumulators.
import RealModule

public enum VectorOps {
    // MARK: Reductions

    /// Σ a[i]·b[i] over [n].
    @inline(__always)
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        let ra = UnsafeRawPointer(a), rb = UnsafeRawPointer(b)
        var acc0 = SIMD16<Float>(), acc1 = SIMD16<Float>()
        var i = 0
        while i + 32 <= n {
            acc0 = acc0.addingProduct(ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self),
                                      rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
            acc1 = acc1.addingProduct(ra.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self),
                                      rb.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self))
            i += 32
        }
        if i + 16 <= n {
            acc0 = acc0.addingProduct(ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self),
                                      rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
            i += 16
        }
        var s = hsum(acc0 + acc1)
        while i < n { s = Relaxed.multiplyAdd(a[i], b[i], s); i += 1 }
        return s
    }

    /// Σ x[i]² over [n].
    @inline(__always)
    public static func sumOfSquares(_ x: UnsafePointer<Float>, _ n: Int) -> Float { dot(x, x, n) }

    /// Largest element of [n] (n ≥ 1).
    public static func max(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        let r = UnsafeRawPointer(x)
        var i = 0
        var m = Float.infinity * -1
        if n >= 16 {
            var mv = r.loadUnaligned(as: SIMD16<Float>.self)
            i = 16
            while i + 16 <= n {
                mv = pointwiseMax(mv, r.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
                i += 16
            }
            m = hmax(mv)
        }
        while i < n { m = Swift.max(m, x[i]); i += 1 }
        return m
    }

    /// Index of the largest element of [n] (first one on ties).
    public static func argmax(_ x: UnsafePointer<Float>, _ n: Int) -> Int {
        let m = max(x, n)
        for i in 0..<n where x[i] == m { return i }
        return 0
    }

    // MARK: Norms

    /// RMSNorm: out[i] = x[i] · w[i] / √(mean(x²) + eps), over [n]. `out` may alias `x`.
    public static func rmsNorm(_ x: UnsafePointer<Float>, weight w: UnsafePointer<Float>,
                               into out: UnsafeMutablePointer<Float>, count n: Int, eps: Float) {
        let mean = sumOfSquares(x, n) / Float(n)
        let scale = 1 / (mean + eps).squareRoot()
        let rx = UnsafeRawPointer(x), rw = UnsafeRawPointer(w), ro = UnsafeMutableRawPointer(out)
        let s = SIMD16<Float>(repeating: scale)
        var i = 0
        while i + 16 <= n {
            let v = rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * s
            ro.storeBytes(of: v * rw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self), toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { out[i] = x[i] * scale * w[i]; i += 1 }
    }

    // MARK: Elementwise

    /// a[i] += b[i] over [n].
    @inline(__always)
    public static func add(_ a: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) {
        let ra = UnsafeMutableRawPointer(a), rb = UnsafeRawPointer(b)
        var i = 0
        while i + 16 <= n {
            let v = ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) + rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            ra.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { a[i] += b[i]; i += 1 }
    }

    /// x[i] *= s over [n].
    @inline(__always)
    public static func scale(_ x: UnsafeMutablePointer<Float>, by s: Float, _ n: Int) {
        let r = UnsafeMutableRawPointer(x)
        let sv = SIMD16<Float>(repeating: s)
        var i = 0
        while i + 16 <= n {
            r.storeBytes(of: r.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * sv, toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { x[i] *= s; i += 1 }
    }

    /// acc[i] += w · x[i] over [n].
    @inline(__always)
    public static func addScaled(_ acc: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, weight w: Float, _ n: Int) {
        let ra = UnsafeMutableRawPointer(acc), rx = UnsafeRawPointer(x)
        let wv = SIMD16<Float>(repeating: w)
        var i = 0
        while i + 16 <= n {
            let v = ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                .addingProduct(rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self), wv)
            ra.storeBytes(of: v, toByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { acc[i] = Relaxed.multiplyAdd(x[i], w, acc[i]); i += 1 }
    }

    /// Numerically stable softmax in place over [n]; returns the normalizer Σ exp(x − max).
    @discardableResult
    public static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
        let m = max(x, n)
        let sum = expSubtract(x, max: m, n)
        scale(x, by: 1 / sum, n)
        return sum
    }

    /// x[i] = exp(x[i] − max) over [n]; returns Σ of the results.
    @inline(__always)
    public static func expSubtract(_ x: UnsafeMutablePointer<Float>, max m: Float, _ n: Int) -> Float {
        let r = UnsafeMutableRawPointer(x)
        let mv = SIMD16<Float>(repeating: m)
        var acc = SIMD16<Float>()
        var i = 0
        while i + 16 <= n {
            let e = FastMath.exp(r.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) - mv)
            r.storeBytes(of: e, toByteOffset: i * 4, as: SIMD16<Float>.self)
            acc += e
            i += 16
        }
        var s = hsum(acc)
        while i < n { let e = FastMath.exp(x[i] - m); x[i] = e; s += e; i += 1 }
        return s
    }

    // MARK: SIMD helpers

    /// Horizontal sum as a tree (lowHalf + highHalf), not a serial chain.
    @inline(__always)
    public static func hsum(_ v: SIMD16<Float>) -> Float {
        let a = v.lowHalf + v.highHalf
        let b = a.lowHalf + a.highHalf
        let c = b.lowHalf + b.highHalf
        return c[0] + c[1]
    }

    @inline(__always)
    public static func hmax(_ v: SIMD16<Float>) -> Float {
        let a = pointwiseMax(v.lowHalf, v.highHalf)
        let b = pointwiseMax(a.lowHalf, a.highHalf)
        let c = pointwiseMax(b.lowHalf, b.highHalf)
        return Swift.max(c[0], c[1])
    }

    // Concrete overloads: a generic `V: SIMD where Scalar: Comparable` version compiled to a scalar
    // compare loop per lane (the stdlib's generic `.>`); these become one vcmpps + blend.
    @inline(__always)
    public static func pointwiseMax(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
        a.replacing(with: b, where: b .> a)
    }
    @inline(__always)
    public static func pointwiseMax(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        a.replacing(with: b, where: b .> a)
    }
    @inline(__always)
    public static func pointwiseMax(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> {
        a.replacing(with: b, where: b .> a)
    }
    @inline(__always)
    public static func pointwiseMax(_ a: SIMD2<Float>, _ b: SIMD2<Float>) -> SIMD2<Float> {
        a.replacing(with: b, where: b .> a)
    }
}
