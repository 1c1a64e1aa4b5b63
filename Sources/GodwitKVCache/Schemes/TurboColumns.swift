// TurboQuant value records as 16-dim f32 columns for FloatStoreKernels' value sums. Source:
// TurboQuantScheme.swift (TurboQuant, arXiv 2504.19874, Algorithm 1: records [f16 scale][codes],
// coordinate i at bit b·i of the codes).
// Column (j, i) = scale_j · centroid[code of dim i + i′], i′ < 16: the 16 codes come from one 16-byte
// load zero-extended, a lane permute and one variable shift (`vpsrlvd`), and one `vpermps`
// (CodeLookup.lookup16) maps them to centroids — no mask: the table repeats the centroids to 16
// entries, so the other codes' bits above an index's low b bits do not matter.
import GodwitKernels

/// A TurboQuant code width as a type, so that each width gets its own specialization with constant shifts.
protocol TurboWidth {
    static var bits: Int { get }
}
enum Turbo2Bit: TurboWidth { static var bits: Int { 2 } }
enum Turbo3Bit: TurboWidth { static var bits: Int { 3 } }
enum Turbo4Bit: TurboWidth { static var bits: Int { 4 } }

/// Lane permutations and shifts that unpack 16 codes of a record (see `TurboColumns.codes16`).
/// Kept in memory (stored properties of the store, passed in at run time): as constants, LLVM turned the
/// permutes into per-byte extracts and inserts.
struct TurboUnpack {
    /// Lane k ← byte (b·k) / 8 of the 16 zero-extended bytes.
    let spread: SIMD16<Int32>
    /// Lane k ← the byte after that one (3 bits: a code may straddle two bytes).
    let spreadNext: SIMD16<Int32>
    /// Shift of lane k: (b·k) mod 8.
    let shifts: SIMD16<Int32>

    init(bits: Int) {
        var a = SIMD16<Int32>(), n = a, h = a
        for k in 0..<16 {
            a[k] = Int32(bits * k / 8)
            n[k] = a[k] + 1
            h[k] = Int32(bits * k % 8)
        }
        spread = a; spreadNext = n; shifts = h
    }
}

/// TurboQuant records [count, stride] ([f16 scale][codes]) as 16-dim f32 columns.
struct TurboColumns<W: TurboWidth>: ValueColumns {
    let records: UnsafeRawPointer
    let stride: Int
    /// The centroids repeated to 16 entries (TurboEncoder.lookupTable).
    let table: SIMD16<Float>
    let unpack: TurboUnpack

    @inline(__always) func column(_ j: Int, _ i: Int) -> SIMD16<Float> {
        let r = records + j * stride
        let scale = SIMD16<Float>(repeating: halfToFloat(r.loadUnaligned(as: UInt16.self)))
        return SIMD16<Float>(repeating: -0.0).addingProduct(CodeLookup.lookup16(table, codes16(r + 2, i)), scale)
    }

    /// Lane permute of integer lanes through `vpermps` (bit-exact: no float arithmetic).
    @inline(__always) static func permute(_ x: SIMD16<Int32>, _ index: SIMD16<Int32>) -> SIMD16<Int32> {
        unsafeBitCast(CodeLookup.lookup16(unsafeBitCast(x, to: SIMD16<Float>.self), index), to: SIMD16<Int32>.self)
    }

    /// Codes of dims i..<i+16 (i a multiple of 16) in the low b bits of each lane (higher bits: the next
    /// codes): 16 bytes zero-extended (`vpmovzxbd`), lane k given the byte holding bit b·k (`vpermps`;
    /// for 3 bits also the next byte, as a 16-bit window), shifted right by b·k mod 8 (`vpsrlvd`).
    /// Reads up to 16 − 2b bytes past the record (VectorRecordStorage pads the last one).
    @inline(__always) func codes16(_ packed: UnsafeRawPointer, _ i: Int) -> SIMD16<Int32> {
        let w = Lanes.bytes(packed, i * W.bits / 8)
        if W.bits == 3 {
            return (Self.permute(w, unpack.spread) | (Self.permute(w, unpack.spreadNext) &<< 8)) &>> unpack.shifts
        }
        return Self.permute(w, unpack.spread) &>> unpack.shifts
    }
}
