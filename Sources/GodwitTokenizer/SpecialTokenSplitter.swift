// Special-token partitioning: llama.cpp `llama_vocab::impl::tokenizer_st_partition` (llama-vocab.cpp).
// Control, user-defined and unknown tokens are cut out of the text before the normal tokenizer sees it:
// for each such token, longest text first, every leftmost non-overlapping occurrence that lies wholly in
// text not yet cut out becomes that token. Without `parse_special`, control and unknown tokens are left
// alone but user-defined ones are still cut out (Gemma 3's runs of spaces, newlines and tabs, HTML tags).
// Deviations: instead of one substring search per special token over all fragments (6,414 searches for
// Gemma 3), one pass over the text with a byte trie finds every occurrence of every special token, and
// the occurrences are then accepted in llama.cpp's order (token priority, then position), which yields
// the same partition. Tokens of equal length are ordered by id (llama.cpp's std::sort leaves that order
// unspecified; it only matters for two same-length tokens overlapping in the text). LSTRIP/RSTRIP
// attributes are not supported (llama.cpp sets them only for phi-3, jina and modern-bert).

struct SpecialTokenSplitter: Sendable {
    enum Fragment: Equatable {
        case text(Range<Int>)
        case token(Int32)
    }

    /// Trie: node 0 is the root; `rootChild[b]` is the root's child for byte b (-1: none).
    private let rootChild: [Int32]
    /// Transitions below the root: (node << 8 | byte) -> child.
    private let children: [UInt64: Int32]
    /// Per node: the special token ending there (-1: none).
    private let terminal: [Int32]
    /// Per token id: priority (position in llama.cpp's longest-first order), -1 if not special.
    private let priority: [Int32]
    /// Special token ids in priority order.
    private let tokenByPriority: [Int32]
    /// Per token id: true for control/unknown tokens (skipped without parse_special).
    private let needsParseSpecial: [Bool]
    private let lengths: [Int32]

    init(tokens: [String], attributes: [TokenAttributes]) {
        let special: TokenAttributes = [.control, .userDefined, .unknown]
        var ids = [Int32]()
        for (i, a) in attributes.enumerated() where !a.isDisjoint(with: special) { ids.append(Int32(i)) }
        var lengths = [Int32](repeating: 0, count: tokens.count)
        for id in ids { lengths[Int(id)] = Int32(tokens[Int(id)].utf8.count) }
        ids.sort { lengths[Int($0)] != lengths[Int($1)] ? lengths[Int($0)] > lengths[Int($1)] : $0 < $1 }
        var priority = [Int32](repeating: -1, count: tokens.count)
        var needs = [Bool](repeating: false, count: tokens.count)
        var rootChild = [Int32](repeating: -1, count: 256)
        var children = [UInt64: Int32]()
        var terminal: [Int32] = [-1]
        for (rank, id) in ids.enumerated() {
            priority[Int(id)] = Int32(rank)
            needs[Int(id)] = !attributes[Int(id)].isDisjoint(with: [.control, .unknown])
            var node: Int32 = 0
            for b in tokens[Int(id)].utf8 {
                if node == 0 {
                    if rootChild[Int(b)] < 0 {
                        rootChild[Int(b)] = Int32(terminal.count)
                        terminal.append(-1)
                    }
                    node = rootChild[Int(b)]
                } else {
                    let key = UInt64(node) << 8 | UInt64(b)
                    if let c = children[key] {
                        node = c
                    } else {
                        let c = Int32(terminal.count)
                        terminal.append(-1)
                        children[key] = c
                        node = c
                    }
                }
            }
            // Longest first, then lowest id: keep the first token assigned to a node (same text twice).
            if node != 0 && terminal[Int(node)] < 0 { terminal[Int(node)] = id }
        }
        self.rootChild = rootChild
        self.children = children
        self.terminal = terminal
        self.priority = priority
        self.tokenByPriority = ids
        self.needsParseSpecial = needs
        self.lengths = lengths
    }

    /// Partitions `text` into raw-text ranges and special tokens, in order.
    /// Occurrences are resolved in independent groups: once the scan passes the end of every occurrence
    /// seen so far, nothing later can overlap them, so memory stays proportional to the longest chain of
    /// overlapping occurrences rather than to the text.
    func split(_ text: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [Fragment] {
        let n = text.count
        guard n > 0 else { return [] }
        var out = [Fragment]()
        var cursor = 0
        var group = [UInt64]()  // priority << 32 | start
        var groupStart = 0, groupEnd = 0
        var claimed = [Bool]()
        var accepted = [(start: Int, token: Int32)]()

        func resolveGroup() {
            group.sort()
            claimed.removeAll(keepingCapacity: true)
            claimed.append(contentsOf: repeatElement(false, count: groupEnd - groupStart))
            accepted.removeAll(keepingCapacity: true)
            for f in group {
                let start = Int(f & 0xFFFF_FFFF)
                let token = tokenByPriority[Int(f >> 32)]
                let lo = start - groupStart, hi = lo + Int(lengths[Int(token)])
                var free = true
                for k in lo..<hi where claimed[k] { free = false; break }
                guard free else { continue }
                for k in lo..<hi { claimed[k] = true }
                accepted.append((start, token))
            }
            accepted.sort { $0.start < $1.start }
            for a in accepted {
                if a.start > cursor { out.append(.text(cursor..<a.start)) }
                out.append(.token(a.token))
                cursor = a.start + Int(lengths[Int(a.token)])
            }
            group.removeAll(keepingCapacity: true)
        }

        for start in 0..<n {
            if !group.isEmpty && start >= groupEnd { resolveGroup() }
            var node = rootChild[Int(text[start])]
            var pos = start + 1
            while node >= 0 {
                let t = terminal[Int(node)]
                if t >= 0 && (parseSpecial || !needsParseSpecial[Int(t)]) {
                    if group.isEmpty {
                        groupStart = start
                        groupEnd = start
                    }
                    group.append(UInt64(priority[Int(t)]) << 32 | UInt64(start))
                    groupEnd = max(groupEnd, pos)
                }
                guard pos < n, let next = children[UInt64(node) << 8 | UInt64(text[pos])] else { break }
                node = next
                pos += 1
            }
        }
        if !group.isEmpty { resolveGroup() }
        if cursor < n { out.append(.text(cursor..<n)) }
        return out
    }
}
