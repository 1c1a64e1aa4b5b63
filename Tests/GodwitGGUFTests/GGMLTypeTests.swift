import GodwitGGUF
import Testing

/// Block geometry pinned to ggml (ggml-common.h static_asserts / ggml.c type_traits).
@Suite struct GGMLTypeTests {
    static let expected: [(GGMLType, Int, Int)] = [
        (.f32, 1, 4), (.f16, 1, 2), (.bf16, 1, 2), (.f64, 1, 8), (.i8, 1, 1), (.i16, 1, 2), (.i32, 1, 4), (.i64, 1, 8),
        (.q4_0, 32, 18), (.q4_1, 32, 20), (.q5_0, 32, 22), (.q5_1, 32, 24), (.q8_0, 32, 34), (.q8_1, 32, 36),
        (.q2_K, 256, 84), (.q3_K, 256, 110), (.q4_K, 256, 144), (.q5_K, 256, 176), (.q6_K, 256, 210), (.q8_K, 256, 292),
        (.iq2_xxs, 256, 66), (.iq2_xs, 256, 74), (.iq3_xxs, 256, 98), (.iq1_s, 256, 50), (.iq4_nl, 32, 18),
        (.iq3_s, 256, 110), (.iq2_s, 256, 82), (.iq4_xs, 256, 136), (.iq1_m, 256, 56),
        (.tq1_0, 256, 54), (.tq2_0, 256, 66), (.mxfp4, 32, 17),
    ]

    @Test func sizesMatchGGML() {
        #expect(Self.expected.count == GGMLType.allCases.count)
        for (type, block, size) in Self.expected {
            #expect(type.blockSize == block && type.typeSize == size, "\(type)")
        }
    }

    @Test func rowBytes() {
        #expect(GGMLType.q4_K.rowBytes(512) == 288)
        #expect(GGMLType.q8_0.rowBytes(33) == nil)
        #expect(GGMLType.f32.rowBytes(-4) == nil)
        #expect(GGMLType.f32.rowBytes(.max / 2) == nil)
        #expect(GGMLType.q4_0.bitsPerValue == 4.5)
    }
}
