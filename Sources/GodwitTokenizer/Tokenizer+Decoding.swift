// Detokenization: llama.cpp `llama_vocab::impl::token_to_piece` and `impl::detokenize` (llama-vocab.cpp)
// as `common_detokenize` calls them (remove_special = false).
// piece: control and unknown tokens are empty unless `renderSpecial`; control, unknown and user-defined
// tokens otherwise render their text; normal tokens map back from the byte-level alphabet (BPE,
// `llama_decode_text`) or turn '▁' into ' ' (SentencePiece); byte tokens `<0xXX>` give their byte;
// unused/undefined tokens are empty.
// decode: pieces concatenated; when `add_space_prefix` is set, one leading space of the first token's
// piece is dropped; with `clean_spaces` (most BPE pre-tokenizers, not smollm/qwen2) llama.cpp's three
// clean-up passes run: " ?", " !", " .", " ," lose the space, " ' " loses both spaces, and " 's", " 'm",
// " 're", " 've" lose the space.
// Deviation: ids out of range decode to nothing instead of aborting.

extension Tokenizer {
    /// The bytes token `id` stands for (possibly a partial UTF-8 character).
    public func piece(for id: Int32, renderSpecial: Bool = false) -> [UInt8] {
        guard id >= 0, Int(id) < tokens.count else { return [] }
        let attr = attributes[Int(id)]
        if !renderSpecial && !attr.isDisjoint(with: [.unknown, .control]) { return [] }
        let text = tokens[Int(id)]
        if !attr.isDisjoint(with: [.unknown, .control, .userDefined]) { return Array(text.utf8) }
        if attr.contains(.normal) {
            switch model {
            case .bytePair: return ByteLevelAlphabet.decodeForDisplay(text)
            case .sentencePiece: return Self.unescapeWhitespace(text)
            }
        }
        if attr.contains(.byte) { return [Self.byteValue(text)] }
        return []
    }

    /// `decode` of a token sequence, as llama.cpp's `common_detokenize(ctx, ids, renderSpecial)`.
    /// Invalid UTF-8 (e.g. a sequence cut in the middle of a character) becomes U+FFFD.
    public func decode(_ ids: [Int32], renderSpecial: Bool = false) -> String {
        String(decoding: decodeBytes(ids, renderSpecial: renderSpecial), as: UTF8.self)
    }

    /// The bytes of `decode`.
    public func decodeBytes(_ ids: [Int32], renderSpecial: Bool = false) -> [UInt8] {
        var out = [UInt8]()
        var removeSpace = addSpacePrefix
        for id in ids {
            var p = piece(for: id, renderSpecial: renderSpecial)
            if removeSpace && p.first == 0x20 { p.removeFirst() }
            removeSpace = false
            out.append(contentsOf: p)
        }
        if cleanSpaces { Self.cleanUpSpaces(&out) }
        return out
    }

    /// '▁' (U+2581) -> ' '.
    static func unescapeWhitespace(_ text: String) -> [UInt8] {
        let u = Array(text.utf8)
        var out = [UInt8]()
        out.reserveCapacity(u.count)
        var i = 0
        while i < u.count {
            if i + 2 < u.count && u[i] == 0xE2 && u[i + 1] == 0x96 && u[i + 2] == 0x81 {
                out.append(0x20)
                i += 3
            } else {
                out.append(u[i])
                i += 1
            }
        }
        return out
    }

    /// The byte of a `<0xXX>` token (strtol on characters 3...4; 0 if they are not hex digits).
    static func byteValue(_ text: String) -> UInt8 {
        let u = Array(text.utf8)
        guard u.count >= 5 else { return 0 }
        func hex(_ c: UInt8) -> Int? {
            switch c {
            case 0x30...0x39: Int(c - 0x30)
            case 0x41...0x46: Int(c - 0x41 + 10)
            case 0x61...0x66: Int(c - 0x61 + 10)
            default: nil
            }
        }
        guard let hi = hex(u[3]) else { return 0 }
        guard let lo = hex(u[4]) else { return UInt8(hi) }
        return UInt8(hi * 16 + lo)
    }

    /// llama.cpp's `clean_spaces` passes of `detokenize`, on bytes.
    static func cleanUpSpaces(_ t: inout [UInt8]) {
        let space: UInt8 = 0x20, quote: UInt8 = 0x27
        // 1: " ?", " !", " .", " ," -> drop the space
        if t.count > 1 {
            var out = [UInt8](); out.reserveCapacity(t.count)
            out.append(t[0])
            for i in 1..<t.count {
                let x = t[i]
                if t[i - 1] == space && (x == 0x3F || x == 0x21 || x == 0x2E || x == 0x2C) { out.removeLast() }
                out.append(x)
            }
            t = out
        }
        // 2: " ' " -> "'"
        if t.count > 1 {
            var out = [UInt8](); out.reserveCapacity(t.count)
            out.append(t[0])
            var i = 1
            var dropped = -1  // llama.cpp overwrites the dropped space with NUL, so it no longer counts as one
            while i < t.count {
                let x = t[i]
                if x == quote && i + 1 < t.count && t[i - 1] == space && i - 1 != dropped && t[i + 1] == space {
                    out.removeLast()
                    out.append(x)
                    dropped = i + 1
                    i += 2
                    continue
                }
                out.append(x)
                i += 1
            }
            t = out
        }
        // 3: " 's", " 'm", " 're", " 've" -> drop the space
        if t.count > 1 {
            var out = [UInt8](); out.reserveCapacity(t.count)
            out.append(t[0])
            for i in 1..<t.count {
                let x = t[i]
                if t[i - 1] == space && x == quote && i + 1 < t.count {
                    let x1 = t[i + 1]
                    if x1 == 0x73 || x1 == 0x6D {
                        out.removeLast()
                    } else if x1 != 0x74 && x1 != 0x64 && i + 2 < t.count {
                        let x2 = t[i + 2]
                        if (x1 == 0x72 && x2 == 0x65) || (x1 == 0x76 && x2 == 0x65) { out.removeLast() }
                    }
                }
                out.append(x)
            }
            t = out
        }
    }
}
