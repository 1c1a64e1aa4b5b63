// TurboQuant value records as 16-dim f32 columns for FloatStoreKernels' value sums. Source:
// TurboQuantScheme.swift (TurboQuant, arXiv 2504.19874, Algorithm 1: records [f16 scale][codes],
// coordinate i at bit b·i of the codes).
// Column (j, i) = scale_j · centroid[code of dim i + i′], i′ < 16: the 16 codes come from two 32-bit
// loads b bytes apart (8 codes each) and one variable shift (`vpsrlvd`), and one `vpermps`
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

/// TurboQuant records [count, stride] ([f16 scale][codes]) as 16-dim f32 columns.
struct TurboColumns<W: TurboWidth>: ValueColumns {
    let records: UnsafeRawPointer
    let stride: Int
    /// The centroids repeated to 16 entries (TurboEncoder.lookupTable).
    let table: SIMD16<Float>

    @inline(__always) func column(_ j: Int, _ i: Int) -> SIMD16<Float> {
        let r = records + j * stride
        let scale = SIMD16<Float>(repeating: halfToFloat(r.loadUnaligned(as: UInt16.self)))
        return SIMD16<Float>(repeating: -0.0).addingProduct(CodeLookup.lookup16(table, Self.codes16(r + 2, i)), scale)
    }

    /// Codes of dims i..<i+16 (i a multiple of 16) in the low b bits of each lane (higher bits: the next
    /// codes). Reads up to 4 − b bytes past the record (VectorRecordStorage pads the last one).
    @inline(__always) static func codes16(_ packed: UnsafeRawPointer, _ i: Int) -> SIMD16<Int32> {
        let b = W.bits
        let lo = packed.loadUnaligned(fromByteOffset: i * b / 8, as: UInt32.self)
        let hi = packed.loadUnaligned(fromByteOffset: i * b / 8 + b, as: UInt32.self)
        let w = SIMD16<UInt32>(lowHalf: SIMD8(repeating: lo), highHalf: SIMD8(repeating: hi))
        let u = UInt32(b)
        let shifts = SIMD16<UInt32>(0, u, 2 * u, 3 * u, 4 * u, 5 * u, 6 * u, 7 * u, 0, u, 2 * u, 3 * u, 4 * u, 5 * u, 6 * u, 7 * u)
        return unsafeBitCast(w &>> shifts, to: SIMD16<Int32>.self)
    }
}
