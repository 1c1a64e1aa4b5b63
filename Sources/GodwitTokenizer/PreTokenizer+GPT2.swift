// The GPT-2 pre-tokenizer regex
//     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// as llama.cpp's hand-written `unicode_regex_split_custom_gpt2` (unicode.cpp) evaluates it, quirks included:
// positions outside the current piece have no flags, so a piece boundary ends every run; `\s+(?!\S)` gives
// back the last whitespace only when something follows inside the piece; contractions are case-sensitive.
// Own implementation over codepoint/flag arrays; no deviations known.

extension PreTokenizer {
    /// Splits codepoints `ini..<end` and appends the end index of each word to `out`.
    static func splitGPT2(_ c: UnsafePointer<UInt32>, _ f: UnsafePointer<UInt16>, _ ini: Int, _ end: Int,
                          _ out: inout [Int]) {
        @inline(__always) func flags(_ p: Int) -> CodepointFlags {
            p < end ? CodepointFlags(rawValue: f[p]) : .outOfRange
        }
        var pos = ini
        var prevEnd = ini
        @inline(__always) func emit(_ e: Int) {
            if e > prevEnd { out.append(e) }
            prevEnd = e
        }
        let space: UInt32 = 0x20
        while pos < end {
            let cpt = c[pos]
            let fl = flags(pos)

            // 's|'t|'re|'ve|'m|'ll|'d
            if cpt == 0x27 && pos + 1 < end {
                let n1 = c[pos + 1]
                if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 {  // s t m d
                    pos += 2; emit(pos); continue
                }
                if pos + 2 < end {
                    let n2 = c[pos + 2]
                    if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {  // re ve ll
                        pos += 3; emit(pos); continue
                    }
                }
            }

            var f2 = cpt == space ? flags(pos + 1) : fl
            // ' ?\p{L}+'
            if f2.isLetter {
                if cpt == space { pos += 1 }
                while f2.isLetter { pos += 1; f2 = flags(pos) }
                emit(pos); continue
            }
            // ' ?\p{N}+'
            if f2.isNumber {
                if cpt == space { pos += 1 }
                while f2.isNumber { pos += 1; f2 = flags(pos) }
                emit(pos); continue
            }
            // ' ?[^\s\p{L}\p{N}]+'
            if f2.isOther {
                if cpt == space { pos += 1 }
                while f2.isOther { pos += 1; f2 = flags(pos) }
                emit(pos); continue
            }

            var whitespace = 0
            while flags(pos + whitespace).isWhitespace { whitespace += 1 }
            // '\s+(?!\S)'
            if whitespace > 1 && pos + whitespace < end {
                pos += whitespace - 1; emit(pos); continue
            }
            // '\s+'
            if whitespace > 0 {
                pos += whitespace; emit(pos); continue
            }
            // no match: one codepoint alone
            pos += 1
            emit(pos)
        }
    }
}
