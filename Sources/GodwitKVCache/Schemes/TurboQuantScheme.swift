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
// Keys live in 16-position tiles (TiledTurboKeyStore.swift, the same bytes per position): a tile's codes
// decode with one `vpermps` per dimension (CodeLookup.lookup16) into keys scale·c [d, 16] shared by the
// query rows, and a query scores 16 positions with broadcast FMAs in the summation order of the former
// row kernel (scores bitwise unchanged).
// Values (TurboStore): records [f16 scale][codes], 16 dims of a record unpacked with a zero-extension,
// a lane permute and one variable shift, looked up with one `vpermps` and scaled in registers
// (TurboColumns.swift), accumulated by FloatStoreKernels' value sums: Σ_j w_j·scale_j·centroid[code] in
// the rotated domain (bitwise the former row kernel).
// Record codes: coordinate i at bit b·i of the packed area (little-endian: 4-bit = 2 per byte, low
// nibble first; 3-bit = 8 values in 3 bytes; 2-bit = 4 per byte).
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
        RotatedVectorSchemes.bitsPerValue(headDim: headDim, bits: bits)
    }

    public func unsupportedReason(role: KVRole, headDim: Int) -> String? {
        RotatedVectorSchemes.unsupportedReason(bits: bits, headDim: headDim)
    }

    /// The scheme's own random rotation Π = H·D (RotatedVectorSchemes).
    public func rotation(role: KVRole, headDim: Int, options: KVSchemeOptions) -> (any KVRotation)? {
        RotatedVectorSchemes.rotation(bits: bits, headDim: headDim, seed: Self.seed)
    }

    /// Keys in 16-position tiles (TiledTurboKeyStore), values in records (TurboStore); the same bytes per position.
    public func makeKeyStore(_ context: KVStoreContext) throws(KVCacheError) -> any KeyStore {
        let g = try validated(context)
        return TiledTurboKeyStore(g, try TurboCodebook.shared(dim: g.headDim, bits: bits), scale: Self.keyScale)
    }
    public func makeValueStore(_ context: KVStoreContext) throws(KVCacheError) -> any ValueStore {
        let g = try validated(context)
        return TurboStore(g, try TurboCodebook.shared(dim: g.headDim, bits: bits), scale: Self.valueScale)
    }

    private func validated(_ context: KVStoreContext) throws(KVCacheError) -> KVStoreGeometry {
        try RotatedVectorSchemes.geometry(context, scheme: name, bits: bits)
    }
}

/// Encodes one head vector into a TurboQuant record (TurboRecord), for the key tiles and the value records.
struct TurboEncoder {
    let codebook: TurboCodebook
    let bits: Int
    let scaleMode: TurboScale

    init(_ book: TurboCodebook, scale: TurboScale) {
        codebook = book
        bits = book.bits
        scaleMode = scale
    }

    /// The centroids repeated to 16 entries, entry k = centroid[k mod 2^bits], for CodeLookup.lookup16:
    /// an index whose bits above the code hold other codes' bits still selects the right centroid.
    var lookupTable: SIMD16<Float> {
        var t = SIMD16<Float>()
        for k in 0..<16 { t[k] = codebook.centroids[k % codebook.centroids.count] }
        return t
    }

    /// x [d] → record: f16 scale (TurboScale of ‖x‖), then the packed codes of x/‖x‖ (coordinate i at bit b·i).
    func encode(_ x: UnsafePointer<Float>, _ d: Int, into r: UnsafeMutableRawPointer) {
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
            PackedBits.put(c, bits: bits, at: i * bits, into: codes)
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
}

/// TurboQuant value storage (keys: TiledTurboKeyStore, the same records in tiles), already rotated by
/// the cache. Records [headCount, capacity, 2 + headDim·bits/8] (TurboRecord).
/// `accumulate` branches on the width into FloatStoreKernels' value sums with a TurboColumns<W> per
/// width (a constant width per specialization; the unpacking permutes and shifts come from `unpack`).
final class TurboStore: ScalarTwinValueStore {
    let geometry: KVStoreGeometry
    let rows: VectorRecordStorage
    let encoder: TurboEncoder
    let bits: Int
    /// The centroids repeated to 16 entries (TurboEncoder.lookupTable).
    let lookupTable: SIMD16<Float>
    /// The unpacking permutes and shifts of this width (TurboColumns).
    let unpack: TurboUnpack

    init(_ g: KVStoreGeometry, _ book: TurboCodebook, scale: TurboScale = .plain) {
        geometry = g
        encoder = TurboEncoder(book, scale: scale)
        bits = book.bits
        lookupTable = encoder.lookupTable
        unpack = TurboUnpack(bits: book.bits)
        rows = VectorRecordStorage(g, recordBytes: TurboRecord.bytes(headDim: g.headDim, bits: book.bits))
    }

    deinit { rows.deallocate() }

    var allocatedBytes: Int { rows.allocatedBytes }
    func bytesHeld(tokens: Int) -> Int { rows.bytesHeld(tokens: tokens) }

    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim
        for t in 0..<count {
            for h in 0..<geometry.headCount {
                encoder.encode(src + t * tokenStride + h * d, d, into: rows.record(head: h, position: firstPosition + t))
            }
        }
    }

    /// Scalar twin decode (rotated domain): out = scale · centroid[code] per coordinate.
    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim, centroids = encoder.codebook.centroids
        for (j, p) in positions.enumerated() {
            let r = UnsafeRawPointer(rows.record(head: head, position: p))
            let scale = halfToFloat(r.loadUnaligned(as: UInt16.self))
            for i in 0..<d { out[j * d + i] = scale * centroids[TurboEncoder.codeScalar(r, i, bits: bits)] }
        }
    }

    func accumulate(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                    positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int) {
        let d = geometry.headDim, stride = rows.recordBytes, lut = lookupTable, unpack = self.unpack
        let first = UnsafeRawPointer(rows.record(head: head, position: positions.lowerBound))
        switch bits {
        case 2:
            FloatStoreKernels.accumulateColumns(weights: weights, weightStride: weightStride, rows: queryCount, count: positions.count,
                                                d: d, acc: acc, accStride: accStride, TurboColumns<Turbo2Bit>(records: first, stride: stride, table: lut, unpack: unpack))
        case 3:
            FloatStoreKernels.accumulateColumns(weights: weights, weightStride: weightStride, rows: queryCount, count: positions.count,
                                                d: d, acc: acc, accStride: accStride, TurboColumns<Turbo3Bit>(records: first, stride: stride, table: lut, unpack: unpack))
        default:
            FloatStoreKernels.accumulateColumns(weights: weights, weightStride: weightStride, rows: queryCount, count: positions.count,
                                                d: d, acc: acc, accStride: accStride, TurboColumns<Turbo4Bit>(records: first, stride: stride, table: lut, unpack: unpack))
        }
    }

    /// Scalar twin: each value decoded by `read`, then acc += w·v element by element, positions in order.
    func scalarAccumulate(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                          positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int) {
        scalarAccumulateFromRead(weights: weights, weightStride: weightStride, queryCount: queryCount, head: head,
                                 positions: positions, into: acc, accStride: accStride)
    }
}
