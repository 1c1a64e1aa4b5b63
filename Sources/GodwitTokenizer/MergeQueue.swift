// The work queue of the BPE and SentencePiece merge loops: llama.cpp's `llm_bigram_bpe::queue` and
// `llm_bigram_spm::queue` (std::priority_queue, llama-vocab.cpp). Deviation: one binary min-heap whose
// ordering is packed into a 64-bit key (priority in the high half, left symbol index in the low half),
// which reproduces both comparators: BPE pops the lowest rank, SentencePiece the highest score, and ties
// go to the leftmost pair.

/// A candidate merge of symbol `left` with its right neighbour. The neighbour is not stored: if `left` has
/// merged since, its length (hence `size`) no longer matches, so `size` alone identifies stale entries.
struct MergeCandidate {
    var key: UInt64
    /// Total byte length of the two symbols when the candidate was made (stale-entry check).
    var size: Int32
    /// The merged symbol's id (BPE: symbol id; SentencePiece: token id).
    var result: Int32

    @inline(__always) var left: Int32 { Int32(truncatingIfNeeded: key) }
}

struct MergeQueue {
    private(set) var items: [MergeCandidate] = []

    var isEmpty: Bool { items.isEmpty }

    mutating func removeAll() { items.removeAll(keepingCapacity: true) }

    /// Key for a BPE merge: lower rank first, then leftmost.
    @inline(__always)
    static func bpeKey(rank: Int32, left: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: left))
    }

    /// Key for a SentencePiece merge: higher score first, then leftmost.
    @inline(__always)
    static func spmKey(score: Float, left: Int32) -> UInt64 {
        let bits = score.bitPattern
        let ascending = bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000  // orders like the float
        return UInt64(~ascending) << 32 | UInt64(UInt32(bitPattern: left))
    }

    /// Adds without ordering; call `heapify` before the first `pop`.
    @inline(__always)
    mutating func appendUnordered(_ c: MergeCandidate) { items.append(c) }

    mutating func heapify() {
        let n = items.count
        guard n > 1 else { return }
        for start in stride(from: n / 2 - 1, through: 0, by: -1) {
            let c = items[start]
            var i = start
            while true {
                let l = 2 * i + 1
                if l >= n { break }
                let r = l + 1
                let child = (r < n && items[r].key < items[l].key) ? r : l
                if items[child].key >= c.key { break }
                items[i] = items[child]
                i = child
            }
            items[i] = c
        }
    }

    mutating func push(_ c: MergeCandidate) {
        items.append(c)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) >> 1
            if items[parent].key <= c.key { break }
            items[i] = items[parent]
            i = parent
        }
        items[i] = c
    }

    mutating func pop() -> MergeCandidate? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let top = items[0]
        let n = items.count
        var i = 0
        while true {
            let l = 2 * i + 1
            if l >= n { break }
            let r = l + 1
            let child = (r < n && items[r].key < items[l].key) ? r : l
            if items[child].key >= last.key { break }
            items[i] = items[child]
            i = child
        }
        items[i] = last
        return top
    }
}

/// A symbol of the merge loops (llama.cpp `llm_symbol`): a byte range of the text plus its list links.
struct MergeSymbol {
    var start: Int32
    var length: Int32
    var prev: Int32
    var next: Int32
    /// BPE: symbol id (vocab id, interned non-vocab string id, or -1). SentencePiece: vocab id or -1.
    var id: Int32
}
