// The Llama 3 pre-tokenizer regex
//     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// and Qwen 2's, which differs only in `\p{N}` (one digit per word) instead of `\p{N}{1,3}`, as llama.cpp's
// `unicode_regex_split_custom_llama3` / `unicode_regex_split_custom_qwen2` (unicode.cpp) evaluate them,
// quirks included: digit runs are cut into groups of three from the left ("12345" -> "123" "45");
// `\s*[\r\n]+` runs to the last CR/LF of a whitespace run; case folding of contractions is ASCII-only
// (llama.cpp's `unicode_tolower` maps no other codepoint onto s/t/r/e/v/m/l/d).
// Own implementation over codepoint/flag arrays; no deviations known.

extension PreTokenizer {
    /// Splits codepoints `ini..<end` (`digitGroup` 3 for Llama 3, 1 for Qwen 2) and appends word ends to `out`.
    static func splitLlama3(_ c: UnsafePointer<UInt32>, _ f: UnsafePointer<UInt16>, _ ini: Int, _ end: Int,
                            digitGroup: Int, _ out: inout [Int]) {
        @inline(__always) func flags(_ p: Int) -> CodepointFlags {
            p < end ? CodepointFlags(rawValue: f[p]) : .outOfRange
        }
        @inline(__always) func cpt(_ p: Int) -> UInt32 { p < end ? c[p] : UInt32.max }
        @inline(__always) func isCRLF(_ x: UInt32) -> Bool { x == 0x0D || x == 0x0A }
        var pos = ini
        var prevEnd = ini
        @inline(__always) func emit(_ e: Int) {
            if e > prevEnd { out.append(e) }
            prevEnd = e
        }
        while pos < end {
            let cp = c[pos]
            let fl = flags(pos)

            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if cp == 0x27 && pos + 1 < end {
                let n1 = asciiLower(c[pos + 1])
                if n1 == 0x73 || n1 == 0x74 || n1 == 0x6D || n1 == 0x64 {
                    pos += 2; emit(pos); continue
                }
                if pos + 2 < end {
                    let n2 = asciiLower(c[pos + 2])
                    if (n1 == 0x72 && n2 == 0x65) || (n1 == 0x76 && n2 == 0x65) || (n1 == 0x6C && n2 == 0x6C) {
                        pos += 3; emit(pos); continue
                    }
                }
            }

            // [^\r\n\p{L}\p{N}]?\p{L}+
            if !(isCRLF(cp) || fl.isNumber) {
                if fl.isLetter || flags(pos + 1).isLetter {
                    pos += 1
                    while flags(pos).isLetter { pos += 1 }
                    emit(pos); continue
                }
            }

            // \p{N}{1,3}  (Qwen 2: \p{N})
            if fl.isNumber {
                if digitGroup == 1 {
                    pos += 1; emit(pos); continue
                }
                var groupStart = pos
                while flags(pos).isNumber {
                    pos += 1
                    if pos - groupStart >= digitGroup {
                        emit(pos)
                        groupStart = pos
                    }
                }
                emit(pos); continue
            }

            // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
            var f2 = cp == 0x20 ? flags(pos + 1) : fl
            if !(f2.isWhitespace || f2.isLetter || f2.isNumber) && fl.isPresent {
                if cp == 0x20 { pos += 1 }
                while f2.isOther { pos += 1; f2 = flags(pos) }
                while isCRLF(cpt(pos)) { pos += 1 }
                emit(pos); continue
            }

            var whitespace = 0
            var lastCRLFEnd = 0
            while flags(pos + whitespace).isWhitespace {
                if isCRLF(c[pos + whitespace]) { lastCRLFEnd = pos + whitespace + 1 }
                whitespace += 1
            }
            // \s*[\r\n]+
            if lastCRLFEnd > 0 {
                pos = lastCRLFEnd; emit(pos); continue
            }
            // \s+(?!\S)
            if whitespace > 1 && pos + whitespace < end {
                pos += whitespace - 1; emit(pos); continue
            }
            // \s+
            if whitespace > 0 {
                pos += whitespace; emit(pos); continue
            }
            pos += 1
            emit(pos)
        }
    }
}
