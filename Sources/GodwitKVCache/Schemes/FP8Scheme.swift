// FP8 cache schemes `fp8_e4m3` and `fp8_e5m2`.
// Source: vLLM `--kv-cache-dtype fp8_e4m3|fp8_e5m2` (vllm/_custom_ops scaled_fp8_quant, the
// cache kernels' scaled_convert) and mistral.rs's fp8 KV cache; formats per the OCP OFP8 spec
// (FP8Codec.swift).
// Deviations: vLLM multiplies by one per-tensor scale per layer (1.0 or calibrated offline); we have
// no calibration pass, so each head vector gets its own f16 scale = absmax / fpmax, rounded *up* to
// the next f16 so that no element saturates. Counted in bpv: 8 + 16/headDim. vLLM does not rotate;
// we apply llama.cpp's parity Hadamard rule (as for every quantized type; `--no-kv-rotation` turns
// it off) because it measured slightly better (see `rotation(role:…)`).
// Scores: keys live in 16-position tiles (TiledFP8KeyStore.swift, the same bytes): a column of 16
// positions decodes to one f32 vector (bit-trick decode, FP8Codec) for broadcast FMAs. Values
// (FP8Store): 16 dims of a record decoded in registers (codes · scale) and accumulated with
// FloatStoreKernels' value sums.
import GodwitKernels

/// One FP8 record: [f16 scale][headDim codes]; 2 + headDim bytes.
enum FP8Record {
    static func bytes(headDim: Int) -> Int { 2 + headDim }
}

public struct FP8Scheme: KVScheme {
    public enum Format: Sendable { case e4m3, e5m2 }
    public let format: Format

    public init(_ format: Format) { self.format = format }

    /// The element codec (tests, tools): float → code, round to nearest even, saturating.
    public static func encode(_ x: Float, format: Format) -> UInt8 {
        format == .e4m3 ? FP8E4M3.encode(x) : FP8E5M2.encode(x)
    }

    /// Code → float (the arithmetic scalar decoder).
    public static func decode(_ code: UInt8, format: Format) -> Float {
        format == .e4m3 ? FP8E4M3.decode(code) : FP8E5M2.decode(code)
    }

    /// Code → float through the vectorized bit-trick decoder (16 copies of `code`, lane 0 returned).
    public static func decodeFast(_ code: UInt8, format: Format) -> Float {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { b in
            b.initialize(repeating: code)
            let p = UnsafeRawPointer(b.baseAddress!)
            return format == .e4m3 ? FP8E4M3.decode16(p)[0] * FP8E4M3.halfFactor : FP8E5M2.decode16(p)[0] * FP8E5M2.halfFactor
        }
    }

    public var name: String { format == .e4m3 ? FP8E4M3.name : FP8E5M2.name }
    public var summary: String {
        format == .e4m3
            ? "OCP FP8 E4M3FN per value (max 448) with an f16 scale per head vector"
            : "OCP FP8 E5M2 per value (max 57344) with an f16 scale per head vector"
    }
    public var source: String { "vLLM / mistral.rs fp8 KV cache (--kv-cache-dtype \(name)); OCP OFP8 spec, arXiv 2209.05433" }
    public var isQuantized: Bool { true }

    public func bitsPerValue(headDim: Int, role: KVRole, options: KVSchemeOptions) -> Double {
        Double(FP8Record.bytes(headDim: headDim) * 8) / Double(headDim)
    }

    public func unsupportedReason(role: KVRole, headDim: Int) -> String? {
        headDim > 0 && headDim % 16 == 0 ? nil : "the head dim must be a positive multiple of 16"
    }

    /// llama.cpp's parity Hadamard rule. Measured on SmolLM2 (wikitext-2, -c 512, 40 chunks, f16
    /// 21.4652): fp8_e4m3 K+V 21.5499 rotated vs 21.5711 with --no-kv-rotation; fp8_e5m2 see the report.
    public func rotation(role: KVRole, headDim: Int, options: KVSchemeOptions) -> (any KVRotation)? {
        parityRotation(role: role, headDim: headDim, options: options)
    }

    /// Keys in 16-position tiles (TiledFP8KeyStore, the same bytes), values in records (FP8Store).
    public func makeKeyStore(_ context: KVStoreContext) throws(KVCacheError) -> any KeyStore {
        TiledFP8KeyStore(try validated(context), format: format)
    }
    public func makeValueStore(_ context: KVStoreContext) throws(KVCacheError) -> any ValueStore {
        FP8Store(try validated(context), format: format)
    }

    private func validated(_ context: KVStoreContext) throws(KVCacheError) -> KVStoreGeometry {
        let g = context.geometry
        if let why = unsupportedReason(role: context.role, headDim: g.headDim) {
            throw .unsupportedHeadDim(scheme: name, role: context.role, headDim: g.headDim, reason: why)
        }
        return g
    }
}

/// FP8 value storage (keys: TiledFP8KeyStore, the same records in tiles). Records
/// [headCount, capacity, 2 + headDim] (FP8Record).
/// The codec is chosen per call by a branch on `format` into `@inline(__always)` generic helpers, so
/// each format gets a specialized loop (a generic class would run unspecialized through the protocol
/// witness tables).
final class FP8Store: ValueStore {
    let geometry: KVStoreGeometry
    let rows: VectorRecordStorage
    let format: FP8Scheme.Format

    init(_ g: KVStoreGeometry, format: FP8Scheme.Format) {
        self.format = format
        geometry = g
        rows = VectorRecordStorage(g, recordBytes: FP8Record.bytes(headDim: g.headDim))
    }

    deinit { rows.deallocate() }

    var allocatedBytes: Int { rows.allocatedBytes }
    func bytesHeld(tokens: Int) -> Int { rows.bytesHeld(tokens: tokens) }
    /// Encodes one vector x [d] into a record.
    static func encode<E: FP8Encoding>(_: E.Type, _ x: UnsafePointer<Float>, _ d: Int, into r: UnsafeMutableRawPointer) {
        var amax: Float = 0
        for i in 0..<d { amax = max(amax, abs(x[i])) }
        var scale = Float16(amax / E.maxValue)
        if Float(scale) < amax / E.maxValue { scale = scale.nextUp }
        r.storeBytes(of: scale.bitPattern, as: UInt16.self)
        let codes = (r + 2).assumingMemoryBound(to: UInt8.self)
        let s = Float(scale)
        // An all-zero vector (or one beyond f16 range: |x| > fpmax·65504, or NaN/inf) stores zeros.
        guard s > 0 && s.isFinite else {
            r.storeBytes(of: UInt16(0), as: UInt16.self)
            for i in 0..<d { codes[i] = 0 }
            return
        }
        for i in 0..<d { codes[i] = E.encode(x[i] / s) }
    }

    /// Scalar twin: record → floats [d] through the arithmetic decoder.
    static func decodeScalar<E: FP8Encoding>(_: E.Type, _ r: UnsafeRawPointer, _ d: Int, into out: UnsafeMutablePointer<Float>) {
        let s = halfToFloat(r.loadUnaligned(as: UInt16.self))
        for i in 0..<d { out[i] = E.decode(r.load(fromByteOffset: 2 + i, as: UInt8.self)) * s }
    }

    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim
        for t in 0..<count {
            for h in 0..<geometry.headCount {
                let x = src + t * tokenStride + h * d, r = rows.record(head: h, position: firstPosition + t)
                if format == .e4m3 { Self.encode(FP8E4M3.self, x, d, into: r) } else { Self.encode(FP8E5M2.self, x, d, into: r) }
            }
        }
    }

    /// Decodes with the scalar twin (tests compare `accumulate` against it).
    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        for (j, p) in positions.enumerated() {
            let r = rows.record(head: head, position: p)
            if format == .e4m3 { Self.decodeScalar(FP8E4M3.self, r, d, into: out + j * d) } else { Self.decodeScalar(FP8E5M2.self, r, d, into: out + j * d) }
        }
    }

    func accumulate(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                    positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int) {
        let d = geometry.headDim
        let first = UnsafeRawPointer(rows.record(head: head, position: positions.lowerBound))
        // 16 dims of a record decoded in registers (codes · scale · halfFactor, FP8Columns), then
        // FloatStoreKernels' value sums (decode: 64-dim slabs, no row buffer).
        if format == .e4m3 {
            FloatStoreKernels.accumulateColumns(weights: weights, weightStride: weightStride, rows: queryCount, count: positions.count,
                                                d: d, acc: acc, accStride: accStride, FP8Columns<FP8E4M3>(records: first, stride: rows.recordBytes))
        } else {
            FloatStoreKernels.accumulateColumns(weights: weights, weightStride: weightStride, rows: queryCount, count: positions.count,
                                                d: d, acc: acc, accStride: accStride, FP8Columns<FP8E5M2>(records: first, stride: rows.recordBytes))
        }
    }
}

/// FP8 records [count, stride] ([f16 scale][codes]) as 16-dim f32 columns for FloatStoreKernels.
struct FP8Columns<E: FP8Encoding>: ValueColumns {
    let records: UnsafeRawPointer
    let stride: Int
    @inline(__always) func column(_ j: Int, _ i: Int) -> SIMD16<Float> {
        let r = records + j * stride
        return E.decode16(r + 2 + i) * SIMD16<Float>(repeating: halfToFloat(r.loadUnaligned(as: UInt16.self)) * E.halfFactor)
    }
}
