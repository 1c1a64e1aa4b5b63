// Raw ggml block rows of the block caches (q8_0 … iq4_nl), for the exact flash attention of
// `Numerics.ggml` (KVCache+GGMLFlashAttention.swift), which runs llama.cpp's own vec_dot on the
// cached bytes. Layout out: [positions.count, rowBytes], rowBytes = headDim/32 · block bytes, each
// row exactly the block_<type> bytes llama.cpp's set_rows would have written.
import GodwitGGUF

/// A store whose positions are ggml block rows of one type.
protocol GGMLBlockRows: KVStore {
    var blockType: GGMLType { get }
    /// Copies the block rows of `positions` of one head into `out` [positions.count, rowBytes].
    func copyBlockRows(head: Int, positions: Range<Int>, into out: UnsafeMutableRawPointer)
}

extension BlockStore: GGMLBlockRows {
    var blockType: GGMLType { F.type }

    func copyBlockRows(head: Int, positions: Range<Int>, into out: UnsafeMutableRawPointer) {
        for (j, p) in positions.enumerated() {
            (out + j * rowBytes).copyMemory(from: row(head: head, position: p), byteCount: rowBytes)
        }
    }
}

extension TiledBlockKeyStore: GGMLBlockRows {
    var blockType: GGMLType { type }

    func copyBlockRows(head: Int, positions: Range<Int>, into out: UnsafeMutableRawPointer) {
        let rowBytes = blocks * type.typeSize
        for (j, p) in positions.enumerated() { gatherRow(head: head, position: p, into: out + j * rowBytes) }
    }
}
