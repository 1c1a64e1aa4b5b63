// Shared storage for the per-vector ("vector-scaled") schemes: FP8, Q8_KV and TurboQuant each encode
// one head vector into one fixed-size record (scale or norm, then codes). Source: this project's
// layout (the head-major layout of the ggml block stores in GGMLBlockScheme.swift).

/// Head-major records: [headCount, capacity, recordBytes], plus `tailPadding` zero bytes after the
/// last record so kernels may load a few bytes past a record's end (bit-packed codes are read
/// 4 bytes at a time). Position p lives in slot p % capacity.
struct VectorRecordStorage {
    static let tailPadding = 64
    let base: UnsafeMutableRawPointer
    let recordBytes: Int
    /// recordBytes · capacity
    let headBytes: Int
    let headCount: Int
    let capacity: Int

    init(_ g: KVStoreGeometry, recordBytes: Int) {
        self.recordBytes = recordBytes
        headBytes = recordBytes * g.capacity
        headCount = g.headCount
        capacity = g.capacity
        // Not zero-filled except the padding: slots are written before they are read.
        base = .allocate(byteCount: headBytes * g.headCount + Self.tailPadding, alignment: 64)
        (base + headBytes * g.headCount).initializeMemory(as: UInt8.self, repeating: 0, count: Self.tailPadding)
    }

    func deallocate() { base.deallocate() }

    /// Bytes holding records (the padding is not counted: it holds no data).
    var allocatedBytes: Int { headBytes * headCount }

    /// Bytes held by `tokens` cached positions of every head.
    func bytesHeld(tokens: Int) -> Int { min(tokens, capacity) * recordBytes * headCount }

    @inline(__always) func record(head: Int, position: Int) -> UnsafeMutableRawPointer {
        base + head * headBytes + (position % capacity) * recordBytes
    }
}
