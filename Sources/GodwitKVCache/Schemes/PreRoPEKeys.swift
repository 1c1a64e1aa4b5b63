// Support for key stores that keep keys before RoPE (KVQuant, arXiv 2401.18079, §3.2 "Pre-RoPE key
// quantization"; reference github.com/SqueezeAILab/KVQuant): the cache hands them unrotated keys
// (`keyInput = .preRoPE`) and RoPE is applied per position while scoring, after decoding.
// - RoPEAngleTable: cos/sin of each slot's position, filled when the slot is written (so ring
//   slots of sliding-window layers hold the angles of the position they now contain). The angles
//   come from RotaryEmbedding.table and the rotation is RotaryEmbedding.apply, the very functions
//   the cache uses for post-RoPE keys, so a lossless pre-RoPE store reproduces its keys bit for bit.
// - PreRoPEFloatKeyStore: f32 pre-RoPE keys (lossless twin of the quantized store, and the key
//   store of the calibration recorder).
import GodwitKernels

/// cos, sin: [capacity, dimensions/2] — the angles of the position held in each slot.
final class RoPEAngleTable {
    let rope: RotaryEmbedding
    let half: Int
    let cos: UnsafeMutablePointer<Float>
    let sin: UnsafeMutablePointer<Float>
    let capacity: Int

    init(rope: RotaryEmbedding, capacity: Int) {
        self.rope = rope
        self.capacity = capacity
        half = rope.dimensions / 2
        cos = .allocate(capacity: max(1, capacity * half))
        sin = .allocate(capacity: max(1, capacity * half))
        cos.initialize(repeating: 1, count: max(1, capacity * half))
        sin.initialize(repeating: 0, count: max(1, capacity * half))
    }

    deinit { cos.deallocate(); sin.deallocate() }

    var allocatedBytes: Int { 2 * capacity * half * 4 }

    /// Records the angles of `position` for its slot.
    func fill(position: Int) {
        let s = position % capacity
        rope.table(position: position, cos: cos + s * half, sin: sin + s * half)
    }

    /// Rotates one head vector k [headDim] in place with the angles of `position`'s slot.
    @inline(__always) func rotate(_ k: UnsafeMutablePointer<Float>, headDim: Int, position: Int) {
        let s = position % capacity
        rope.apply(k, heads: 1, headDim: headDim, cos: cos + s * half, sin: sin + s * half)
    }
}

/// Dot products used by the pre-RoPE key stores.
enum PreRoPEDot {
    /// q · k for d floats (q: a prepared query [d] f32).
    @inline(__always) static func dot(_ q: UnsafeRawPointer, _ k: UnsafePointer<Float>, _ d: Int) -> Float {
        let kr = UnsafeRawPointer(k)
        var a0 = SIMD16<Float>(), a1 = SIMD16<Float>()
        var i = 0
        while i + 32 <= d {
            a0 = a0.addingProduct(q.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self),
                                  kr.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
            a1 = a1.addingProduct(q.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self),
                                  kr.loadUnaligned(fromByteOffset: i * 4 + 64, as: SIMD16<Float>.self))
            i += 32
        }
        while i + 16 <= d {
            a0 = a0.addingProduct(q.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self),
                                  kr.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self))
            i += 16
        }
        var s = VectorOps.hsum(a0 + a1)
        while i < d { s += q.loadUnaligned(fromByteOffset: i * 4, as: Float.self) * k[i]; i += 1 }
        return s
    }
}

/// f32 keys kept before RoPE. [headCount, capacity, headDim] floats.
class PreRoPEFloatKeyStore: KeyStore {
    let geometry: KVStoreGeometry
    let storage: UnsafeMutablePointer<Float>
    let angles: RoPEAngleTable?

    init(_ g: KVStoreGeometry, rope: RotaryEmbedding?) {
        geometry = g
        storage = .allocate(capacity: max(1, g.headCount * g.capacity * g.headDim))
        angles = rope.map { RoPEAngleTable(rope: $0, capacity: g.capacity) }
    }

    deinit { storage.deallocate() }

    var keyInput: KeyInput { .preRoPE }
    var allocatedBytes: Int { geometry.headCount * geometry.capacity * geometry.headDim * 4 + (angles?.allocatedBytes ?? 0) }
    func bytesHeld(tokens: Int) -> Int { min(tokens, geometry.capacity) * geometry.headCount * geometry.headDim * 4 }
    var preparedQueryBytes: Int { geometry.headDim * 4 }

    @inline(__always) func vector(head: Int, position: Int) -> UnsafeMutablePointer<Float> {
        storage + (head * geometry.capacity + position % geometry.capacity) * geometry.headDim
    }

    func write(_ src: UnsafePointer<Float>, tokenStride: Int, count: Int, firstPosition: Int) {
        let d = geometry.headDim
        for t in 0..<count {
            let p = firstPosition + t
            angles?.fill(position: p)
            for h in 0..<geometry.headCount { vector(head: h, position: p).update(from: src + t * tokenStride + h * d, count: d) }
        }
    }

    func read(head: Int, positions: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        let d = geometry.headDim
        for (j, p) in positions.enumerated() { (out + j * d).update(from: vector(head: head, position: p), count: d) }
    }

    func prepareQuery(_ q: UnsafePointer<Float>, into dst: UnsafeMutableRawPointer) {
        dst.copyMemory(from: q, byteCount: geometry.headDim * 4)
    }

    func scores(queries: UnsafeRawPointer, queryCount: Int, head: Int, positions: Range<Int>,
                into out: UnsafeMutablePointer<Float>, outStride: Int) {
        let d = geometry.headDim
        withUnsafeTemporaryAllocation(of: Float.self, capacity: d + 16) { buf in
            let k = buf.baseAddress!
            for (j, p) in positions.enumerated() {
                k.update(from: vector(head: head, position: p), count: d)
                angles?.rotate(k, headDim: d, position: p)
                for g in 0..<queryCount { out[g * outStride + j] = PreRoPEDot.dot(queries + g * d * 4, k, d) }
            }
        }
    }
}
