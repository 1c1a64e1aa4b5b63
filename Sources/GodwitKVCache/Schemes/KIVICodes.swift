// KIVI's record formats and code packing (arXiv 2402.02750; see KIVIScheme.swift for deviations).
// Codes are packed in 16-channel chunks so one chunk unpacks into one SIMD16<Float>:
//   4-bit chunk, 8 bytes: byte i = code(i) | code(i + 8) << 4
//   2-bit chunk, 4 bytes: byte i = code(i) | code(i + 4) << 2 | code(i + 8) << 4 | code(i + 12) << 6
//   1-bit plane, 2 bytes: bit j of byte i = bit of code(8i + j)
// Other widths are stacked planes, low bits first: 3 = 2-bit chunk (bits 0–1) + 1-bit plane (bit 2);
// 5 = 4 + 1; 6 = 4 + 2; 7 = 4 + 2 + 1; 8 = 4 + 4 (2·b bytes per chunk in every case).
// Asymmetric quantization of a set of values: z = f16(min), s = f16((max − z) / (2^b − 1)),
// code = clamp(round((x − z) / s), 0, 2^b − 1), x ≈ s·code + z (the f16-rounded s and z are the
// ones used to pick the codes).
import GodwitKernels

/// A code width with its 16-channel chunk unpacker.
public protocol KIVIBitWidth {
    static var bits: Int { get }
    /// Bytes per 16-channel chunk (2·bits).
    static var chunkBytes: Int { get }
    /// The 16 codes of the chunk at `p`, as floats.
    static func unpack16(_ p: UnsafeRawPointer) -> SIMD16<Float>
}

public enum KIVI4Bit: KIVIBitWidth {
    public static let bits = 4
    public static let chunkBytes = 8
    @inline(__always) public static func unpack16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        let x = p.loadUnaligned(as: SIMD8<UInt8>.self)
        return KIVICodes.toFloat(SIMD16<UInt8>(lowHalf: x & 15, highHalf: x &>> 4))
    }
}

public enum KIVI2Bit: KIVIBitWidth {
    public static let bits = 2
    public static let chunkBytes = 4
    @inline(__always) public static func unpack16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        let x = p.loadUnaligned(as: SIMD4<UInt8>.self)
        let lo = SIMD8<UInt8>(lowHalf: x & 3, highHalf: (x &>> 2) & 3)
        let hi = SIMD8<UInt8>(lowHalf: (x &>> 4) & 3, highHalf: x &>> 6)
        return KIVICodes.toFloat(SIMD16<UInt8>(lowHalf: lo, highHalf: hi))
    }
}

public enum KIVI3Bit: KIVIBitWidth {
    public static let bits = 3
    public static let chunkBytes = 6
    @inline(__always) public static func unpack16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        KIVI2Bit.unpack16(p) + 4 * KIVICodes.plane1(p + 4)
    }
}

public enum KIVI5Bit: KIVIBitWidth {
    public static let bits = 5
    public static let chunkBytes = 10
    @inline(__always) public static func unpack16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        KIVI4Bit.unpack16(p) + 16 * KIVICodes.plane1(p + 8)
    }
}

public enum KIVI6Bit: KIVIBitWidth {
    public static let bits = 6
    public static let chunkBytes = 12
    @inline(__always) public static func unpack16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        KIVI4Bit.unpack16(p) + 16 * KIVI2Bit.unpack16(p + 8)
    }
}

public enum KIVI7Bit: KIVIBitWidth {
    public static let bits = 7
    public static let chunkBytes = 14
    @inline(__always) public static func unpack16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        KIVI6Bit.unpack16(p) + 64 * KIVICodes.plane1(p + 12)
    }
}

public enum KIVI8Bit: KIVIBitWidth {
    public static let bits = 8
    public static let chunkBytes = 16
    @inline(__always) public static func unpack16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        KIVI4Bit.unpack16(p) + 16 * KIVI4Bit.unpack16(p + 8)
    }
}

/// One key group of one head: [scales f16 × headDim][zeros f16 × headDim][codes], codes in 16-position
/// tiles [groupSize / 16, headDim, 2·bits bytes]: chunk (m, c) packs channel c of the group's positions
/// 16m…16m+15 (lane l = position 16m + l, packed like a 16-channel chunk). groupSize is a multiple of 16.
public struct KIVIKeyGroupLayout: Sendable, Equatable {
    public let headDim: Int
    public let groupSize: Int
    public let bits: Int

    public init(headDim: Int, groupSize: Int, bits: Int) {
        self.headDim = headDim
        self.groupSize = groupSize
        self.bits = bits
    }

    public var scalesOffset: Int { 0 }
    public var zerosOffset: Int { headDim * 2 }
    public var codesOffset: Int { headDim * 4 }
    /// Packed codes per token: headDim · bits / 8 (a tile of 16 tokens: 16 · codeRowBytes).
    public var codeRowBytes: Int { headDim * bits / 8 }
    public var byteSize: Int { codesOffset + groupSize * codeRowBytes }
}

/// One value row (one token of one head): [codes: codeRowBytes][scales f16 × groups][zeros f16 × groups].
public struct KIVIValueRowLayout: Sendable, Equatable {
    public let headDim: Int
    /// Channels per scale/zero pair.
    public let channelGroup: Int
    public let bits: Int

    public init(headDim: Int, channelGroup: Int, bits: Int) {
        self.headDim = headDim
        self.channelGroup = channelGroup
        self.bits = bits
    }

    public var groups: Int { headDim / channelGroup }
    public var codeRowBytes: Int { headDim * bits / 8 }
    public var scalesOffset: Int { codeRowBytes }
    public var zerosOffset: Int { codeRowBytes + groups * 2 }
    public var byteSize: Int { codeRowBytes + groups * 4 }
}

enum KIVICodes {
    @inline(__always) static func toFloat(_ v: SIMD16<UInt8>) -> SIMD16<Float> {
        var r = SIMD16<Float>()
        for i in 0..<16 { r[i] = Float(v[i]) }
        return r
    }

    /// The bit planes of a width, low bits first: (plane width, bit offset in the code, byte offset in the chunk).
    @inline(__always) static func planes(bits: Int) -> [(width: Int, shift: Int, offset: Int)] {
        switch bits {
        case 3: return [(2, 0, 0), (1, 2, 4)]
        case 5: return [(4, 0, 0), (1, 4, 8)]
        case 6: return [(4, 0, 0), (2, 4, 8)]
        case 7: return [(4, 0, 0), (2, 4, 8), (1, 6, 12)]
        case 8: return [(4, 0, 0), (4, 4, 8)]
        default: return [(bits, 0, 0)]
        }
    }

    /// (byte offset in the chunk, shift) of code i (0..<16) inside a plane of width 1, 2 or 4.
    @inline(__always) static func place(_ i: Int, planeWidth w: Int) -> (byte: Int, shift: Int) {
        switch w {
        case 4: return (i % 8, (i / 8) * 4)
        case 2: return (i % 4, (i / 4) * 2)
        default: return (i / 8, i % 8)
        }
    }

    /// The 16 bits of a 1-bit plane as 0/1 floats.
    @inline(__always) static func plane1(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        let w = SIMD16<UInt32>(repeating: UInt32(p.loadUnaligned(as: UInt16.self)))
        let m = SIMD16<UInt32>(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
        return SIMD16<Float>(repeating: 0).replacing(with: 1, where: (w & m) .!= 0)
    }

    /// The code of channel `c` in a packed row (scalar twin of `unpack16`).
    @inline(__always) static func code(_ row: UnsafeRawPointer, channel c: Int, bits: Int) -> Int {
        let chunk = row + (c / 16) * 2 * bits, i = c % 16
        var code = 0
        for (w, shift, offset) in planes(bits: bits) {
            let (b, s) = place(i, planeWidth: w)
            code |= Int((chunk.load(fromByteOffset: offset + b, as: UInt8.self) >> UInt8(s)) & UInt8((1 << w) - 1)) << shift
        }
        return code
    }

    /// Packs codes [count] (count a multiple of 16) into `row`.
    static func pack(_ codes: UnsafePointer<UInt8>, count: Int, bits: Int, into row: UnsafeMutableRawPointer) {
        row.initializeMemory(as: UInt8.self, repeating: 0, count: count * bits / 8)
        let planes = Self.planes(bits: bits)
        for c in 0..<count {
            let chunk = row.assumingMemoryBound(to: UInt8.self) + (c / 16) * 2 * bits
            for (w, shift, offset) in planes {
                let (b, s) = place(c % 16, planeWidth: w)
                chunk[offset + b] |= ((codes[c] >> UInt8(shift)) & UInt8((1 << w) - 1)) << UInt8(s)
            }
        }
    }

    /// Asymmetric parameters of the values x[i·stride], i < count: (f16 scale bits, f16 zero bits).
    @inline(__always)
    static func parameters(_ x: UnsafePointer<Float>, count: Int, stride: Int, bits: Int) -> (scale: UInt16, zero: UInt16) {
        var lo = Float.infinity, hi = -Float.infinity
        for i in 0..<count { let v = x[i * stride]; lo = min(lo, v); hi = max(hi, v) }
        let z = HalfConversion.toHalf(lo)
        let s = HalfConversion.toHalf((hi - HalfConversion.toFloat(z)) / Float((1 << bits) - 1))
        return (s, z)
    }

    /// The code of x under (scale, zero) given as floats.
    @inline(__always) static func encode(_ x: Float, scale: Float, zero: Float, bits: Int) -> UInt8 {
        guard scale > 0 else { return 0 }
        let q = ((x - zero) / scale).rounded()
        return UInt8(max(0, min(Float((1 << bits) - 1), q)))
    }
}

/// Stores with scalar twins of their fast kernels (for tests: identical contracts, plain loops).
public protocol ScalarTwinKeyStore: KeyStore {
    /// Same contract as `scores`, computed by dequantizing each key and a plain scalar dot.
    func scalarScores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                      into out: UnsafeMutablePointer<Float>, outStride: Int)
}

public protocol ScalarTwinValueStore: ValueStore {
    /// Same contract as `accumulate`, computed by dequantizing each value element by element.
    func scalarAccumulate(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                          positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int)
}

extension ScalarTwinKeyStore {
    /// The scalar twin of a store whose prepared query is the f32 query [d] and whose `read` decodes a key
    /// (turbo, tcq): each key decoded by `read`, then a plain sequential dot.
    func scalarScoresFromRead(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                              into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let d = geometry.headDim
        var key = [Float](repeating: 0, count: d)
        for (j, p) in positions.enumerated() {
            key.withUnsafeMutableBufferPointer { read(head: head, positions: p..<p + 1, into: $0.baseAddress!) }
            for g in 0..<queryCount {
                let q = (queries + g * preparedQueryBytes).assumingMemoryBound(to: Float.self)
                var s: Float = 0
                for i in 0..<d { s += q[i] * key[i] }
                out[g * outStride + j] = s
            }
        }
    }
}

extension ScalarTwinValueStore {
    /// The scalar twin of a store whose `read` decodes a value (turbo, tcq): each value decoded by `read`,
    /// then acc += w·v element by element, positions in order.
    func scalarAccumulateFromRead(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                                  positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int) {
        let d = geometry.headDim
        var v = [Float](repeating: 0, count: d)
        for (j, p) in positions.enumerated() {
            v.withUnsafeMutableBufferPointer { read(head: head, positions: p..<p + 1, into: $0.baseAddress!) }
            for g in 0..<queryCount {
                let w = weights[g * weightStride + j]
                for i in 0..<d { acc[g * accStride + i] += w * v[i] }
            }
        }
    }
}
