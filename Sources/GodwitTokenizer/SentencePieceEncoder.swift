// SentencePiece-style (`tokenizer.ggml.model = llama`) encoding: llama.cpp `llm_tokenizer_spm_session`
// (llama-vocab.cpp) and the SPM branch of `llama_vocab::impl::tokenize`: optionally prefix a space, escape
// every ' ' as U+2581 '▁', start from one symbol per UTF-8 character, repeatedly merge the adjacent pair
// whose concatenation is a token with the highest score (leftmost on ties), then emit each symbol's token
// or, for a character that is no token, its bytes as `<0xXX>` byte tokens (or the one-byte token).
// Deviations: symbols are byte ranges of the escaped text and candidate pairs are looked up in a byte hash
// table without building strings. llama.cpp's `resegment` through `rev_merge` can never fire (a merged
// symbol is always a token and an unmerged one is a single character), so it is not reproduced. Where
// llama.cpp would throw (`token_to_id.at`) because a byte has neither a `<0xXX>` nor a one-byte token,
// the unknown token is emitted instead (nothing if there is none).

final class SentencePieceEncoder: @unchecked Sendable {
    let table: ByteStringTable
    let scores: [Float]
    /// Token for each byte when a character is not in the vocabulary (-1: unknown token / nothing).
    let byteToken: [Int32]

    init(table: ByteStringTable, scores: [Float], unknown: Int32?) {
        self.table = table
        self.scores = scores
        let hex = Array("0123456789ABCDEF".utf8)
        byteToken = (0..<256).map { b -> Int32 in
            let name: [UInt8] = [0x3C, 0x30, 0x78, hex[b >> 4], hex[b & 15], 0x3E]  // <0xXX>
            let id = table.lookup(name)
            if id >= 0 { return id }
            if b < 0x80 {
                let single = table.lookup([UInt8(b)])
                if single >= 0 { return single }
            }
            return unknown ?? -1
        }
    }

    struct Scratch {
        var escaped: [UInt8] = []
        var symbols: [MergeSymbol] = []
        var queue = MergeQueue()
    }

    /// Encodes raw text (no special tokens inside) and appends the tokens to `out`.
    func encode(_ text: UnsafeBufferPointer<UInt8>, prefixSpace: Bool, scratch s: inout Scratch, into out: inout [Int32]) {
        var e = [UInt8](), sym = [MergeSymbol](), queue = MergeQueue()
        swap(&e, &s.escaped)
        swap(&sym, &s.symbols)
        swap(&queue, &s.queue)
        defer {
            swap(&e, &s.escaped)
            swap(&sym, &s.symbols)
            swap(&queue, &s.queue)
        }
        e.removeAll(keepingCapacity: true)
        sym.removeAll(keepingCapacity: true)
        queue.removeAll()
        e.reserveCapacity(text.count + 3)
        if prefixSpace { e.append(contentsOf: [0xE2, 0x96, 0x81]) }
        for b in text {
            if b == 0x20 { e.append(contentsOf: [0xE2, 0x96, 0x81]) } else { e.append(b) }
        }
        let n = e.count
        guard n > 0 else { return }
        e.withUnsafeBufferPointer { eb in
            let base = eb.baseAddress!
            var offset = 0
            var index: Int32 = 0
            while offset < n {
                let b0 = base[offset]
                let len = min(b0 < 0xC0 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4, n - offset)  // unicode_len_utf8
                sym.append(MergeSymbol(start: Int32(offset), length: Int32(len), prev: index - 1,
                                       next: offset + len == n ? -1 : index + 1, id: -1))
                offset += len
                index += 1
            }
            let count = sym.count
            sym.withUnsafeMutableBufferPointer { buffer in
                let sym = buffer.baseAddress!
                for i in 1..<count { addPair(base, sym, Int32(i - 1), Int32(i), &queue, ordered: false) }
                queue.heapify()
                while let c = queue.pop() {
                    let l = Int(c.left)
                    if sym[l].length == 0 { continue }
                    let r = Int(sym[l].next)
                    if r < 0 || sym[r].length == 0 || sym[l].length + sym[r].length != c.size { continue }
                    sym[l].length += sym[r].length
                    sym[l].id = c.result
                    sym[r].length = 0
                    sym[l].next = sym[r].next
                    if sym[r].next >= 0 { sym[Int(sym[r].next)].prev = c.left }
                    addPair(base, sym, sym[l].prev, c.left, &queue)
                    addPair(base, sym, c.left, sym[l].next, &queue)
                }
                var i: Int32 = 0
                while i >= 0 {
                    let symbol = sym[Int(i)]
                    let id = symbol.id >= 0 ? symbol.id : table.lookup(base + Int(symbol.start), Int(symbol.length))
                    if id >= 0 {
                        out.append(id)
                    } else {
                        for k in Int(symbol.start)..<Int(symbol.start + symbol.length) {
                            let t = byteToken[Int(base[k])]
                            if t >= 0 { out.append(t) }
                        }
                    }
                    i = symbol.next
                }
            }
        }
    }

    @inline(__always)
    private func addPair(_ text: UnsafePointer<UInt8>, _ sym: UnsafeMutablePointer<MergeSymbol>, _ l: Int32, _ r: Int32,
                         _ queue: inout MergeQueue,
                         ordered: Bool = true) {
        guard l >= 0, r >= 0 else { return }
        let a = sym[Int(l)], b = sym[Int(r)]
        let size = a.length + b.length
        let id = table.lookup(text + Int(a.start), Int(size))
        guard id >= 0, Int(id) < scores.count else { return }
        let candidate = MergeCandidate(key: MergeQueue.spmKey(score: scores[Int(id)], left: l),
                                  size: size, result: id)
        if ordered { queue.push(candidate) } else { queue.appendUnordered(candidate) }
    }
}
