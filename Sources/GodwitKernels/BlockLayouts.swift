// Byte layouts of the ggml weight and activation blocks this module reads and writes.
// Source: ggml/src/ggml-common.h (`block_q4_0` … `block_q8_K`, with their static_asserts) and the
// dequantize_row_* functions of ggml/src/ggml-quants.c for the meaning of each field.
// Deviations: none; every offset below is the C struct's, little-endian, no padding.
//
// Each format is declared once here; kernels use these constants, and
// `BlockLayoutTests` pins every size to ggml's (as ggml's static_asserts do).
// Notation: `f16` = IEEE half, `bf16` = brain float, `qs`/`ql`/`qh` = packed quants.

import GodwitGGUF

/// Byte offsets and sizes of ggml's blocks. `values` = values per block, `bytes` = bytes per block.
public enum BlockLayout {
    /// Super-block size of the k-quants (ggml's QK_K).
    public static let kBlockValues = 256

    /// f32: one `Float` per value.
    public enum F32 { public static let values = 1, bytes = 4 }

    /// f16: one IEEE half per value.
    public enum F16 { public static let values = 1, bytes = 2 }

    /// bf16: one brain float per value (the top 16 bits of a `Float`).
    public enum BF16 { public static let values = 1, bytes = 2 }

    /// q8_0: `[d: f16][qs: 32 × int8]`; x[j] = d·qs[j].
    public enum Q8_0 { public static let values = 32, bytes = 34, d = 0, qs = 2 }

    /// q8_1: `[d: f16][s: f16][qs: 32 × int8]`; x[j] = d·qs[j], s = d·Σqs (rounded to f16).
    public enum Q8_1 { public static let values = 32, bytes = 36, d = 0, s = 2, qs = 4 }

    /// q4_0: `[d: f16][qs: 16 bytes]`; low nibble of qs[j] = value j, high nibble = value j+16;
    /// x = d·(q − 8).
    public enum Q4_0 { public static let values = 32, bytes = 18, d = 0, qs = 2 }

    /// q4_1: `[d: f16][m: f16][qs: 16 bytes]`; low nibble of qs[j] = value j, high = value j+16;
    /// x = d·q + m.
    public enum Q4_1 { public static let values = 32, bytes = 20, d = 0, m = 2, qs = 4 }

    /// q5_0: `[d: f16][qh: 4 bytes = UInt32 LE][qs: 16 bytes]`; value j (j < 16) = low nibble of
    /// qs[j] | bit j of qh << 4, value j+16 = high nibble of qs[j] | bit j+16 of qh << 4; x = d·(q − 16).
    public enum Q5_0 { public static let values = 32, bytes = 22, d = 0, qh = 2, qs = 6 }

    /// q5_1: `[d: f16][m: f16][qh: 4 bytes][qs: 16 bytes]`; quants as q5_0; x = d·q + m.
    public enum Q5_1 { public static let values = 32, bytes = 24, d = 0, m = 2, qh = 4, qs = 8 }

    /// iq4_nl: `[d: f16][qs: 16 bytes]`; nibbles as q4_0, each indexing `IQ4NL.values`; x = d·values[q].
    public enum IQ4_NL { public static let values = 32, bytes = 18, d = 0, qs = 2 }

    /// q4_K (256 values = 8 sub-blocks of 32): `[d: f16][dmin: f16][scales: 12 bytes][qs: 128 bytes]`.
    /// Sub-block j has a 6-bit scale sc_j and min m_j packed in `scales` (see `KQuantScales`);
    /// qs[32i + l] holds value 64i + l (low nibble, sub-block 2i) and 64i + 32 + l (high nibble,
    /// sub-block 2i+1); x = d·sc_j·q − dmin·m_j.
    public enum Q4_K { public static let values = 256, bytes = 144, d = 0, dmin = 2, scales = 4, qs = 16 }

    /// q5_K: `[d: f16][dmin: f16][scales: 12 bytes][qh: 32 bytes][qs: 128 bytes]`; as q4_K, plus
    /// bit j of qh[l] is the fifth bit of the value at position 32j + l; x = d·sc_j·q − dmin·m_j.
    public enum Q5_K { public static let values = 256, bytes = 176, d = 0, dmin = 2, scales = 4, qh = 16, qs = 48 }

    /// q6_K (256 values = 16 sub-blocks of 16): `[ql: 128 bytes][qh: 64 bytes][scales: 16 × int8][d: f16]`.
    /// For half n (0, 1), l < 32 and group g < 4, the value at 128n + 32g + l is
    /// (nibble g/2 of ql[64n + 32(g%2) + l]) | (bits 2g..2g+1 of qh[32n + l]) << 4, minus 32,
    /// with scale scales[8n + 2g + l/16]; x = d·scale·(q − 32).
    public enum Q6_K { public static let values = 256, bytes = 210, ql = 0, qh = 128, scales = 192, d = 208 }

    /// q8_K (activations of k-quant weights): `[d: f32][qs: 256 × int8][bsums: 16 × int16]`;
    /// x = d·qs[j]; bsums[i] = Σ qs[16i ..< 16i+16].
    public enum Q8_K { public static let values = 256, bytes = 292, d = 0, qs = 4, bsums = 260 }

    /// Values and bytes per block of `type`, or nil when this module has no layout for it.
    public static func geometry(_ type: GGMLType) -> (values: Int, bytes: Int)? {
        switch type {
        case .f32: (F32.values, F32.bytes)
        case .f16: (F16.values, F16.bytes)
        case .bf16: (BF16.values, BF16.bytes)
        case .q8_0: (Q8_0.values, Q8_0.bytes)
        case .q8_1: (Q8_1.values, Q8_1.bytes)
        case .q4_0: (Q4_0.values, Q4_0.bytes)
        case .q4_1: (Q4_1.values, Q4_1.bytes)
        case .q5_0: (Q5_0.values, Q5_0.bytes)
        case .q5_1: (Q5_1.values, Q5_1.bytes)
        case .iq4_nl: (IQ4_NL.values, IQ4_NL.bytes)
        case .q4_K: (Q4_K.values, Q4_K.bytes)
        case .q5_K: (Q5_K.values, Q5_K.bytes)
        case .q6_K: (Q6_K.values, Q6_K.bytes)
        case .q8_K: (Q8_K.values, Q8_K.bytes)
        default: nil
        }
    }
}

/// The 16 non-linear levels of iq4_nl (ggml-common.h `kvalues_iq4nl`).
public enum IQ4NL {
    public static let values: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

    /// The level of nibble `q` (0..<16), without array bounds checks.
    @inlinable @inline(__always)
    public static func level(_ q: UInt8) -> Int32 {
        // A switch-free table in a 128-bit constant: byte q of `packed` is values[q] (two's complement).
        let lo: UInt64 = 0xF6EA_DDCF_BFAD_9881, hi: UInt64 = 0x7159_4535_2619_0D01
        let word = q < 8 ? lo : hi
        return Int32(Int8(truncatingIfNeeded: word >> (UInt64(q & 7) * 8)))
    }
}

/// Scales and mins of q4_K / q5_K: 8 six-bit scales and 8 six-bit mins in 12 bytes
/// (ggml-quants.c `get_scale_min_k4`): for j < 4, sc = b[j] & 63, m = b[j+4] & 63; for j ≥ 4,
/// sc = (b[j+4] & 15) | (b[j-4] >> 6) << 4, m = (b[j+4] >> 4) | (b[j] >> 6) << 4.
public enum KQuantScales {
    /// Scale and min of sub-block `j` (0..<8) from the 12 packed bytes at `p`.
    @inlinable @inline(__always)
    public static func scaleMin(_ j: Int, _ p: UnsafeRawPointer) -> (scale: UInt8, min: UInt8) {
        let b = p.assumingMemoryBound(to: UInt8.self)
        if j < 4 { return (b[j] & 63, b[j + 4] & 63) }
        return ((b[j + 4] & 0xF) | ((b[j - 4] >> 6) << 4), (b[j + 4] >> 4) | ((b[j] >> 6) << 4))
    }

    /// All eight scales (low 8 bytes) and mins (high 8 bytes), as ggml's `utmp` shuffle produces them.
    @inlinable @inline(__always)
    public static func unpack(_ p: UnsafeRawPointer) -> (scales: SIMD8<UInt8>, mins: SIMD8<UInt8>) {
        let u0 = p.loadUnaligned(fromByteOffset: 0, as: UInt32.self)
        let u1 = p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)
        let u2 = p.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        let m1: UInt32 = 0x3f3f_3f3f, m2: UInt32 = 0x0f0f_0f0f, m3: UInt32 = 0x0303_0303
        let s0 = u0 & m1
        let s1 = (u2 & m2) | (((u0 >> 6) & m3) << 4)
        let n0 = u1 & m1
        let n1 = ((u2 >> 4) & m2) | (((u1 >> 6) & m3) << 4)
        let sc = SIMD2<UInt32>(s0, s1), mn = SIMD2<UInt32>(n0, n1)
        return (unsafeBitCast(sc, to: SIMD8<UInt8>.self), unsafeBitCast(mn, to: SIMD8<UInt8>.self))
    }
}
