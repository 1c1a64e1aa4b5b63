// Activation quantizers for the matrix products, one block at a time.
// Source: ggml-cpu/arch/x86/quants.c `quantize_row_q8_0` / `quantize_row_q8_1` (AVX path) and
// ggml-quants.c `quantize_row_q8_K_ref` (ggml-cpu's `quantize_row_q8_K` on x86 calls it).
// q8_0/q8_1 (AVX): amax = max|x|, d = amax/127, id = 127/amax (0 if amax = 0), q = round-to-
// nearest-even(x·id). This differs from quantize_row_q8_0_ref (roundf, id = 1/d) on ties and in
// the last bit of id; the products must see what llama.cpp's CPU backend sees, so this is the one.
// Rounding uses ggml's magic-number trick (x + 1.5·2^23, read the low mantissa bits), exact round-
// to-nearest-even for |x| ≤ 2^22, and pure integer SIMD afterwards.
// Deviation: q8_K zeroes bsums of an all-zero block (ggml leaves them as they were).

enum ActivationQuantizer {
    static let magic: Float = 12582912  // 1.5 · 2^23

    /// Round to nearest even of 16 lanes with |v| ≤ 2^22, as Int32.
    @inline(__always) static func roundEven(_ v: SIMD16<Float>) -> SIMD16<Int32> {
        let bits = unsafeBitCast(v + SIMD16<Float>(repeating: magic), to: SIMD16<Int32>.self)
        return (bits & 0x007f_ffff) &- 0x0040_0000
    }

    @inline(__always) static func narrow(_ q: SIMD16<Int32>) -> SIMD16<Int8> { Lanes.narrow(q) }

    /// q8_0 / q8_1 block of 32: writes 32 int8 quants at `qs`; returns the unrounded d = amax/127
    /// and Σq. The caller stores d (and s) as f16.
    @inline(__always) static func q8Block(_ x: UnsafePointer<Float>, _ qs: UnsafeMutableRawPointer) -> (d: Float, sum: Int32) {
        let r = UnsafeRawPointer(x)
        let v0 = r.loadUnaligned(fromByteOffset: 0, as: SIMD16<Float>.self)
        let v1 = r.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
        let amax = Float(bitPattern: Lanes.absMaxBits(v0, v1))
        let d = amax / 127
        let id: Float = amax != 0 ? 127 / amax : 0
        let q0 = roundEven(v0 * id), q1 = roundEven(v1 * id)
        qs.storeBytes(of: narrow(q0), toByteOffset: 0, as: SIMD16<Int8>.self)
        qs.storeBytes(of: narrow(q1), toByteOffset: 16, as: SIMD16<Int8>.self)
        return (d, Lanes.sum(q0 &+ q1))
    }

    /// One ggml block_q8_0 [d f16, qs 32 B] or block_q8_1 [d f16, s f16, qs 32 B] at `y` from 32
    /// floats, as ggml-cpu's x86 quantize_row_q8_0/_q8_1 writes it (s = f16(d·Σq) from the unrounded d),
    /// with `q8Block` or, for `reference`, its scalar twin. Returns the stored d as f32 and the block's
    /// sum term: the stored s (q8_1) or d·Σq (q8_0).
    @inline(__always)
    static func storeQ8Block(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, q81: Bool,
                             reference: Bool = false) -> (d: Float, sum: Float) {
        let qs = y + (q81 ? 4 : 2)
        let (d, sum) = reference ? q8BlockReference(x, qs) : q8Block(x, qs)
        let dh = floatToHalf(d)
        y.storeBytes(of: dh, as: UInt16.self)
        let dx = halfToFloat(dh)
        guard q81 else { return (dx, dx * Float(sum)) }
        let s = floatToHalf(d * Float(sum))
        y.storeBytes(of: s, toByteOffset: 2, as: UInt16.self)
        return (dx, halfToFloat(s))
    }

    /// Scalar twin of `q8Block`.
    static func q8BlockReference(_ x: UnsafePointer<Float>, _ qs: UnsafeMutableRawPointer) -> (d: Float, sum: Int32) {
        var amax: Float = 0
        for j in 0..<32 { amax = max(amax, abs(x[j])) }
        let d = amax / 127
        let id: Float = amax != 0 ? 127 / amax : 0
        var sum: Int32 = 0
        for j in 0..<32 {
            let q = QuantizeReference.nearestInt(x[j] * id)   // round half to even, no trap on NaN
            qs.storeBytes(of: Int8(truncatingIfNeeded: q), toByteOffset: j, as: Int8.self)
            sum &+= q
        }
        return (d, sum)
    }

    /// q8_K block of 256 (quantize_row_q8_K_ref): iscale = −127/max (max = the first element of
    /// largest magnitude), q = min(127, round-even(iscale·x)), bsums, d = 1/iscale.
    static func q8KBlock(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer) {
        let L = BlockLayout.Q8_K.self
        let r = UnsafeRawPointer(x)
        var amaxBits: UInt32 = 0
        for i in 0..<8 {
            let v0 = r.loadUnaligned(fromByteOffset: 128 * i, as: SIMD16<Float>.self)
            let v1 = r.loadUnaligned(fromByteOffset: 128 * i + 64, as: SIMD16<Float>.self)
            amaxBits = max(amaxBits, Lanes.absMaxBits(v0, v1))
        }
        if amaxBits == 0 {
            y.initializeMemory(as: UInt8.self, repeating: 0, count: L.bytes)
            return
        }
        var j = 0
        while x[j].bitPattern & 0x7fff_ffff != amaxBits { j += 1 }
        let iscale = -127 / x[j]
        for i in 0..<16 {
            let v = r.loadUnaligned(fromByteOffset: 64 * i, as: SIMD16<Float>.self) * iscale
            var q = roundEven(v)
            let top = SIMD16<Int32>(repeating: 127)
            q = q.replacing(with: top, where: q .> top)
            y.storeBytes(of: narrow(q), toByteOffset: L.qs + 16 * i, as: SIMD16<Int8>.self)
            y.storeBytes(of: Int16(truncatingIfNeeded: Lanes.sum(q)), toByteOffset: L.bsums + 2 * i, as: Int16.self)
        }
        y.storeBytes(of: 1 / iscale, toByteOffset: L.d, as: Float.self)
    }
}
