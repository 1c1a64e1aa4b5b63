// Rank-based byte-level BPE: llama.cpp `llm_tokenizer_bpe_session::tokenize` (llama-vocab.cpp) and the
// merge table built in `llama_vocab::impl::load` ("left right" split at the first space after position 0,
// rank = index, the first occurrence of a pair wins).
// Per word: start from one symbol per byte, repeatedly merge the adjacent pair with the lowest rank
// (leftmost on ties), then emit each symbol's token; a symbol that is not a token falls back, byte by byte
// of its byte-level text, to single-character tokens (in practice only printable ASCII can match, as in
// llama.cpp). With `ignore_merges` (Llama 3) a word that is a token is emitted whole.
// Deviations: symbols are raw-byte ranges and strings are interned to integer ids (vocab tokens keep
// their token id, other merge results get ids past the vocabulary), so a pair lookup is one 64-bit hash
// probe instead of building two std::strings; results are identical.

final class BytePairEncoder: @unchecked Sendable {
    let vocabularySize: Int
    let ignoreMerges: Bool
    /// Raw bytes of every token and merge string -> symbol id.
    let symbols: ByteStringTable
    /// (left id, right id) -> rank << 32 | merged id.
    let merges: PairTable
    /// Symbol id of each single byte (-1 if neither a token nor part of a merge).
    let byteSymbol: [Int32]
    /// Token emitted for a byte of an unknown symbol (-1: none), see the header.
    let byteFallback: [Int32]

    init(tokens: [String], merges mergeList: [String], ignoreMerges: Bool, rawTable: ByteStringTable) {
        vocabularySize = tokens.count
        self.ignoreMerges = ignoreMerges
        var table = ByteStringTable(expectedCount: tokens.count + mergeList.count / 4, expectedBytes: tokens.count * 8)
        var scratch = [UInt8]()
        for (i, t) in tokens.enumerated() {
            if Self.decodeAlphabet(t.utf8, into: &scratch) { table.insert(scratch, value: Int32(i)) }
        }
        var nextID = Int32(tokens.count)
        func intern(_ bytes: [UInt8]) -> Int32 {
            let id = table.lookup(bytes)
            if id >= 0 { return id }
            table.insert(bytes, value: nextID)
            nextID += 1
            return nextID - 1
        }
        var pairs = PairTable(expectedCount: mergeList.count)
        var left = [UInt8](), right = [UInt8]()
        for (rank, m) in mergeList.enumerated() {
            let u = Array(m.utf8)
            // llama.cpp: word.find(' ', 1); without a space the pair is ("", ""), which never matches.
            guard u.count > 1, let space = u[1...].firstIndex(of: 0x20) else { continue }
            guard Self.decodeAlphabet(u[..<space], into: &left),
                  Self.decodeAlphabet(u[(space + 1)...], into: &right),
                  !left.isEmpty, !right.isEmpty else { continue }
            let l = intern(left), r = intern(right), merged = intern(left + right)
            pairs.insertIfAbsent(PairTable.key(l, r), UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged)))
        }
        symbols = table
        self.merges = pairs
        byteSymbol = (0..<256).map { b in table.lookup([UInt8(b)]) }
        byteFallback = (0..<256).map { b -> Int32 in
            let encoded = ByteLevelAlphabet.codepointForByte[b]
            guard encoded < 0x80 else { return -1 }  // a lone byte of a multi-byte character is never a token
            return rawTable.lookup([UInt8(encoded)])
        }
    }

    /// Decodes byte-level-alphabet UTF-8 into raw bytes; false if a character is outside the alphabet.
    static func decodeAlphabet<C: Collection>(_ utf8: C, into out: inout [UInt8]) -> Bool where C.Element == UInt8 {
        out.removeAll(keepingCapacity: true)
        var it = utf8.makeIterator()
        while let b0 = it.next() {
            var cp: Int
            if b0 < 0x80 {
                cp = Int(b0)
            } else if b0 & 0xE0 == 0xC0, let b1 = it.next(), b1 & 0xC0 == 0x80 {
                cp = Int(b0 & 0x1F) << 6 | Int(b1 & 0x3F)
            } else {
                return false
            }
            guard cp < ByteLevelAlphabet.byteForCodepoint.count else { return false }
            let b = ByteLevelAlphabet.byteForCodepoint[cp]
            guard b >= 0 else { return false }
            out.append(UInt8(b))
        }
        return true
    }

    /// Reusable buffers for one encode call.
    struct Scratch {
        var symbols: [MergeSymbol] = []
        var queue = MergeQueue()
    }

    /// Encodes one pre-tokenized word (`n` raw bytes at `p`) and appends its tokens to `out`.
    func encodeWord(_ p: UnsafePointer<UInt8>, _ n: Int, scratch s: inout Scratch, into out: inout [Int32]) {
        guard n > 0 else { return }
        if ignoreMerges || n == 1 {
            let id = n == 1 ? byteSymbol[Int(p[0])] : symbols.lookup(p, n)
            if id >= 0 && Int(id) < vocabularySize {
                out.append(id)
                return
            }
        }
        var sym = [MergeSymbol]()
        var queue = MergeQueue()
        swap(&sym, &s.symbols)
        swap(&queue, &s.queue)
        defer {
            swap(&sym, &s.symbols)
            swap(&queue, &s.queue)
        }
        sym.removeAll(keepingCapacity: true)
        queue.removeAll()
        for i in 0..<n {
            sym.append(MergeSymbol(start: Int32(i), length: 1, prev: Int32(i - 1),
                                   next: i + 1 == n ? -1 : Int32(i + 1), id: byteSymbol[Int(p[i])]))
        }
        sym.withUnsafeMutableBufferPointer { buffer in
            let sym = buffer.baseAddress!
            for i in 1..<n { addPair(sym, Int32(i - 1), Int32(i), &queue, ordered: false) }
            queue.heapify()
            while let c = queue.pop() {
                let l = Int(c.left)
                // Skip outdated candidates (a side was merged since).
                if sym[l].length == 0 { continue }
                let r = Int(sym[l].next)
                if r < 0 || sym[r].length == 0 || sym[l].length + sym[r].length != c.size { continue }
                sym[l].length += sym[r].length
                sym[l].id = c.result
                sym[r].length = 0
                sym[l].next = sym[r].next
                if sym[r].next >= 0 { sym[Int(sym[r].next)].prev = c.left }
                addPair(sym, sym[l].prev, c.left, &queue)
                addPair(sym, c.left, sym[l].next, &queue)
            }
            var i: Int32 = 0
            while i >= 0 {
                let symbol = sym[Int(i)]
                if symbol.id >= 0 && Int(symbol.id) < vocabularySize {
                    out.append(symbol.id)
                } else {
                    for k in Int(symbol.start)..<Int(symbol.start + symbol.length) {
                        let t = byteFallback[Int(p[k])]
                        if t >= 0 { out.append(t) }
                    }
                }
                i = symbol.next
            }
        }
    }

    @inline(__always)
    private func addPair(_ sym: UnsafeMutablePointer<MergeSymbol>, _ l: Int32, _ r: Int32, _ queue: inout MergeQueue,
                         ordered: Bool = true) {
        guard l >= 0, r >= 0 else { return }
        let a = sym[Int(l)], b = sym[Int(r)]
        guard a.id >= 0, b.id >= 0, let payload = merges.lookup(PairTable.key(a.id, b.id)) else { return }
        let candidate = MergeCandidate(key: MergeQueue.bpeKey(rank: Int32(payload >> 32), left: l),
                                  size: a.length + b.length, result: Int32(truncatingIfNeeded: payload))
        if ordered { queue.push(candidate) } else { queue.appendUnordered(candidate) }
    }
}
