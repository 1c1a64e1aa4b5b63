// tcq records as 16-dim f32 columns, for FloatStoreKernels' value sums and the row-record tcq key scores.
// Source: TrellisCode.swift (records [f16 scale][trellis bits], coordinate i's state = the 10-bit window
// at bit k·(d−1−i), circular).
// Column (j, i) = scale_j · level(s_{i+t}), t < 16, level(s) = low[s mod 32] + high[s >> 5]. The 16
// windows of coordinates i..<i+16 span 15k + 10 ≤ 70 bits from bit k·(d−16−i), a byte boundary: one
// 16-byte load there, one byte permute (`vpermb`, CGodwit `godwit_pick_bytes16`) that gives lane t the
// 32-bit word at byte ⌊k(15−t)/8⌋, one per-lane shift by k(15−t) mod 8 (`vpsrlvd`), and two `vpermi2ps`
// (CodeLookup.lookup32: only the low 5 bits of an index count, so nothing is masked). The chunk of
// coordinate 0 wraps: its windows need one byte past the string's end, the string's first byte (put at
// relative byte 2k). Loads may read up to 14 bytes past a record (VectorRecordStorage's tail padding).
// (Building lanes from 32-bit scalar words compiled to `vpgatherqd`s; a `vgatherdps` from the 1024
// levels ran attention at 0.67× of f16.)
import CGodwit
import GodwitKernels

/// A tcq code width as a type (constant byte picks and shifts per specialization).
protocol TrellisWidth {
    static var bits: Int { get }
}
enum Trellis2Bit: TrellisWidth { static var bits: Int { 2 } }
enum Trellis3Bit: TrellisWidth { static var bits: Int { 3 } }
enum Trellis4Bit: TrellisWidth { static var bits: Int { 4 } }

/// tcq records [count, stride] as 16-dim f32 columns.
struct TrellisColumns<W: TrellisWidth>: ValueColumns {
    let records: UnsafeRawPointer
    let stride: Int
    let dim: Int
    /// The tables low[0..<16], low[16..<32], high[0..<16], high[16..<32] (TrellisTables).
    let tables: TrellisTables
    /// Where lane t finds coordinate i + t's window (TrellisLanes).
    let lanes: TrellisLaneLayout

    /// lanes: TrellisLanes.layout(bits: W.bits), built once by the store.
    init(records: UnsafeRawPointer, stride: Int, dim: Int, tables: TrellisTables, lanes: TrellisLaneLayout) {
        self.records = records
        self.stride = stride
        self.dim = dim
        self.tables = tables
        self.lanes = lanes
    }

    /// The states of coordinates i..<i+16 (i a multiple of 16) in the low 10 bits of each lane (higher
    /// bits hold the following coordinates' bits; lookups ignore them).
    @inline(__always) func states(_ packed: UnsafeRawPointer, _ i: Int) -> SIMD16<Int32> {
        let k = W.bits
        var raw = packed.loadUnaligned(fromByteOffset: k * (dim - 16 - i) / 8, as: SIMD16<UInt8>.self)
        if i == 0 { raw[2 * k] = packed.load(as: UInt8.self) }
        return TrellisLanes.states(raw, lanes)
    }

    @inline(__always) func column(_ j: Int, _ i: Int) -> SIMD16<Float> {
        let r = records + j * stride
        let scale = SIMD16<Float>(repeating: halfToFloat(r.loadUnaligned(as: UInt16.self)))
        return SIMD16<Float>(repeating: -0.0).addingProduct(tables.levels(states: states(r + 2, i)), scale)
    }
}

/// Where lane t finds the k-bit trellis window at bit k·(15 − t) of 16 bytes (16 windows of a record
/// chunk or of a kivi{b}tcq channel chunk): the 32-bit word at byte ⌊k(15−t)/8⌋ (`godwit_pick_bytes16`),
/// shifted right by k(15−t) mod 8.
struct TrellisLaneLayout {
    /// Byte j of lane t (4t + j) ← byte ⌊k(15−t)/8⌋ + j.
    let picks: SIMD64<UInt8>
    /// Lane t: k(15 − t) mod 8.
    let shifts: SIMD16<UInt32>
}

enum TrellisLanes {
    static func layout(bits k: Int) -> TrellisLaneLayout {
        var p = SIMD64<UInt8>(), s = SIMD16<UInt32>()
        for t in 0..<16 {
            let bit = k * (15 - t)
            for j in 0..<4 { p[4 * t + j] = UInt8(bit / 8 + j) }
            s[t] = UInt32(bit % 8)
        }
        return TrellisLaneLayout(picks: p, shifts: s)
    }

    /// The 16 states (low 10 bits of each lane; lookups ignore the bits above) from 16 bytes.
    @inline(__always)
    static func states(_ bytes: SIMD16<UInt8>, _ lanes: TrellisLaneLayout) -> SIMD16<Int32> {
        let words = unsafeBitCast(godwit_pick_bytes16(bytes, lanes.picks), to: SIMD16<UInt32>.self)
        return unsafeBitCast(words &>> lanes.shifts, to: SIMD16<Int32>.self)
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

    /// level(s) per lane for states s (bits above the L-bit state are ignored): low[s mod 32] + high[(s >> 5) mod 32].
    @inline(__always) func levels(states s: SIMD16<Int32>) -> SIMD16<Float> {
        CodeLookup.lookup32(low0, low1, s) + CodeLookup.lookup32(high0, high1, s &>> Int32(TrellisCodebook.lowBits))
    }
}
