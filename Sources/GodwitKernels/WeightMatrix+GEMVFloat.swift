// Decode GEMV for float weights (f32, f16, bf16) against f32 activations: one token.
// Source: ggml-cpu/vec.cpp ggml_vec_dot_f32 / ggml_vec_dot_f16 / ggml_vec_dot_bf16 (plain dots).
// Deviation: f16 and bf16 weights meet f32 activations (ggml first rounds the activations to
// f16/bf16), so results are slightly more accurate than ggml's, not bit-identical.
//
// Shapes: W [rows, cols] of elements; x row t = cols floats; out[r] for r in rows.
// Kernel: 16 columns per step, converted in registers (`vcvtph2ps zmm` / shift for bf16) and fused
// into 4 Float accumulators (one per row, 4 rows per pass), scalar tail for cols % 16.
// Scalar twin: WeightMatrix+Reference.swift.

/// Loads of float-like weight elements.
protocol FloatElement {
    static var size: Int { get }
    static func load16(_ p: UnsafeRawPointer, _ i: Int) -> SIMD16<Float>
    static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float
}

enum F32Element: FloatElement {
    static let size = 4
    @inline(__always) static func load16(_ p: UnsafeRawPointer, _ i: Int) -> SIMD16<Float> {
        p.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
    }
    @inline(__always) static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float { p.loadUnaligned(fromByteOffset: 4 * i, as: Float.self) }
}

enum F16Element: FloatElement {
    static let size = 2
    @inline(__always) static func load16(_ p: UnsafeRawPointer, _ i: Int) -> SIMD16<Float> {
        halfToFloat(p.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<Float16>.self))
    }
    @inline(__always) static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        halfToFloat(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
    }
}

enum BF16Element: FloatElement {
    static let size = 2
    @inline(__always) static func load16(_ p: UnsafeRawPointer, _ i: Int) -> SIMD16<Float> {
        bf16ToFloat(p.loadUnaligned(fromByteOffset: 2 * i, as: SIMD16<UInt16>.self))
    }
    @inline(__always) static func load1(_ p: UnsafeRawPointer, _ i: Int) -> Float {
        bf16ToFloat(p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
    }
}

extension WeightMatrix {
    func gemvFloat(_ x: ActivationBuffer, _ t: Int, _ rows: Range<Int>, _ out: UnsafeMutablePointer<Float>) {
        switch type {
        case .f16: gemvFloat(F16Element.self, x, t, rows, out)
        case .bf16: gemvFloat(BF16Element.self, x, t, rows, out)
        default: gemvFloat(F32Element.self, x, t, rows, out)
        }
    }

    func gemvFloat<E: FloatElement>(_: E.Type, _ x: ActivationBuffer, _ t: Int, _ rows: Range<Int>,
                                    _ out: UnsafeMutablePointer<Float>) {
        let xr = x.row(t), n = cols, rb = rowBytes, base = data
        let n16 = n & ~15
        var r = rows.lowerBound
        while r + 4 <= rows.upperBound {
            let w0 = base + r * rb, w1 = w0 + rb, w2 = w1 + rb, w3 = w2 + rb
            var a0 = SIMD16<Float>(), a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), a3 = SIMD16<Float>()
            var i = 0
            let next = w0 + 4 * rb   // the next 4 rows, prefetched at the pace these are read
            while i < n16 {
                Self.prefetch(next + 4 * E.size * i, bytes: 4 * 16 * E.size)
                let xv = xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
                a0 = a0.addingProduct(E.load16(w0, i), xv)
                a1 = a1.addingProduct(E.load16(w1, i), xv)
                a2 = a2.addingProduct(E.load16(w2, i), xv)
                a3 = a3.addingProduct(E.load16(w3, i), xv)
                i += 16
            }
            var sums = Lanes.sum(a0, a1, a2, a3)
            while i < n {
                let xv = xr.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                sums += SIMD4<Float>(E.load1(w0, i), E.load1(w1, i), E.load1(w2, i), E.load1(w3, i)) * xv
                i += 1
            }
            UnsafeMutableRawPointer(out + r).storeBytes(of: sums, as: SIMD4<Float>.self)
            r += 4
        }
        while r < rows.upperBound {
            let w0 = base + r * rb
            var a0 = SIMD16<Float>(), i = 0
            while i < n16 {
                a0 = a0.addingProduct(E.load16(w0, i), xr.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self))
                i += 16
            }
            var s = Lanes.sum(a0)
            while i < n { s += E.load1(w0, i) * xr.loadUnaligned(fromByteOffset: 4 * i, as: Float.self); i += 1 }
            out[r] = s
            r += 1
        }
    }
}
