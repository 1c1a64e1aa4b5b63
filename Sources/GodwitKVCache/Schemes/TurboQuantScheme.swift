// TurboQuant cache schemes `turbo2`, `turbo3`, `turbo4` (the MSE-optimal variant).
// Source: Zandieh, Daliri, Hadian, Mirrokni, "TurboQuant: Online Vector Quantization with
// Near-optimal Distortion Rate", arXiv 2504.19874, Algorithm 1 (TurboQuant_mse).
// Per head vector x: store ‖x‖ (f16; corrected, see deviations); rotate u = x/‖x‖ by a fixed random orthogonal matrix Π; quantize
// every coordinate of Πu with the b-bit Lloyd–Max codebook of the coordinate density of a random
// unit vector (TurboCodebook.swift); bit-pack the codes. Reconstruction: scale · Πᵀ c[codes].
// Deviations:
// - Π is not a dense random rotation but R = H·D: random ±1 signs D (SplitMix64, fixed seed) then the
//   normalized Walsh–Hadamard transform H (SignedHadamardRotation, O(d log d)), as in QuaRot /
//   PolarQuant-style implementations; it needs a power-of-two head dim (other dims are refused).
//   Π is applied by the cache through the `rotation(role:…)` hook (K and queries; V and, inversely,
//   the attention output), so the store works in the rotated domain and never applies Πᵀ.
//   It replaces llama.cpp's parity Hadamard for this role (one rotation per role, so they cannot cancel).
// - The QJL residual stage of TurboQuant_prod (unbiased inner products) is not implemented.
// - The stored f16 scale (saturating at 65504; relative error ≤ 2⁻¹¹) is a corrected norm, not ‖x‖
//   (TurboScale): ‖x‖/⟨u, Q(u)⟩, so that ⟨x̂, x⟩ = ‖x‖² (the norm correction of TurboQuant
//   implementations; removes the (1 − MSE) shrinkage of scores and of the attention output).
//   bpv = b + 16/headDim.
// Scores: score = q · (‖k‖ · centroid[codes]), the codes of 16 coordinates unpacked with one
// variable shift and looked up with compare + masked-broadcast chains into a one-row stack
// buffer that the G query heads sharing the KV head reuse (no float copy of the cache is kept).
// Values: Σ_j w_j·‖v_j‖·centroid[code] in the rotated domain, decoded the same way.
// Codes: coordinate i at bit b·i of the packed area (little-endian: 4-bit = 2 per byte, low nibble
// first; 3-bit = 8 values in 3 bytes; 2-bit = 4 per byte).
import GodwitKernels

/// What the stored f16 "norm" is, given x, u = x/‖x‖ and its quantization Q(u) (centroids):
/// - plain: ‖x‖ (Algorithm 1);
/// - unbiased: ‖x‖/⟨u, Q(u)⟩, so that ⟨x̂, x⟩ = ‖x‖² (the norm correction of TurboQuant implementations:
///   scores lose the (1 − MSE) shrinkage);
/// - leastSquares: ‖x‖·⟨u, Q(u)⟩/‖Q(u)‖², the scale minimizing ‖x − s·Q(u)‖².
enum TurboScale: Sendable {
    case plain, unbiased, leastSquares
}

/// One TurboQuant record: [f16 norm][headDim·bits/8 bytes of packed codes]; 2 + headDim·bits/8 bytes.
enum TurboRecord {
    static func bytes(headDim: Int, bits: Int) -> Int { 2 + headDim * bits / 8 }
}

public struct TurboQuantScheme: KVScheme {
    public let bits: Int
    /// Seed of the random signs (ASCII "turbo").
    public static let seed: UInt64 = 0x74_7572_626F

    /// The stored scale per role (TurboScale): measured on SmolLM2 (docs/kv-schemes.md).
    /// Values (turbo3, 40 chunks): plain ‖x‖ +3.09 %, least-squares +2.99 %, unbiased +2.62 % (the
    /// attention average cancels the rounding noise of many tokens but not a common shrinkage).
    static let keyScale = TurboScale.unbiased
    static let valueScale = TurboScale.unbiased

    /// bits ∈ {2, 3, 4}; other widths are not registered.
    public init(bits: Int) { self.bits = bits }

    public var name: String { "turbo\(bits)" }
    public var summary: String {
        "TurboQuant (MSE): f16 norm + \(bits)-bit Lloyd–Max codes of the randomly rotated unit vector"
    }
    public var source: String { "TurboQuant, arXiv 2504.19874 (Algorithm 1, TurboQuant_mse; no QJL residual)" }
    public var isQuantized: Bool { true }

    public func bitsPerValue(headDim: Int, role: KVRole, options: KVSchemeOptions) -> Double {
        Double(TurboRecord.bytes(headDim: headDim, bits: bits) * 8) / Double(headDim)
    }

    public func unsupportedReason(role: KVRole, headDim: Int) -> String? {
        guard [2, 3, 4].contains(bits) else { return "only 2, 3 and 4 bits are implemented" }
        return headDim >= 16 && headDim & (headDim - 1) == 0
            ? nil : "the random Hadamard rotation needs a power-of-two head dim ≥ 16"
    }

    /// The scheme's own random rotation Π = H·D (always applied: the codebook assumes it; the
    /// `--no-kv-rotation` switch, which governs llama.cpp's parity rotation, does not turn it off).
    public func rotation(role: KVRole, headDim: Int, options: KVSchemeOptions) -> (any KVRotation)? {
        guard unsupportedReason(role: role, headDim: headDim) == nil else { return nil }
        return SignedHadamardRotation(block: headDim, dim: headDim, seed: Self.seed)
    }

    public func makeKeyStore(_ context: KVStoreContext) throws(KVCacheError) -> any KeyStore { try makeStore(context) }
    public func makeValueStore(_ context: KVStoreContext) throws(KVCacheError) -> any ValueStore { try makeStore(context) }

    private func makeStore(_ context: KVStoreContext) throws(KVCacheError) -> any KeyStore & ValueStore {
        let g = context.geometry
        if let why = unsupportedReason(role: context.role, headDim: g.headDim) {
            throw .unsupportedHeadDim(scheme: name, role: context.role, headDim: g.headDim, reason: why)
        }
        let book = try TurboCodebook.shared(dim: g.headDim, bits: bits)
        return TurboStore(g, book, scale: context.role == .key ? Self.keyScale : Self.valueScale)
    }
}

/// TurboQuant storage for keys or values (already rotated by the cache).
/// Records [headCount, capacity, 2 + headDim·bits/8] (TurboRecord).
/// The hot loops take the bit width as an argument of `@inline(__always)` functions called from a
/// `switch` with constant widths, so each width gets its own constant-folded loop (a generic class
/// is not specialized through the store protocols' witness tables).
final class TurboStore: KeyStore, ValueStore {
    let geometry: KVStoreGeometry
    let rows: VectorRecordStorage
    let codebook: TurboCodebook
    /// The centroids, [2^bits] floats (read by `lookup` as masked broadcasts).
    let table: UnsafeMutablePointer<Float>

    let bits: Int
    let scaleMode: TurboScale

    init(_ g: KVStoreGeometry, _ book: TurboCodebook, scale: TurboScale = .plain) {
        geometry = g
        scaleMode = scale
        codebook = book
        bits = book.bits
        rows = VectorRecordStorage(g, recordBytes: TurboRecord.bytes(headDim: g.headDim, bits: book.bits))
        table = .allocate(capacity: 16)
        table.initialize(repeating: 0, count: 16)
        for (i, c) in book.centroids.enumerated() { table[i] = c }
    }

    deinit {
        rows.deallocate()
        table.deallocate()
    }

    var allocatedBytes: Int { rows.allocatedBytes }
    func bytesHeld(tokens: Int) -> Int { rows.bytesHeld(tokens: tokens) }
    /// Prepared query: the f32 query [headDim] (rotated by the cache).
    var preparedQueryBytes: Int { geometry.headDim * 4 }

    /// x [d] → record: f16 ‖x‖, then the packed codes of x/‖x‖.
    func encode(_ x: UnsafePointer<Float>, into r: UnsafeMutableRawPointer) {
        let d = geometry.headDim
        var ss: Double = 0
        for i in 0..<d { ss += Double(x[i]) * Double(x[i]) }
        let norm = Float(ss.squareRoot())
        let inv: Float = norm > 0 && norm.isFinite ? 1 / norm : 0
        let codes = (r + 2).assumingMemoryBound(to: UInt8.self)
        for i in 0..<d * bits / 8 { codes[i] = 0 }
        var uq: Double = 0, qq: Double = 0
        for i in 0..<d {
            let c = codebook.code(x[i] * inv)
            let cv = Double(codebook.centroids[c])
            uq += Double(x[i] * inv) * cv
            qq += cv * cv
            let bit = i * bits
            codes[bit >> 3] |= UInt8(truncatingIfNeeded: c << (bit & 7))
            if (bit & 7) + bits > 8 { codes[(bit >> 3) + 1] |= UInt8(truncatingIfNeeded: c >> (8 - (bit & 7))) }
        }
        var scale = norm
        if uq > 0 && qq > 0 {
            switch scaleMode {
            case .unbiased: scale = Float(Double(norm) / uq)
            case .leastSquares: scale = Float(Double(norm) * uq / qq)
            case .plain: break
            }
        }
        r.storeBytes(of: floatToHalf(min(scale, 65504)), as: UInt16.self)
    }

    /// Scalar twin: the code of coordinate i of a record, bit by bit.
    static func codeScalar(_ r: UnsafeRawPointer, _ i: Int, bits: Int) -> Int {
        let bit = i * bits
        var w = Int(r.load(fromByteOffset: 2 + (bit >> 3), as: UInt8.self))
        if (bit & 7) + bits > 8 { w |= Int(r.load(fromByteOffset: 2 + (bit >> 3) + 1, as: UInt8.self)) << 8 }
        return (w >> (bit & 7)) & ((1 << bits) - 1)
    }

    /// Codes of coordinates 16c..<16c+16: two 32-bit loads (8 codes each, b bytes apart), one
    /// variable shift, one mask. Reads up to 4 − b bytes past the record (VectorRecordStorage pads).
    @inline(__always) static func codes16(_ packed: UnsafeRawPointer, chunk c: Int, bits b: Int) -> SIMD16<UInt32> {
        let lo = packed.loadUnaligned(fromByteOffset: c * 2 * b, as: UInt32.self)
        let hi = packed.loadUnaligned(fromByteOffset: c * 2 * b + b, as: UInt32.self)
        let w = SIMD16<UInt32>(lowHalf: SIMD8(repeating: lo), highHalf: SIMD8(repeating: hi))
        let u = UInt32(b)
        let shifts = SIMD16<UInt32>(0, u, 2 * u, 3 * u, 4 * u, 5 * u, 6 * u, 7 * u, 0, u, 2 * u, 3 * u, 4 * u, 5 * u, 6 * u, 7 * u)
        return (w &>> shifts) & SIMD16<UInt32>(repeating: UInt32(1 << b) - 1)
    }

    /// table[idx] lane by lane for idx < 2^bits: a chain of compare + masked broadcast
    /// (`vpcmpeqd` + `vbroadcastss {k}`), 2·(2^bits − 1) vector instructions per 16 values.
    /// A register permute (vpermps) would be shorter, but LLVM scalarized every spelling of it
    /// tried here into 16 loads + 16 inserts once the index vector came from the unpacking shifts.
    @inline(__always) static func lookup(_ t: UnsafePointer<Float>, _ idx: SIMD16<UInt32>, bits: Int) -> SIMD16<Float> {
        var v = SIMD16<Float>(repeating: t[0])
        for k in 1..<(1 << bits) {
            v.replace(with: SIMD16<Float>(repeating: t[k]), where: idx .== SIMD16<UInt32>(repeating: UInt32(k)))
        }
        return v
    }

    /// Record → centroid values [d] · factor (no rotation back: the rotated domain).
    @inline(__always) static func decode(_ r: UnsafeRawPointer, _ d: Int, bits: Int, table: UnsafePointer<Float>, factor: Float,
                                         into out: UnsafeMutableRawPointer) {
        let f = SIMD16<Float>(repeating: factor)
        for c in 0..<d / 16 {
            out.storeBytes(of: lookup(table, codes16(r + 2, chunk: c, bits: bits), bits: bits) * f,
                           toByteOffset: c * 64, as: SIMD16<Float>.self)
        }
    }

    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim
        for t in 0..<count {
            for h in 0..<geometry.headCount {
                encode(src + t * tokenStride + h * d, into: rows.record(head: h, position: firstPosition + t))
            }
        }
    }

    /// Scalar twin decode (rotated domain): out = ‖x‖ · centroid[code] per coordinate.
    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        for (j, p) in positions.enumerated() {
            let r = UnsafeRawPointer(rows.record(head: head, position: p))
            let norm = halfToFloat(r.loadUnaligned(as: UInt16.self))
            for i in 0..<d { out[j * d + i] = norm * codebook.centroids[Self.codeScalar(r, i, bits: bits)] }
        }
    }

    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        dst.copyMemory(from: q, byteCount: geometry.headDim * 4)
    }

    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let d = geometry.headDim, bits = self.bits, table = self.table
        let first = UnsafeRawPointer(rows.record(head: head, position: positions.lowerBound))
        withUnsafeTemporaryAllocation(of: Float.self, capacity: d) { buf in
            // The switch sits inside the closure so that each arm's loop sees a constant width.
            switch bits {
            case 2: Self.scoreRows(bits: 2, first, count: positions.count, d: d, stride: rows.recordBytes, table: table,
                                   queries: queries, queryCount: queryCount, row: buf.baseAddress!, out: out, outStride: outStride)
            case 3: Self.scoreRows(bits: 3, first, count: positions.count, d: d, stride: rows.recordBytes, table: table,
                                   queries: queries, queryCount: queryCount, row: buf.baseAddress!, out: out, outStride: outStride)
            default: Self.scoreRows(bits: 4, first, count: positions.count, d: d, stride: rows.recordBytes, table: table,
                                    queries: queries, queryCount: queryCount, row: buf.baseAddress!, out: out, outStride: outStride)
            }
        }
    }

    /// out[g·outStride + j] = q_g · (‖k_j‖ · c[codes_j]) for `count` records from `first`; row: [d] scratch.
    @inline(__always) static func scoreRows(bits: Int, _ first: UnsafeRawPointer, count: Int, d: Int, stride: Int,
                                            table: UnsafePointer<Float>, queries: UnsafeRawPointer, queryCount: Int,
                                            row: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>, outStride: Int) {
        var r = first
        for j in 0..<count {
            decode(r, d, bits: bits, table: table, factor: halfToFloat(r.loadUnaligned(as: UInt16.self)), into: row)
            for g in 0..<queryCount {
                out[g * outStride + j] = VectorRowKernels.dot(queries + g * d * 4, row, d)
            }
            r += stride
        }
    }

    func accumulate(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                    positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int) {
        let d = geometry.headDim, bits = self.bits, table = self.table
        let first = UnsafeRawPointer(rows.record(head: head, position: positions.lowerBound))
        withUnsafeTemporaryAllocation(of: Float.self, capacity: d) { buf in
            switch bits {
            case 2: Self.accumulateRows(bits: 2, first, count: positions.count, d: d, stride: rows.recordBytes, table: table,
                                        weights: weights, weightStride: weightStride, queryCount: queryCount,
                                        row: buf.baseAddress!, acc: acc, accStride: accStride)
            case 3: Self.accumulateRows(bits: 3, first, count: positions.count, d: d, stride: rows.recordBytes, table: table,
                                        weights: weights, weightStride: weightStride, queryCount: queryCount,
                                        row: buf.baseAddress!, acc: acc, accStride: accStride)
            default: Self.accumulateRows(bits: 4, first, count: positions.count, d: d, stride: rows.recordBytes, table: table,
                                         weights: weights, weightStride: weightStride, queryCount: queryCount,
                                         row: buf.baseAddress!, acc: acc, accStride: accStride)
            }
        }
    }

    /// acc[g·accStride + i] += Σ_j w[g·weightStride + j] · ‖v_j‖ · c[code_j,i]; row: [d] scratch.
    @inline(__always) static func accumulateRows(bits: Int, _ first: UnsafeRawPointer, count: Int, d: Int, stride: Int,
                                                 table: UnsafePointer<Float>, weights: UnsafePointer<Float>, weightStride: Int,
                                                 queryCount: Int, row: UnsafeMutablePointer<Float>,
                                                 acc: UnsafeMutablePointer<Float>, accStride: Int) {
        var r = first
        for j in 0..<count {
            decode(r, d, bits: bits, table: table, factor: halfToFloat(r.loadUnaligned(as: UInt16.self)), into: row)
            for g in 0..<queryCount {
                let w = weights[g * weightStride + j]
                if w != 0 { VectorRowKernels.addScaled(acc + g * accStride, row, w, d) }
            }
            r += stride
        }
    }
}
