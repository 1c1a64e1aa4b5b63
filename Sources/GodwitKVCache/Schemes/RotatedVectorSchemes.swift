// What the randomly rotated per-vector schemes share — turbo{b} (TurboQuantScheme.swift) and tcq{b}
// (TCQScheme.swift): one record [f16 scale][b·d bits] per head vector, b ∈ {2, 3, 4}, of the vector
// rotated by R = H·D (random signs with the scheme's seed, then Walsh–Hadamard; SignedHadamardRotation),
// which needs a power-of-two head dim. Source: TurboQuant, arXiv 2504.19874 (rotation + per-vector norm).
enum RotatedVectorSchemes {
    /// bpv = b + 16/d: every byte of the record.
    static func bitsPerValue(headDim: Int, bits: Int) -> Double {
        Double(TurboRecord.bytes(headDim: headDim, bits: bits) * 8) / Double(headDim)
    }

    static func unsupportedReason(bits: Int, headDim: Int) -> String? {
        guard [2, 3, 4].contains(bits) else { return "only 2, 3 and 4 bits are implemented" }
        return headDim >= 16 && headDim & (headDim - 1) == 0
            ? nil : "the random Hadamard rotation needs a power-of-two head dim ≥ 16"
    }

    /// The scheme's own rotation (always applied: its codebook assumes it; `--no-kv-rotation`, which governs
    /// llama.cpp's parity rotation, does not turn it off). nil where the scheme is unsupported.
    static func rotation(bits: Int, headDim: Int, seed: UInt64) -> (any KVRotation)? {
        guard unsupportedReason(bits: bits, headDim: headDim) == nil else { return nil }
        return SignedHadamardRotation(block: headDim, dim: headDim, seed: seed)
    }

    /// The store geometry, or the typed error naming the scheme where it is unsupported.
    static func geometry(_ context: KVStoreContext, scheme name: String, bits: Int) throws(KVCacheError) -> KVStoreGeometry {
        let g = context.geometry
        if let why = unsupportedReason(bits: bits, headDim: g.headDim) {
            throw .unsupportedHeadDim(scheme: name, role: context.role, headDim: g.headDim, reason: why)
        }
        return g
    }
}

/// Little-endian bit strings of short codes (turbo codes, trellis bits): a code of ≤ 8 bits may straddle two bytes.
enum PackedBits {
    /// ORs the low `bits` bits of `value` into `packed` at bit offset `bit` (the bits there must be zero).
    @inline(__always)
    static func put(_ value: Int, bits: Int, at bit: Int, into packed: UnsafeMutablePointer<UInt8>) {
        packed[bit >> 3] |= UInt8(truncatingIfNeeded: value << (bit & 7))
        if (bit & 7) + bits > 8 { packed[(bit >> 3) + 1] |= UInt8(truncatingIfNeeded: value >> (8 - (bit & 7))) }
    }
}
