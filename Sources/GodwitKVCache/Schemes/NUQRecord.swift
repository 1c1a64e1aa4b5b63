// Byte layouts of one encoded head vector in the KVQuant-style stores (NUQScheme.swift), declared
// once here; sizes are pinned by NUQTests. Codes are packed little-endian: 4-bit codes two per
// byte (channel 2i in the low nibble), 3-bit codes eight per three bytes (channel 8g + i at bits
// 3i … 3i + 2 of the 24-bit group). Outliers are (channel index UInt8, f16 value) pairs, so head
// dims up to 256 are supported.
import GodwitKernels

/// Layout of one key vector: [codes: headDim·bits/8][count: UInt8][capacity × index UInt8][capacity × f16].
/// The count says how many of the `capacity` outlier slots are used; `bytesHeld` counts only those.
public struct NUQKeyRecord: Equatable, Sendable {
    public let headDim: Int
    public let bits: Int
    /// Outlier slots per vector (fixed so the store never allocates).
    public let outlierCapacity: Int

    public init(headDim: Int, bits: Int) {
        self.headDim = headDim
        self.bits = bits
        outlierCapacity = Self.capacity(headDim: headDim)
    }

    /// Outlier slots: 4 per 64 channels (calibrated thresholds keep ~1% of values, 0.64 per 64).
    static func capacity(headDim: Int) -> Int { max(4, headDim / 16) }

    public var codeBytes: Int { headDim * bits / 8 }
    var countOffset: Int { codeBytes }
    var indexOffset: Int { codeBytes + 1 }
    var valueOffset: Int { indexOffset + outlierCapacity }
    /// Bytes allocated per vector.
    public var bytes: Int { valueOffset + 2 * outlierCapacity }
    /// Bytes a vector holding `outliers` outliers occupies (codes, count, used slots).
    public func heldBytes(outliers: Int) -> Int { codeBytes + 1 + 3 * outliers }
}

/// Layout of one value vector: [scale: f16][codes: headDim·bits/8][outliers × index UInt8][outliers × f16].
/// Every vector keeps exactly `outliers` = ⌈1% · headDim⌉ outliers (its largest magnitudes), so no count.
public struct NUQValueRecord: Equatable, Sendable {
    public let headDim: Int
    public let bits: Int
    public let outliers: Int

    public init(headDim: Int, bits: Int) {
        self.headDim = headDim
        self.bits = bits
        outliers = Self.outlierCount(headDim: headDim)
    }

    static func outlierCount(headDim: Int) -> Int { (headDim + 99) / 100 }

    var codeOffset: Int { 2 }
    public var codeBytes: Int { headDim * bits / 8 }
    var indexOffset: Int { 2 + codeBytes }
    var valueOffset: Int { indexOffset + outliers }
    public var bytes: Int { valueOffset + 2 * outliers }
}

/// Packing and unpacking of 3- and 4-bit codes.
enum NUQCodes {
    /// Writes `codes` [n] (each < 2^bits) packed into `dst` (n·bits/8 bytes; n a multiple of 8).
    static func pack(_ codes: UnsafePointer<UInt8>, count n: Int, bits: Int, into dst: UnsafeMutableRawPointer) {
        let out = dst.assumingMemoryBound(to: UInt8.self)
        if bits == 4 {
            for i in 0..<n / 2 { out[i] = codes[2 * i] | (codes[2 * i + 1] << 4) }
        } else {
            for g in 0..<n / 8 {
                var w: UInt32 = 0
                for i in 0..<8 { w |= UInt32(codes[8 * g + i]) << UInt32(3 * i) }
                out[3 * g] = UInt8(truncatingIfNeeded: w)
                out[3 * g + 1] = UInt8(truncatingIfNeeded: w >> 8)
                out[3 * g + 2] = UInt8(truncatingIfNeeded: w >> 16)
            }
        }
    }

    /// Code of channel `i` (scalar twin of `load16`).
    @inline(__always) static func code(_ src: UnsafeRawPointer, _ i: Int, bits: Int) -> Int {
        let p = src.assumingMemoryBound(to: UInt8.self)
        if bits == 4 { return Int((p[i >> 1] >> UInt8((i & 1) * 4)) & 15) }
        let g = i >> 3, s = (i & 7) * 3
        let w = UInt32(p[3 * g]) | UInt32(p[3 * g + 1]) << 8 | UInt32(p[3 * g + 2]) << 16
        return Int((w >> UInt32(s)) & 7)
    }

    /// Decodes channels c0 ..< c0+16 through the codebook (c0 a multiple of 16). codebook: one
    /// shared [2^bits] (stride 0) or one per channel [channels, 2^bits] (stride 2^bits).
    @inline(__always) static func load16(_ src: UnsafeRawPointer, _ c0: Int, bits: Int,
                                         codebook shared: UnsafePointer<Float>, stride: Int = 0) -> SIMD16<Float> {
        let cb = shared + c0 * stride
        var r = SIMD16<Float>()
        if bits == 4 {
            let w = src.loadUnaligned(fromByteOffset: c0 >> 1, as: UInt64.self)
            for i in 0..<16 { r[i] = cb[i * stride + Int(truncatingIfNeeded: (w >> UInt64(4 * i)) & 15)] }
        } else {
            // 16 channels = 6 bytes; read as two 24-bit groups.
            let p = src + (c0 >> 3) * 3
            let lo = UInt32(p.load(fromByteOffset: 0, as: UInt8.self)) | UInt32(p.load(fromByteOffset: 1, as: UInt8.self)) << 8
                | UInt32(p.load(fromByteOffset: 2, as: UInt8.self)) << 16
            let hi = UInt32(p.load(fromByteOffset: 3, as: UInt8.self)) | UInt32(p.load(fromByteOffset: 4, as: UInt8.self)) << 8
                | UInt32(p.load(fromByteOffset: 5, as: UInt8.self)) << 16
            for i in 0..<8 { r[i] = cb[i * stride + Int(truncatingIfNeeded: (lo >> UInt32(3 * i)) & 7)] }
            for i in 0..<8 { r[8 + i] = cb[(8 + i) * stride + Int(truncatingIfNeeded: (hi >> UInt32(3 * i)) & 7)] }
        }
        return r
    }

    /// Index of the nearest centroid given the 2^bits − 1 decision boundaries (ascending).
    @inline(__always) static func encode(_ x: Float, boundaries: UnsafePointer<Float>, count: Int) -> UInt8 {
        var c: UInt8 = 0
        for i in 0..<count where x > boundaries[i] { c &+= 1 }
        return c
    }
}
