// Shared helpers for the kernel tests: a seeded generator, Gaussian data and random ggml blocks.
import Foundation
import GodwitGGUF
import GodwitKernels

/// SplitMix64: deterministic test data.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension SeededGenerator {
    /// A standard normal sample (Box–Muller).
    mutating func gaussian() -> Float {
        let u = Float.random(in: Float.ulpOfOne..<1, using: &self), v = Float.random(in: 0..<1, using: &self)
        return (-2 * log(u)).squareRoot() * cos(2 * Float.pi * v)
    }

    mutating func gaussians(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in gaussian() * scale } }

    /// `count` values of `type` as random ggml blocks: random quant bytes, finite f16 scales of
    /// realistic size (so products stay well inside Float range).
    mutating func blocks(_ type: GGMLType, count: Int) -> [UInt8] {
        var b = (0..<type.rowBytes(count)!).map { _ in UInt8.random(in: 0...255, using: &self) }
        func half(_ off: Int, _ v: Float) {
            let h = Float16(v).bitPattern
            b[off] = UInt8(h & 0xFF); b[off + 1] = UInt8(h >> 8)
        }
        let ts = type.typeSize
        for i in 0..<count / type.blockSize {
            let o = i * ts
            switch type {
            case .f32:
                let v = Float.random(in: -1...1, using: &self).bitPattern
                for k in 0..<4 { b[o + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
            case .f16: half(o, Float.random(in: -1...1, using: &self))
            case .bf16:
                let v = Float.random(in: -1...1, using: &self).bitPattern >> 16
                b[o] = UInt8(v & 0xFF); b[o + 1] = UInt8(v >> 8)
            case .q4_1, .q5_1:
                half(o, Float.random(in: 0.001...0.05, using: &self)); half(o + 2, Float.random(in: -0.5...0, using: &self))
            case .q4_K, .q5_K:
                half(o, Float.random(in: 0.0005...0.005, using: &self)); half(o + 2, Float.random(in: 0...0.005, using: &self))
            case .q6_K: half(o + BlockLayout.Q6_K.d, Float.random(in: -0.005...0.005, using: &self))
            case .q8_K:
                let d = Float.random(in: 0.001...0.01, using: &self).bitPattern
                for k in 0..<4 { b[o + k] = UInt8(truncatingIfNeeded: d >> (8 * UInt32(k))) }
            default: half(o, Float.random(in: -0.05...0.05, using: &self))
            }
        }
        return b
    }
}

/// Quantizes with the reference quantizer into a fresh byte array.
func referenceBytes(_ type: GGMLType, _ x: [Float]) throws -> [UInt8] {
    var q = [UInt8](repeating: 0, count: type.rowBytes(x.count)!)
    try x.withUnsafeBufferPointer { xp in
        try q.withUnsafeMutableBytes { try quantizeRowReference(type: type, src: xp.baseAddress!, dst: $0.baseAddress!, count: x.count) }
    }
    return q
}

/// Decodes with the reference dequantizer.
func referenceFloats(_ type: GGMLType, _ q: [UInt8], count: Int) throws -> [Float] {
    var y = [Float](repeating: 0, count: count)
    try q.withUnsafeBytes { qp in
        try y.withUnsafeMutableBufferPointer { try dequantizeRowReference(type: type, src: qp.baseAddress!, dst: $0.baseAddress!, count: count) }
    }
    return y
}

/// Little-endian UInt16 at `offset`.
func u16(_ b: [UInt8], _ offset: Int) -> UInt16 { UInt16(b[offset]) | UInt16(b[offset + 1]) << 8 }
