// Unquantized cache formats: f32, f16, bf16 (llama.cpp `-ctk f32|f16|bf16`). No rotation.
// Query precision follows llama.cpp's CPU flash attention in prompt processing: f32/f16 caches take
// its tiled path (f32 query, f32 accumulators); a bf16 K goes through the per-row path, which
// converts the query to bf16 (K's vec_dot type) first — so bf16 rounds the query, f16 does not.
// Layout of a store: [headCount, capacity, headDim] elements, head-major so one head's positions
// are contiguous. bf16 rounds like ggml_compute_fp32_to_bf16 (nearest-even).
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
        HalfConversion.toFloat(p.loadUnaligned(as: SIMD16<UInt16>.self))
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
    public func makeKeyStore(_ context: KVStoreContext) throws(KVCacheError) -> any KeyStore { FloatStore<E>(context.geometry) }
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
        let d = geometry.headDim
        var k = vector(head: head, position: positions.lowerBound)
        for j in 0..<positions.count {
            for g in 0..<queryCount {
                let q = queries + g * d * 4
                var acc = SIMD16<Float>()
                var i = 0
                while i + 16 <= d {
                    acc = acc.addingProduct(q.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self),
                                            E.load16(k + i * E.byteSize))
                    i += 16
                }
                var s = VectorOps.hsum(acc)
                while i < d { s += q.loadUnaligned(fromByteOffset: i * 4, as: Float.self) * E.load(k + i * E.byteSize); i += 1 }
                out[g * outStride + j] = s
            }
            k += vectorBytes
        }
    }

    func accumulate(weights: UnsafePointer<Float>, weightStride: Int, queryCount: Int, head: Int,
                    positions: Range<Int>, into acc: UnsafeMutablePointer<Float>, accStride: Int) {
        let d = geometry.headDim
        let base = vector(head: head, position: positions.lowerBound)
        let n = positions.count
        for g in 0..<queryCount {
            let a = UnsafeMutableRawPointer(acc + g * accStride)
            let w = weights + g * weightStride
            var i = 0
            while i + 16 <= d {
                var sum = a.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                var v = base + i * E.byteSize
                for j in 0..<n {
                    sum = sum.addingProduct(E.load16(v), SIMD16<Float>(repeating: w[j]))
                    v += vectorBytes
                }
                a.storeBytes(of: sum, toByteOffset: i * 4, as: SIMD16<Float>.self)
                i += 16
            }
            while i < d {
                var s = acc[g * accStride + i]
                for j in 0..<n { s += w[j] * E.load(base + j * vectorBytes + i * E.byteSize) }
                acc[g * accStride + i] = s
                i += 1
            }
        }
    }
}
