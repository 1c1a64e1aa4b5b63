// GPT-2's byte-to-unicode alphabet: llama.cpp `unicode_byte_to_utf8_map` / `unicode_utf8_to_byte_map`
// (unicode.cpp), the same table as OpenAI's `bytes_to_unicode()` and HF tokenizers' ByteLevel.
// Printable bytes '!'...'~', '¡'...'¬', '®'...'ÿ' stand for themselves; the other 68 bytes map, in order,
// to U+0100, U+0101, ... (so ' ' is 'Ġ' U+0120 and '\n' is 'Ċ' U+010A).
// Deviation: instead of byte-encoding each pre-token (unicode_byte_encoding_process) before BPE, the
// vocabulary and merges are decoded back to raw bytes once at load time and BPE runs on the raw bytes;
// the mapping is a bijection, so the result is the same.

enum ByteLevelAlphabet {
    /// Codepoint standing for each byte.
    static let codepointForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = 256 + n
                n += 1
            }
        }
        return table
    }()

    /// Byte for each codepoint below 0x144 (-1 for codepoints outside the alphabet).
    static let byteForCodepoint: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for b in 0..<256 { table[Int(codepointForByte[b])] = Int16(b) }
        return table
    }()

    /// llama.cpp `llama_decode_text`: each character maps back to its byte; a character outside the
    /// alphabet becomes "[UNK_BYTE_0x<its utf-8 hex><the whole text>]", as llama.cpp writes it.
    static func decodeForDisplay(_ text: String) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count)
        for s in text.unicodeScalars {
            let v = Int(s.value)
            if v < byteForCodepoint.count, byteForCodepoint[v] >= 0 {
                out.append(UInt8(byteForCodepoint[v]))
            } else {
                out.append(contentsOf: Array("[UNK_BYTE_0x".utf8))
                let hex = Array("0123456789abcdef".utf8)
                for b in String(s).utf8 {
                    out.append(hex[Int(b >> 4)])
                    out.append(hex[Int(b & 15)])
                }
                out.append(contentsOf: Array(text.utf8))
                out.append(UInt8(ascii: "]"))
            }
        }
        return out
    }
}
