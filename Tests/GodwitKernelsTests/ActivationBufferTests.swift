// ActivationBuffer.quantize: the SIMD path against its scalar twin, and ggml-cpu's rounding
// (the AVX quantize_row_q8_0/q8_1: nearest-even, id = 127/amax) on hand-computed blocks.
import Testing
import GodwitGGUF
import GodwitKernels

@Suite struct ActivationBufferTests {
    static let types: [ActivationType] = [.f32, .q8_0, .q8_1, .q8_K]

    @Test(arguments: types)
    func fastEqualsReference(_ type: ActivationType) {
        var rng = SeededGenerator(seed: 40)
        let cols = 768, rows = 19, stride = 800
        var x = rng.gaussians(rows * stride, scale: 3)
        for i in stride..<stride + 256 { x[i] = Float(Int.random(in: -20...20, using: &rng)) * 0.5 }  // ties
        for i in 2 * stride..<2 * stride + 32 { x[i] = 0 }                                          // zero block
        let a = ActivationBuffer(type: type, maxRows: 32, cols: cols)
        let b = ActivationBuffer(type: type, maxRows: 32, cols: cols)
        x.withUnsafeBufferPointer {
            a.quantize($0.baseAddress!, rows: rows, rowStride: stride)
            b.quantizeReference($0.baseAddress!, rows: rows, rowStride: stride)
        }
        #expect(a.rows == rows && a.rowBytes == cols / type.blockSize * type.typeSize)
        for t in 0..<rows {
            let ra = UnsafeRawBufferPointer(start: a.row(t), count: a.rowBytes)
            let rb = UnsafeRawBufferPointer(start: b.row(t), count: b.rowBytes)
            #expect(Array(ra) == Array(rb), "row \(t)")
        }
    }

    /// ggml-cpu's q8_0/q8_1 round half to even (the reference quantizer rounds away from zero).
    @Test func q8RoundsToNearestEven() {
        let x = QuantizeReferenceTests.ties
        for type in [ActivationType.q8_0, .q8_1] {
            let a = ActivationBuffer(type: type, maxRows: 1, cols: 32)
            x.withUnsafeBufferPointer { a.quantize($0.baseAddress!, rows: 1, rowStride: 32) }
            let row = Array(UnsafeRawBufferPointer(start: a.row(0), count: a.rowBytes))
            let qs = type == .q8_0 ? 2 : 4
            #expect(u16(row, 0) == 0x3C00)
            #expect(row[qs..<qs + 8].map { Int8(bitPattern: $0) } == [127, 2, -2, 4, 0, 0, 2, -127])
            if type == .q8_1 { #expect(u16(row, 2) == floatToHalf(6)) }   // s = d·Σq
        }
    }

    /// q8_K activations are ggml's reference quantizer (ggml-cpu uses it on x86).
    @Test func q8KMatchesReferenceQuantizer() throws {
        var rng = SeededGenerator(seed: 41)
        let x = rng.gaussians(512)
        let a = ActivationBuffer(type: .q8_K, maxRows: 1, cols: 512)
        x.withUnsafeBufferPointer { a.quantize($0.baseAddress!, rows: 1, rowStride: 512) }
        #expect(Array(UnsafeRawBufferPointer(start: a.row(0), count: a.rowBytes)) == (try referenceBytes(.q8_K, x)))
    }

    @Test func typeGeometry() {
        #expect(ActivationType.q8_0.blockSize == 32 && ActivationType.q8_0.typeSize == 34)
        #expect(ActivationType.q8_1.blockSize == 32 && ActivationType.q8_1.typeSize == 36)
        #expect(ActivationType.q8_K.blockSize == 256 && ActivationType.q8_K.typeSize == 292)
        #expect(ActivationType.f32.blockSize == 1 && ActivationType.f32.typeSize == 4)
        let expected: [GGMLType: ActivationType] = [.f32: .f32, .f16: .f32, .bf16: .f32, .q4_0: .q8_0, .q5_0: .q8_0,
            .q8_0: .q8_0, .iq4_nl: .q8_0, .q4_1: .q8_1, .q5_1: .q8_1, .q4_K: .q8_K, .q5_K: .q8_K, .q6_K: .q8_K]
        for (w, a) in expected { #expect(w.activationType == a) }
    }
}
