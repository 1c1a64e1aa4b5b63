// Per-format block decoders the product kernels are generic over (specialized per format).
// Source: ggml-quants.c dequantize_row_* (field meaning) and ggml-cpu/quants.c vec_dot_*_generic
// (the integer dot each format's product uses). Layouts: BlockLayouts.swift.
//
// 32-value formats expose non-negative "biased" quants q (a zero-extended operand makes the int
// products `vpmaddwd`/`vpdpwssd`, see SIMDLanes.swift) with value = d·(q − bias) [+ m].
// k-quant formats unpack a 256-value super-block with its sub-block scales folded into the values.

/// A weight format with blocks of 32 values multiplied against q8_0 / q8_1 activations.
protocol Block32Format {
    /// Bytes per block.
    static var bytes: Int { get }
    /// value = d·(q − bias) (+ m when hasMin).
    static var bias: Int32 { get }
    /// Whether the block has a min m (q4_1, q5_1: activations are q8_1 with s = d·Σq).
    static var hasMin: Bool { get }
    /// Quants q of values 0..<16 and 16..<32, each in 0..<256.
    static func quants(_ p: UnsafeRawPointer) -> (SIMD16<Int32>, SIMD16<Int32>)
    static func scale(_ p: UnsafeRawPointer) -> Float
    /// m of a block with a min; 0 otherwise.
    static func minimum(_ p: UnsafeRawPointer) -> Float
}

extension Block32Format {
    @inline(__always) static func half(_ p: UnsafeRawPointer, _ off: Int) -> Float {
        halfToFloat(p.loadUnaligned(fromByteOffset: off, as: UInt16.self))
    }
    @inline(__always) static func minimum(_ p: UnsafeRawPointer) -> Float { 0 }
}

/// q4_0: q = nibble, bias 8.
enum Q4_0Format: Block32Format {
    static let bytes = BlockLayout.Q4_0.bytes, bias: Int32 = 8, hasMin = false
    @inline(__always) static func quants(_ p: UnsafeRawPointer) -> (SIMD16<Int32>, SIMD16<Int32>) {
        let q = Lanes.bytes(p, BlockLayout.Q4_0.qs)
        return (q & 15, q &>> 4)
    }
    @inline(__always) static func scale(_ p: UnsafeRawPointer) -> Float { half(p, BlockLayout.Q4_0.d) }
}

/// q4_1: q = nibble, value = d·q + m.
enum Q4_1Format: Block32Format {
    static let bytes = BlockLayout.Q4_1.bytes, bias: Int32 = 0, hasMin = true
    @inline(__always) static func quants(_ p: UnsafeRawPointer) -> (SIMD16<Int32>, SIMD16<Int32>) {
        let q = Lanes.bytes(p, BlockLayout.Q4_1.qs)
        return (q & 15, q &>> 4)
    }
    @inline(__always) static func scale(_ p: UnsafeRawPointer) -> Float { half(p, BlockLayout.Q4_1.d) }
    @inline(__always) static func minimum(_ p: UnsafeRawPointer) -> Float { half(p, BlockLayout.Q4_1.m) }
}

/// q5_0: 5-bit q, bias 16.
enum Q5_0Format: Block32Format {
    static let bytes = BlockLayout.Q5_0.bytes, bias: Int32 = 16, hasMin = false
    @inline(__always) static func quants(_ p: UnsafeRawPointer) -> (SIMD16<Int32>, SIMD16<Int32>) {
        Dequantize.q5(p, qh: BlockLayout.Q5_0.qh, qs: BlockLayout.Q5_0.qs)
    }
    @inline(__always) static func scale(_ p: UnsafeRawPointer) -> Float { half(p, BlockLayout.Q5_0.d) }
}

/// q5_1: 5-bit q, value = d·q + m.
enum Q5_1Format: Block32Format {
    static let bytes = BlockLayout.Q5_1.bytes, bias: Int32 = 0, hasMin = true
    @inline(__always) static func quants(_ p: UnsafeRawPointer) -> (SIMD16<Int32>, SIMD16<Int32>) {
        Dequantize.q5(p, qh: BlockLayout.Q5_1.qh, qs: BlockLayout.Q5_1.qs)
    }
    @inline(__always) static func scale(_ p: UnsafeRawPointer) -> Float { half(p, BlockLayout.Q5_1.d) }
    @inline(__always) static func minimum(_ p: UnsafeRawPointer) -> Float { half(p, BlockLayout.Q5_1.m) }
}

/// q8_0: q = int8 + 128 (flip the sign bit), bias 128.
enum Q8_0Format: Block32Format {
    static let bytes = BlockLayout.Q8_0.bytes, bias: Int32 = 128, hasMin = false
    @inline(__always) static func quants(_ p: UnsafeRawPointer) -> (SIMD16<Int32>, SIMD16<Int32>) {
        (Lanes.bytes(p, BlockLayout.Q8_0.qs) ^ 128, Lanes.bytes(p, BlockLayout.Q8_0.qs + 16) ^ 128)
    }
    @inline(__always) static func scale(_ p: UnsafeRawPointer) -> Float { half(p, BlockLayout.Q8_0.d) }
}

/// iq4_nl: q = level[nibble] + 128, bias 128 (levels from a register table, SIMDLanes.swift).
enum IQ4NLFormat: Block32Format {
    static let bytes = BlockLayout.IQ4_NL.bytes, bias: Int32 = 128, hasMin = false
    @inline(__always) static func quants(_ p: UnsafeRawPointer) -> (SIMD16<Int32>, SIMD16<Int32>) {
        let q = Lanes.bytes(p, BlockLayout.IQ4_NL.qs)
        return (Lanes.iq4nlBiasedLevels(q & 15), Lanes.iq4nlBiasedLevels(q &>> 4))
    }
    @inline(__always) static func scale(_ p: UnsafeRawPointer) -> Float { half(p, BlockLayout.IQ4_NL.d) }
}

/// A k-quant format (256-value super-blocks, q8_K activations) for the GEMM: `unpack` writes the 256
/// values with sub-block scales folded in (value·scale, as Int32, |v| < 2^15) and returns their sum.
protocol KQuantFormat {
    static var bytes: Int { get }
    /// Whether sub-blocks of 32 have mins (q4_K, q5_K): x = d·(sc·q) − dmin·m.
    static var hasMins: Bool { get }
    static func unpack(_ p: UnsafeRawPointer, into w: UnsafeMutablePointer<Int32>) -> Int32
    /// d and dmin (0 without mins).
    static func scales(_ p: UnsafeRawPointer) -> (d: Float, dmin: Float)
    /// The 8 sub-block mins (hasMins only).
    static func mins(_ p: UnsafeRawPointer) -> SIMD8<UInt8>
}

extension KQuantFormat {
    @inline(__always) static func store(_ v: SIMD16<Int32>, _ w: UnsafeMutablePointer<Int32>, _ i: Int) {
        UnsafeMutableRawPointer(w + i).storeBytes(of: v, as: SIMD16<Int32>.self)
    }
}

/// q4_K: value = sc_j·q (0..945), mins m_j.
enum Q4KFormat: KQuantFormat {
    static let bytes = BlockLayout.Q4_K.bytes, hasMins = true
    @inline(__always) static func unpack(_ p: UnsafeRawPointer, into w: UnsafeMutablePointer<Int32>) -> Int32 {
        let L = BlockLayout.Q4_K.self
        let sc = KQuantScales.unpack(p + L.scales).scales
        var sum = SIMD16<Int32>()
        for i in 0..<4 {
            let s0 = Int32(sc[2 * i]), s1 = Int32(sc[2 * i + 1])
            for h in 0..<2 {
                let q = Lanes.bytes(p, L.qs + 32 * i + 16 * h)
                let a = (q & 15) &* s0, b = (q &>> 4) &* s1
                store(a, w, 64 * i + 16 * h); store(b, w, 64 * i + 32 + 16 * h)
                sum &+= a &+ b
            }
        }
        return Lanes.sum(sum)
    }
    @inline(__always) static func scales(_ p: UnsafeRawPointer) -> (d: Float, dmin: Float) {
        (Dequantize.half(p, BlockLayout.Q4_K.d), Dequantize.half(p, BlockLayout.Q4_K.dmin))
    }
    @inline(__always) static func mins(_ p: UnsafeRawPointer) -> SIMD8<UInt8> { KQuantScales.unpack(p + BlockLayout.Q4_K.scales).mins }
}

/// q5_K: value = sc_j·q (0..1953), mins m_j.
enum Q5KFormat: KQuantFormat {
    static let bytes = BlockLayout.Q5_K.bytes, hasMins = true
    @inline(__always) static func unpack(_ p: UnsafeRawPointer, into w: UnsafeMutablePointer<Int32>) -> Int32 {
        let L = BlockLayout.Q5_K.self
        let sc = KQuantScales.unpack(p + L.scales).scales
        var sum = SIMD16<Int32>()
        for i in 0..<4 {
            let s0 = Int32(sc[2 * i]), s1 = Int32(sc[2 * i + 1])
            for h in 0..<2 {
                let q = Lanes.bytes(p, L.qs + 32 * i + 16 * h), qh = Lanes.bytes(p, L.qh + 16 * h)
                let a = ((q & 15) | (((qh &>> Int32(2 * i)) & 1) &<< 4)) &* s0
                let b = ((q &>> 4) | (((qh &>> Int32(2 * i + 1)) & 1) &<< 4)) &* s1
                store(a, w, 64 * i + 16 * h); store(b, w, 64 * i + 32 + 16 * h)
                sum &+= a &+ b
            }
        }
        return Lanes.sum(sum)
    }
    @inline(__always) static func scales(_ p: UnsafeRawPointer) -> (d: Float, dmin: Float) {
        (Dequantize.half(p, BlockLayout.Q5_K.d), Dequantize.half(p, BlockLayout.Q5_K.dmin))
    }
    @inline(__always) static func mins(_ p: UnsafeRawPointer) -> SIMD8<UInt8> { KQuantScales.unpack(p + BlockLayout.Q5_K.scales).mins }
}

/// q6_K: value = sc·(q − 32) (|v| ≤ 4096), no mins.
enum Q6KFormat: KQuantFormat {
    static let bytes = BlockLayout.Q6_K.bytes, hasMins = false
    @inline(__always) static func unpack(_ p: UnsafeRawPointer, into w: UnsafeMutablePointer<Int32>) -> Int32 {
        let L = BlockLayout.Q6_K.self
        var sum = SIMD16<Int32>()
        for n in 0..<2 {
            for h in 0..<2 {
                let ql0 = Lanes.bytes(p, L.ql + 64 * n + 16 * h), ql1 = Lanes.bytes(p, L.ql + 64 * n + 32 + 16 * h)
                let qh = Lanes.bytes(p, L.qh + 32 * n + 16 * h)
                @inline(__always) func emit(_ q: SIMD16<Int32>, _ g: Int) {
                    let s = Int32(p.load(fromByteOffset: L.scales + 8 * n + 2 * g + h, as: Int8.self))
                    let v = (q &- 32) &* s
                    store(v, w, 128 * n + 32 * g + 16 * h)
                    sum &+= v
                }
                emit((ql0 & 15) | ((qh & 3) &<< 4), 0)
                emit((ql1 & 15) | (((qh &>> 2) & 3) &<< 4), 1)
                emit((ql0 &>> 4) | (((qh &>> 4) & 3) &<< 4), 2)
                emit((ql1 &>> 4) | (((qh &>> 6) & 3) &<< 4), 3)
            }
        }
        return Lanes.sum(sum)
    }
    @inline(__always) static func scales(_ p: UnsafeRawPointer) -> (d: Float, dmin: Float) {
        (Dequantize.half(p, BlockLayout.Q6_K.d), 0)
    }
    @inline(__always) static func mins(_ p: UnsafeRawPointer) -> SIMD8<UInt8> { SIMD8() }
}
