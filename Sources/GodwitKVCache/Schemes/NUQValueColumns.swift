// Weighted value sums of the KVQuant-style value store (NUQValueStore.swift; KVQuant, arXiv
// 2401.18079) straight from its records, 16 dims at a time in registers, through
// FloatStoreKernels.accumulateColumns. Source: this project.
//
// Record (NUQValueRecord): [scale s: f16][codes: headDim · bits/8, packed LSB-first][outliers × index
// u8][outliers × f16]. Codes are LSB-first in both widths, so the 16 codes of dims i..<i+16 are the
// 16·bits-bit little-endian number at byte i·bits/8 (4-bit: 8 bytes; 3-bit: two 24-bit groups = 6
// bytes), code k at bit bits·k. Lanes 0..<8 shift the low 32 bits right by bits·k, lanes 8..<16 the
// 32 bits from bit 8·bits on by bits·(k − 8) (one vpsrlvd); `CodeLookup.lookup16` keeps the low 4
// bits of each lane (one vpermps), so the 3-bit table repeats its 8 centroids in entries 8..<16 and
// no mask is needed.
//
// Column = centroid · s (one rounded product, as NUQValueStore.decode), then each of the position's
// outliers replaces its lane when it falls in dims i..<i+16 — the decoded row, bitwise. The kernel
// then adds w · column with one fma per term in position order, as VectorOps.addScaled did per
// decoded row, so the sums are bitwise the old decode-and-add path (positions whose weights were all
// zero were skipped there; here they add w·x = 0).

/// Non-generic entry so the column kernel is compiled once for NUQValueColumns.
enum NUQValueKernel {
    /// acc[g·accStride + i] += Σ_j w[g·weightStride + j] · v_j[i]; records: [count, recordBytes], contiguous.
    static func accumulate(weights: UnsafePointer<Float>, weightStride: Int, rows: Int, count: Int, d: Int,
                           acc: UnsafeMutablePointer<Float>, accStride: Int, _ columns: NUQValueColumns) {
        FloatStoreKernels.accumulateColumns(weights: weights, weightStride: weightStride, rows: rows, count: count, d: d,
                                            acc: acc, accStride: accStride, columns)
    }
}

/// NUQ value records [count, recordBytes] (NUQValueRecord) as 16-dim f32 columns.
struct NUQValueColumns: ValueColumns {
    /// The first record.
    let records: UnsafeRawPointer
    let recordBytes: Int
    let bits: Int
    /// Outliers per record, and the byte offsets of their indices [outliers] u8 and values [outliers] f16.
    let outliers: Int
    let indexOffset: Int
    let valueOffset: Int
    /// Centroids [16] (3-bit: the 8 centroids twice).
    let table: SIMD16<Float>
    /// Per lane k: bits · (k mod 8).
    let shifts: SIMD16<UInt32>
    /// Lane numbers 0..<16 (a stored property: a static `let` left a swift_once call in the kernel).
    let iota: SIMD16<Int32>

    init(records: UnsafeRawPointer, record: NUQValueRecord, table: SIMD16<Float>) {
        self.records = records
        recordBytes = record.bytes
        bits = record.bits
        outliers = record.outliers
        indexOffset = record.indexOffset
        valueOffset = record.valueOffset
        self.table = table
        var s = SIMD16<UInt32>()
        for k in 0..<16 { s[k] = UInt32(record.bits * (k % 8)) }
        shifts = s
        var l = SIMD16<Int32>()
        for k in 0..<16 { l[k] = Int32(k) }
        iota = l
    }

    /// The codebook [2^bits] as a lookup16 table: padded by repetition to 16 entries.
    static func table(_ centroids: UnsafePointer<Float>, bits: Int) -> SIMD16<Float> {
        var t = SIMD16<Float>()
        for k in 0..<16 { t[k] = centroids[k % (1 << bits)] }
        return t
    }

    @inline(__always) func column(_ j: Int, _ i: Int) -> SIMD16<Float> {
        let r = records + j * recordBytes
        // Codes of dims i..<i+16: 8 bytes from byte 2 + i·bits/8 (3-bit reads 1–2 bytes past them,
        // inside the record or the store's tail padding; those bits are shifted out).
        let w = r.loadUnaligned(fromByteOffset: 2 + (i >> 4) * 2 * bits, as: UInt64.self)
        let lo = UInt32(truncatingIfNeeded: w), hi = UInt32(truncatingIfNeeded: w >> UInt64(8 * bits))
        let codes = SIMD16<UInt32>(lowHalf: SIMD8(repeating: lo), highHalf: SIMD8(repeating: hi)) &>> shifts
        let c = CodeLookup.lookup16(table, unsafeBitCast(codes, to: SIMD16<Int32>.self))
        let s = SIMD16<Float>(repeating: halfToFloatScalar(r.loadUnaligned(as: UInt16.self)))
        var x = SIMD16<Float>(repeating: -0.0).addingProduct(c, s)
        // Outliers (1 per 100 dims): the first three without a loop, so that their loads and
        // conversions are shared by the columns of one position once inlined (a loop was unrolled
        // by 8 with a remainder, once per column); only the compare and blend depend on i.
        let dims = iota &+ SIMD16<Int32>(repeating: Int32(truncatingIfNeeded: i))
        @inline(__always) func patch(_ o: Int) {
            x = Self.replacing(x, dims, Int32(r.load(fromByteOffset: indexOffset + o, as: UInt8.self)),
                               halfToFloatScalar(r.loadUnaligned(fromByteOffset: valueOffset + 2 * o, as: UInt16.self)))
        }
        if outliers > 0 { patch(0) }
        if outliers > 1 { patch(1) }
        if outliers > 2 { patch(2) }
        var o = 3
        while o < outliers { patch(o); o += 1 }
        return x
    }

    @inline(__always) func halfToFloatScalar(_ h: UInt16) -> Float { HalfConversion.toFloat(h) }

    /// x with the lane whose dim equals `channel` set to v (none when no lane does): a compare
    /// against a broadcast and a masked broadcast, no branch.
    @inline(__always) static func replacing(_ x: SIMD16<Float>, _ dims: SIMD16<Int32>, _ channel: Int32, _ v: Float) -> SIMD16<Float> {
        var r = x
        for k in 0..<16 { r[k] = dims[k] == channel ? v : x[k] }
        return r
    }
}
