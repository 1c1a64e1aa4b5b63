// tcq records as 16-dim f32 columns, for FloatStoreKernels' value sums and the tcq key scores. Source:
// TrellisCode.swift (records [f16 scale][trellis bits], coordinate i's state = the 10-bit window at bit
// k·(d−1−i), circular).
// Column (j, i) = scale_j · level(s_{i+t}), t < 16, level(s) = low[s mod 32] + high[s >> 5]. The 16
// states come from 16/g words of 32 bits (g = 8 coordinates per word for k ≤ 3 — 7k + 10 ≤ 32 bits —,
// g = 4 for k = 4): the word of coordinates a..<a+g starts at bit k·(d−g−a), byte-aligned; lane t shifts
// its word right by k·(g−1−t mod g) (`vpsrlvd`) for the low index and by 5 more for the high index, and
// two `vpermi2ps` (CodeLookup.lookup32: only the low 5 bits of an index count, so nothing is masked) read
// the two tables. The first word of a vector (a = 0) wraps: its top L − k bits come from the start of
// the bit string. (A `vgatherdps` from the 1024 levels ran attention at 0.67× of f16.)
import GodwitKernels

/// A tcq code width as a type (constant shifts per specialization).
protocol TrellisWidth {
    static var bits: Int { get }
    /// Coordinates decoded from one 32-bit word.
    static var perWord: Int { get }
}
enum Trellis2Bit: TrellisWidth { static var bits: Int { 2 }; static var perWord: Int { 8 } }
enum Trellis3Bit: TrellisWidth { static var bits: Int { 3 }; static var perWord: Int { 8 } }
enum Trellis4Bit: TrellisWidth { static var bits: Int { 4 }; static var perWord: Int { 4 } }

/// tcq records [count, stride] as 16-dim f32 columns.
struct TrellisColumns<W: TrellisWidth>: ValueColumns {
    let records: UnsafeRawPointer
    let stride: Int
    let dim: Int
    /// The tables low[0..<16], low[16..<32], high[0..<16], high[16..<32] (TrellisTables).
    let tables: TrellisTables
    /// Lane t: k·(g − 1 − t mod g).
    let shifts: SIMD16<UInt32>

    init(records: UnsafeRawPointer, stride: Int, dim: Int, tables: TrellisTables) {
        self.records = records
        self.stride = stride
        self.dim = dim
        self.tables = tables
        shifts = Self.laneShifts
    }

    static var laneShifts: SIMD16<UInt32> {
        var s = SIMD16<UInt32>()
        for t in 0..<16 { s[t] = UInt32(W.bits * (W.perWord - 1 - t % W.perWord)) }
        return s
    }

    /// The 32-bit word holding the states of coordinates a..<a+g (a a multiple of g).
    @inline(__always) func word(_ packed: UnsafeRawPointer, _ a: Int) -> UInt32 {
        let g = W.perWord, k = W.bits
        let w = packed.loadUnaligned(fromByteOffset: k * (dim - g - a) / 8, as: UInt32.self)
        if a != 0 { return w }
        let valid = UInt32(k * g)
        return (w & ((1 << valid) &- 1)) | (packed.loadUnaligned(as: UInt32.self) << valid)
    }

    /// The 32-bit words of coordinates i..<i+16 (i a multiple of 16), coordinate i + t's in lane t.
    @inline(__always) func words16(_ packed: UnsafeRawPointer, _ i: Int) -> SIMD16<UInt32> {
        let words: SIMD16<UInt32>
        if W.perWord == 8 {
            words = SIMD16(lowHalf: SIMD8(repeating: word(packed, i)), highHalf: SIMD8(repeating: word(packed, i + 8)))
        } else {
            words = SIMD16(lowHalf: SIMD8(lowHalf: SIMD4(repeating: word(packed, i)), highHalf: SIMD4(repeating: word(packed, i + 4))),
                           highHalf: SIMD8(lowHalf: SIMD4(repeating: word(packed, i + 8)), highHalf: SIMD4(repeating: word(packed, i + 12))))
        }
        return words
    }

    @inline(__always) func column(_ j: Int, _ i: Int) -> SIMD16<Float> {
        let r = records + j * stride
        let scale = SIMD16<Float>(repeating: halfToFloat(r.loadUnaligned(as: UInt16.self)))
        return SIMD16<Float>(repeating: -0.0).addingProduct(tables.levels(words16(r + 2, i), shifts), scale)
    }
}

/// A trellis codebook's two 32-entry tables as four registers, for CodeLookup.lookup32.
struct TrellisTables {
    let low0: SIMD16<Float>, low1: SIMD16<Float>, high0: SIMD16<Float>, high1: SIMD16<Float>

    init(_ book: TrellisCodebook) {
        var t = [SIMD16<Float>](repeating: .init(), count: 4)
        for i in 0..<16 {
            t[0][i] = book.low[i]; t[1][i] = book.low[16 + i]
            t[2][i] = book.high[i]; t[3][i] = book.high[16 + i]
        }
        (low0, low1, high0, high1) = (t[0], t[1], t[2], t[3])
    }

    /// level(s) per lane for the state s = (word >> shift) mod 2^L: low[s mod 32] + high[s >> 5].
    @inline(__always) func levels(_ words: SIMD16<UInt32>, _ shifts: SIMD16<UInt32>) -> SIMD16<Float> {
        let s = words &>> shifts
        let hi = (s &>> UInt32(TrellisCodebook.lowBits)) & UInt32((TrellisCodebook.states >> TrellisCodebook.lowBits) - 1)
        return CodeLookup.lookup32(low0, low1, SIMD16<Int32>(truncatingIfNeeded: s))
            + CodeLookup.lookup32(high0, high1, SIMD16<Int32>(truncatingIfNeeded: hi))
    }
}
