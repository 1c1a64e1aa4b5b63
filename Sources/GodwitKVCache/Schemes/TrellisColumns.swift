// tcq records as 16-dim f32 columns, for FloatStoreKernels' value sums and the tcq key scores. Source:
// TrellisCode.swift (records [f16 scale][trellis bits], coordinate i's state = the 8-bit window at bit
// k·(d−1−i), circular).
// Column (j, i) = scale_j · levels[s_{i+t}], t < 16. The 16 states come from 16/g words of 32 bits
// (g = 8 coordinates per word for k ≤ 3 — 7k + 8 ≤ 32 bits —, g = 4 for k = 4): the word of coordinates
// a..<a+g starts at bit k·(d−g−a), byte-aligned; lane t shifts its word right by k·(g−1−t mod g)
// (`vpsrlvd`), masks 8 bits, and one `vgatherdps` (CGodwit's godwit_gather16) reads the levels. The
// first word of a vector (a = 0) wraps: its top 8 − k bits come from the start of the bit string.
import CGodwit
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
    /// [256] levels.
    let levels: UnsafePointer<Float>
    /// Lane t: k·(g − 1 − t mod g).
    let shifts: SIMD16<UInt32>

    init(records: UnsafeRawPointer, stride: Int, dim: Int, levels: UnsafePointer<Float>) {
        self.records = records
        self.stride = stride
        self.dim = dim
        self.levels = levels
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

    /// States of coordinates i..<i+16 (i a multiple of 16), one per lane.
    @inline(__always) func states16(_ packed: UnsafeRawPointer, _ i: Int) -> SIMD16<Int32> {
        let words: SIMD16<UInt32>
        if W.perWord == 8 {
            words = SIMD16(lowHalf: SIMD8(repeating: word(packed, i)), highHalf: SIMD8(repeating: word(packed, i + 8)))
        } else {
            words = SIMD16(lowHalf: SIMD8(lowHalf: SIMD4(repeating: word(packed, i)), highHalf: SIMD4(repeating: word(packed, i + 4))),
                           highHalf: SIMD8(lowHalf: SIMD4(repeating: word(packed, i + 8)), highHalf: SIMD4(repeating: word(packed, i + 12))))
        }
        return SIMD16<Int32>(truncatingIfNeeded: (words &>> shifts) & 255)
    }

    @inline(__always) func column(_ j: Int, _ i: Int) -> SIMD16<Float> {
        let r = records + j * stride
        let scale = SIMD16<Float>(repeating: halfToFloat(r.loadUnaligned(as: UInt16.self)))
        return SIMD16<Float>(repeating: -0.0).addingProduct(godwit_gather16(levels, states16(r + 2, i)), scale)
    }
}
