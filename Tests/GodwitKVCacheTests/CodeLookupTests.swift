import CGodwit
import Testing

/// The 16-entry lookup of CGodwit (one `vpermps` on AVX-512 builds) against its definition.
@Suite struct CodeLookupTests {
    @Test("godwit_lookup16 picks table[index & 15] per lane")
    func lookup() {
        var table = SIMD16<Float>()
        for i in 0..<16 { table[i] = Float(i) * 1.5 - 7 }
        for shift in 0..<20 {
            var index = SIMD16<Int32>()
            for i in 0..<16 { index[i] = Int32((i * 7 + shift * 3) % 16) }
            let r = godwit_lookup16(table, index)
            for i in 0..<16 { #expect(r[i] == table[Int(index[i])]) }
        }
    }
}
