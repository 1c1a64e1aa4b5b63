// Block sizes pinned to ggml's (ggml-common.h static_asserts), plus the packed-scale helpers.
import Testing
import GodwitGGUF
import GodwitKernels

@Suite struct BlockLayoutTests {
    /// ggml's static_assert formulas: sizeof(ggml_half) = 2, QK_K = 256, K_SCALE_SIZE = 12.
    static let ggml: [(GGMLType, values: Int, bytes: Int)] = [
        (.f32, 1, 4), (.f16, 1, 2), (.bf16, 1, 2),
        (.q8_0, 32, 2 + 32), (.q8_1, 32, 2 * 2 + 32),
        (.q4_0, 32, 2 + 32 / 2), (.q4_1, 32, 2 * 2 + 32 / 2),
        (.q5_0, 32, 2 + 4 + 32 / 2), (.q5_1, 32, 2 * 2 + 4 + 32 / 2), (.iq4_nl, 32, 2 + 32 / 2),
        (.q4_K, 256, 2 * 2 + 12 + 256 / 2), (.q5_K, 256, 2 * 2 + 12 + 256 / 2 + 256 / 8),
        (.q6_K, 256, 2 + 256 / 16 + 3 * 256 / 4), (.q8_K, 256, 4 + 256 + 256 / 16 * 2),
    ]

    @Test(arguments: ggml.map(\.0))
    func sizeMatchesGGML(_ type: GGMLType) throws {
        let expected = try #require(Self.ggml.first { $0.0 == type })
        let geometry = try #require(BlockLayout.geometry(type))
        #expect(geometry.values == expected.values)
        #expect(geometry.bytes == expected.bytes)
        #expect(geometry.bytes == type.typeSize && geometry.values == type.blockSize)
    }

    @Test func fieldOffsetsEndAtBlockSize() {
        #expect(BlockLayout.Q4_0.qs + 16 == BlockLayout.Q4_0.bytes)
        #expect(BlockLayout.Q4_1.qs + 16 == BlockLayout.Q4_1.bytes)
        #expect(BlockLayout.Q5_0.qs + 16 == BlockLayout.Q5_0.bytes)
        #expect(BlockLayout.Q5_1.qs + 16 == BlockLayout.Q5_1.bytes)
        #expect(BlockLayout.Q8_0.qs + 32 == BlockLayout.Q8_0.bytes)
        #expect(BlockLayout.Q8_1.qs + 32 == BlockLayout.Q8_1.bytes)
        #expect(BlockLayout.IQ4_NL.qs + 16 == BlockLayout.IQ4_NL.bytes)
        #expect(BlockLayout.Q4_K.qs + 128 == BlockLayout.Q4_K.bytes)
        #expect(BlockLayout.Q5_K.qs + 128 == BlockLayout.Q5_K.bytes)
        #expect(BlockLayout.Q6_K.d + 2 == BlockLayout.Q6_K.bytes)
        #expect(BlockLayout.Q8_K.bsums + 32 == BlockLayout.Q8_K.bytes)
    }

    @Test func kQuantScaleUnpackMatchesGetScaleMin() {
        var rng = SeededGenerator(seed: 1)
        for _ in 0..<200 {
            let bytes = (0..<12).map { _ in UInt8.random(in: 0...255, using: &rng) }
            bytes.withUnsafeBytes { p in
                let (sc, mn) = KQuantScales.unpack(p.baseAddress!)
                for j in 0..<8 {
                    let (s, m) = KQuantScales.scaleMin(j, p.baseAddress!)
                    #expect(sc[j] == s && mn[j] == m)
                }
            }
        }
    }

    @Test func iq4nlLevelTable() {
        for q in 0..<16 { #expect(IQ4NL.level(UInt8(q)) == Int32(IQ4NL.values[q])) }
        #expect(IQ4NL.values == [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113])
    }
}
