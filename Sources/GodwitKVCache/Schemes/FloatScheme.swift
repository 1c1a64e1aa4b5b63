// Unquantized cache formats: f32, f16, bf16 (llama.cpp `-ctk f32|f16|bf16`). No rotation.
// Query precision follows llama.cpp's CPU flash attention in prompt processing: f32/f16 caches take
// its tiled path (f32 query, f32 accumulators); a bf16 K goes through the per-row path, which
// converts the query to bf16 (K's vec_dot type) first — so bf16 rounds the query, f16 does not.
// Layout: values [headCount, capacity, headDim] elements (FloatStore), head-major so one head's
// positions are contiguous; keys [headCount, ⌈capacity/16⌉, headDim, 16] (TiledFloatKeyStore). bf16 rounds like ggml_compute_fp32_to_bf16 (nearest-even).
import GodwitKernels

/// How one float element type is stored and loaded.
public protocol FloatCacheElement {
    static var schemeName: String { get }
    static var byteSize: Int { get }
    /// Loads 16 consecutive elements starting at `p` as floats.
    static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float>
    static func load(_ p: UnsafeRawPointer) -> Float
    static func store(_ x: Float, _ p: UnsafeMutableRawPointer)
    /// Whether prepared queries are rounded to this type (see the file header).
    static var roundsQuery: Bool { get }
}

public enum F32Element: FloatCacheElement {
    public static let schemeName = "f32", roundsQuery = false
    public static let byteSize = 4
    @inline(__always) public static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float> { p.loadUnaligned(as: SIMD16<Float>.self) }
    @inline(__always) public static func load(_ p: UnsafeRawPointer) -> Float { p.loadUnaligned(as: Float.self) }
    @inline(__always) public static func store(_ x: Float, _ p: UnsafeMutableRawPointer) { p.storeBytes(of: x, as: Float.self) }
}

public enum F16Element: FloatCacheElement {
    public static let schemeName = "f16", roundsQuery = false
    public static let byteSize = 2
    @inline(__always) public static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        halfToFloat(p.loadUnaligned(as: SIMD16<UInt16>.self))
    }
    @inline(__always) public static func load(_ p: UnsafeRawPointer) -> Float { HalfConversion.toFloat(p.loadUnaligned(as: UInt16.self)) }
    @inline(__always) public static func store(_ x: Float, _ p: UnsafeMutableRawPointer) { p.storeBytes(of: HalfConversion.toHalf(x), as: UInt16.self) }
}

public enum BF16Element: FloatCacheElement {
    public static let schemeName = "bf16", roundsQuery = true
    public static let byteSize = 2
    @inline(__always) public static func load16(_ p: UnsafeRawPointer) -> SIMD16<Float> {
        let w = SIMD16<UInt32>(truncatingIfNeeded: p.loadUnaligned(as: SIMD16<UInt16>.self)) &<< 16
        return unsafeBitCast(w, to: SIMD16<Float>.self)
    }
    @inline(__always) public static func load(_ p: UnsafeRawPointer) -> Float {
        Float(bitPattern: UInt32(p.loadUnaligned(as: UInt16.self)) << 16)
    }
    @inline(__always) public static func store(_ x: Float, _ p: UnsafeMutableRawPointer) { p.storeBytes(of: HalfConversion.toBF16(x), as: UInt16.self) }
}

/// The f32 / f16 / bf16 cache schemes.
public struct FloatScheme<E: FloatCacheElement>: KVScheme {
    public init() {}
    public var name: String { E.schemeName }
    public var summary: String { "\(E.byteSize * 8)-bit floats, no quantization" }
    public var source: String { "ggml \(E.schemeName) (llama.cpp -ctk/-ctv \(E.schemeName))" }
    public var isQuantized: Bool { false }
    public func bitsPerValue(headDim: Int, role: KVRole, options: KVSchemeOptions) -> Double { Double(E.byteSize * 8) }
    public func rotation(role: KVRole, headDim: Int, options: KVSchemeOptions) -> (any KVRotation)? { nil }
    /// Keys in 16-position tiles (TiledFloatKeyStore) when the head dim allows, else row-major.
    public func makeKeyStore(_ context: KVStoreContext) throws(KVCacheError) -> any KeyStore {
        context.geometry.headDim % 16 == 0 ? TiledFloatKeyStore<E>(context.geometry) : FloatStore<E>(context.geometry)
    }
    public func makeValueStore(_ context: KVStoreContext) throws(KVCacheError) -> any ValueStore { FloatStore<E>(context.geometry) }
}

/// Float storage, usable for keys and values. [headCount, capacity, headDim] elements.
final class FloatStore<E: FloatCacheElement>: KeyStore, ValueStore {
    let geometry: KVStoreGeometry
    let storage: UnsafeMutableRawPointer
    let vectorBytes: Int
    let headBytes: Int

    init(_ g: KVStoreGeometry) {
        geometry = g
        vectorBytes = g.headDim * E.byteSize
        headBytes = vectorBytes * g.capacity
        // Not zero-filled: pages are committed as positions are written, never read before.
        storage = .allocate(byteCount: max(1, headBytes * g.headCount), alignment: 64)
    }

    deinit { storage.deallocate() }

    var allocatedBytes: Int { headBytes * geometry.headCount }
    func bytesHeld(tokens: Int) -> Int { min(tokens, geometry.capacity) * vectorBytes * geometry.headCount }
    var preparedQueryBytes: Int { geometry.headDim * 4 }

    @inline(__always) func vector(head: Int, position: Int) -> UnsafeMutableRawPointer {
        storage + head * headBytes + (position % geometry.capacity) * vectorBytes
    }


    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim
        for t in 0..<count {
            for h in 0..<geometry.headCount {
                let s = src + t * tokenStride + h * d
                let dst = vector(head: h, position: firstPosition + t)
                for i in 0..<d { E.store(s[i], dst + i * E.byteSize) }
            }
        }
    }

    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        for (j, p) in positions.enumerated() {
            let v = vector(head: head, position: p)
            for i in 0..<d { out[j * d + i] = E.load(v + i * E.byteSize) }
        }
    }

    /// The query as f32 [headDim], rounded to the element type when `E.roundsQuery`.
    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        guard E.roundsQuery else { dst.copyMemory(from: q, byteCount: geometry.headDim * 4); return }
        let out = dst.assumingMemoryBound(to: Float.self)
        withUnsafeTemporaryAllocation(byteCount: 4, alignment: 4) { tmp in
            for i in 0..<geometry.headDim {
                E.store(q[i], tmp.baseAddress!)
                out[i] = E.load(tmp.baseAddress!)
            }
        }
    }

    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let k = UnsafeRawPointer(vector(head: head, position: positions.lowerBound))
        let d = geometry.headDim, n = positions.count
        // Enter the kernel with a concrete element type (see FloatStoreKernels.swift).
        if E.self == F16Element.self {
            FloatStoreKernels.scores(F16Element.self, queries: queries, rows: queryCount, keys: k, vectorBytes: vectorBytes,
                                     count: n, d: d, out: out, outStride: outStride)
        } else if E.self == BF16Element.self {
            FloatStoreKernels.scores(BF16Element.self, queries: queries, rows: queryCount, keys: k, vectorBytes: vectorBytes,
                                     count: n, d: d, out: out, outStride: outStride)
        } else if E.self == F32Element.self {
            FloatStoreKernels.scores(F32Element.self, queries: queries, rows: queryCount, keys: k, vectorBytes: vectorBytes,
                                     count: n, d: d, out: out, outStride: outStride)
        } else {
            FloatStoreKernels.scores(E.self, queries: queries, rows: queryCount, keys: k, vectorBytes: vectorBytes,
                                     count: n, d: d, out: out, outStride: outStride)
        }
    }

    func accumulate(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                    positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int) {
        let v = UnsafeRawPointer(vector(head: head, position: positions.lowerBound))
        let d = geometry.headDim, n = positions.count
        if E.self == F16Element.self {
            FloatStoreKernels.accumulate(F16Element.self, weights: weights, weightStride: weightStride, rows: queryCount,
                                         values: v, vectorBytes: vectorBytes, count: n, d: d, acc: acc, accStride: accStride)
        } else if E.self == BF16Element.self {
            FloatStoreKernels.accumulate(BF16Element.self, weights: weights, weightStride: weightStride, rows: queryCount,
                                         values: v, vectorBytes: vectorBytes, count: n, d: d, acc: acc, accStride: accStride)
        } else if E.self == F32Element.self {
            FloatStoreKernels.accumulate(F32Element.self, weights: weights, weightStride: weightStride, rows: queryCount,
                                         values: v, vectorBytes: vectorBytes, count: n, d: d, acc: acc, accStride: accStride)
        } else {
            FloatStoreKernels.accumulate(E.self, weights: weights, weightStride: weightStride, rows: queryCount,
                                         values: v, vectorBytes: vectorBytes, count: n, d: d, acc: acc, accStride: accStride)
        }
    }
}
