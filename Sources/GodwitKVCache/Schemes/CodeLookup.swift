// 16-lane codebook lookups for the tiled code stores: 16 codes (one per position of a tile, or one
// per dimension of a row) → their centroids, in one `vpermps` on AVX-512 builds (CGodwit's
// godwit_lookup16; Swift cannot spell a dynamic lane shuffle). Source: this project.
import CGodwit

enum CodeLookup {
    /// r[i] = table[index[i] & 15].
    @inline(__always)
    static func lookup16(_ table: SIMD16<Float>, _ index: SIMD16<Int32>) -> SIMD16<Float> {
        godwit_lookup16(table, index)
    }

    /// r[i] = table[index[i] & 31] for a 32-entry table given as its halves [0, 16) and [16, 32) (`vpermi2ps`).
    @inline(__always)
    static func lookup32(_ low: SIMD16<Float>, _ high: SIMD16<Float>, _ index: SIMD16<Int32>) -> SIMD16<Float> {
        godwit_lookup32(low, high, index)
    }
}
