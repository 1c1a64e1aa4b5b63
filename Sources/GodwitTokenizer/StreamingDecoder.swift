// Incremental detokenization for streaming generation. llama.cpp's server appends token pieces
// (`common_token_to_piece`) to a buffer and sends only its complete UTF-8 prefix (`validate_utf8`,
// tools/server/server-common.cpp); this does the same: each `append` returns the text that became complete, holding back a character
// whose bytes are split across tokens until its last byte arrives.
// The first piece loses one leading space when the tokenizer adds a space prefix, as `decode` does.
// Deviation from `decode`: llama.cpp's `clean_spaces` passes (BPE models other than smollm/qwen2 style)
// need the whole text and are not applied, like llama.cpp's own streaming.

public struct StreamingDecoder: Sendable {
    public let tokenizer: Tokenizer
    public let renderSpecial: Bool
    private var pending: [UInt8] = []
    private var isFirst = true

    public init(tokenizer: Tokenizer, renderSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.renderSpecial = renderSpecial
    }

    /// Adds one token; returns the newly complete text (possibly empty).
    public mutating func append(_ id: Int32) -> String {
        var p = tokenizer.piece(for: id, renderSpecial: renderSpecial)
        if isFirst {
            if tokenizer.addSpacePrefix && p.first == 0x20 { p.removeFirst() }
            isFirst = false
        }
        pending.append(contentsOf: p)
        let cut = Self.completePrefixLength(pending)
        guard cut > 0 else { return "" }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    /// Returns whatever is held back (an incomplete character becomes U+FFFD) and starts over.
    public mutating func flush() -> String {
        defer {
            pending.removeAll()
            isFirst = true
        }
        return pending.isEmpty ? "" : String(decoding: pending, as: UTF8.self)
    }

    /// Length of the longest prefix that does not end inside a possibly incomplete UTF-8 sequence.
    /// Bytes that can never become valid are released (they decode to U+FFFD).
    static func completePrefixLength(_ b: [UInt8]) -> Int {
        let n = b.count
        var i = n - 1
        var back = 0
        // Walk back over at most 3 continuation bytes to the last lead byte.
        while i >= 0 && back < 4 {
            let c = b[i]
            if c & 0xC0 != 0x80 {
                let need: Int
                switch c {
                case 0x00...0x7F: need = 1
                case 0xC2...0xDF: need = 2
                case 0xE0...0xEF: need = 3
                case 0xF0...0xF4: need = 4
                default: return n  // invalid lead byte: nothing to wait for
                }
                return n - i < need ? i : n
            }
            i -= 1
            back += 1
        }
        return n
    }
}
