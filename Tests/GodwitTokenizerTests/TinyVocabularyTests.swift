// Tokenizers built from hand-made vocabularies (no model files): the BPE merge order, the pre-tokenizer
// variants, special-token partitioning, SentencePiece scores and byte fallback, decoding rules, errors.
import GodwitTokenizer
import Testing

/// A byte-level BPE vocabulary: 3 control tokens, the 256 alphabet characters, then merge results.
func tinyBPE(pre: String?, merges: [String], extra: [(String, Int)] = []) throws -> Tokenizer {
    var tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    var types = [3, 3, 3]
    for b in 0..<256 { tokens.append(byteLevel([UInt8(b)])); types.append(1) }
    for m in merges {
        let merged = m.replacingOccurrences(of: " ", with: "")
        if !tokens.contains(merged) { tokens.append(merged); types.append(1) }
    }
    for (t, type) in extra { tokens.append(t); types.append(type) }
    return try Tokenizer(vocabulary: TokenizerVocabulary(
        model: "gpt2", preTokenizer: pre, tokens: tokens, tokenTypes: types, merges: merges,
        bosID: 0, eosID: 0))
}

/// GPT-2's byte-to-unicode mapping, written out independently of the library.
func byteLevel(_ bytes: [UInt8]) -> String {
    var s = ""
    for b in bytes {
        let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
        if printable { s.unicodeScalars.append(Unicode.Scalar(b)); continue }
        var n: UInt32 = 0
        for c in 0..<Int(b) where !((0x21...0x7E).contains(c) || (0xA1...0xAC).contains(c) || (0xAE...0xFF).contains(c)) {
            n += 1
        }
        s.unicodeScalars.append(Unicode.Scalar(256 + n)!)
    }
    return s
}

@Suite("Tiny vocabularies")
struct TinyVocabularyTests {
    static let helloMerges = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d"]

    @Test("byte-level BPE merges and round trip")
    func bpe() throws {
        let tok = try tinyBPE(pre: "gpt-2", merges: Self.helloMerges)
        let hello = try #require(tok.tokenID(for: "hello")), world = try #require(tok.tokenID(for: "Ġworld"))
        #expect(tok.encode("hello world", addSpecial: false, parseSpecial: false) == [hello, world])
        #expect(tok.decode([hello, world]) == "hello world")
        // Unmerged bytes map to their alphabet tokens; decoding restores every byte.
        let text = "héllo\tworld\n 🙂"
        let ids = tok.encode(text, addSpecial: false, parseSpecial: false)
        #expect(tok.decode(ids) == text)
        #expect(tok.kind == "gpt2" && tok.preTokenizer == "gpt-2")
    }

    @Test("lowest rank merges first, leftmost on ties")
    func mergeOrder() throws {
        // "a a" (rank 0) beats "a b"; in "aaa" the leftmost pair merges first.
        let tok = try tinyBPE(pre: "gpt-2", merges: ["a a", "a b", "aa a"])
        let aa = try #require(tok.tokenID(for: "aa")), a = try #require(tok.tokenID(for: "a"))
        let ab = try #require(tok.tokenID(for: "ab")), aaa = try #require(tok.tokenID(for: "aaa"))
        #expect(tok.encode("aab", addSpecial: false, parseSpecial: false) == [aa, try #require(tok.tokenID(for: "b"))])
        #expect(tok.encode("aaaa", addSpecial: false, parseSpecial: false) == [aa, aa])
        #expect(tok.encode("aaa", addSpecial: false, parseSpecial: false) == [aaa])
        #expect(tok.encode("ab", addSpecial: false, parseSpecial: false) == [ab])
        #expect(tok.encode("a", addSpecial: false, parseSpecial: false) == [a])
    }

    @Test("pre-tokenizers split digits as llama.cpp does")
    func digits() throws {
        let merges = ["1 2", "12 3", "4 5", "Ġ 1"]
        func words(_ pre: String, _ text: String) throws -> [String] {
            let tok = try tinyBPE(pre: pre, merges: merges)
            return tok.encode(text, addSpecial: false, parseSpecial: false).map { tok.token($0) }
        }
        // smollm: every digit alone (\p{N}), even where merges exist.
        #expect(try words("smollm", "12345") == ["1", "2", "3", "4", "5"])
        // gpt-2: digit runs stay whole, then merge.
        #expect(try words("gpt-2", "12345") == ["123", "45"])
        // " 123": "1 2" (rank 0) and then "12 3" (rank 1) beat "Ġ 1" (rank 3).
        #expect(try words("gpt-2", " 123") == ["Ġ", "123"])
        // llama3: groups of three from the left, "12345" -> "123" "45".
        #expect(try words("llama-bpe", "12345") == ["123", "45"])
        #expect(try words("llama-bpe", "1234") == ["123", "4"])
        // qwen2: one digit per word.
        #expect(try words("qwen2", "12345") == ["1", "2", "3", "4", "5"])
        // default: \p{N}+ then [0-9]{3} triples; the space is split off numbers.
        #expect(try words("default", " 12345") == ["Ġ", "123", "45"])
    }

    @Test("contractions, whitespace and newline rules of GPT-2 vs Llama 3")
    func regexQuirks() throws {
        let merges = ["' s", "' S", "Ġ Ġ", "Ċ Ċ", "Ġ Ċ", "ĠĠ Ġ"]
        func words(_ pre: String, _ text: String) throws -> [String] {
            let tok = try tinyBPE(pre: pre, merges: merges)
            return tok.encode(text, addSpecial: false, parseSpecial: false).map { tok.token($0) }
        }
        // GPT-2 contractions are case-sensitive, Llama 3's are not.
        #expect(try words("gpt-2", "it's IT'S") == ["i", "t", "'s", "Ġ", "I", "T", "'", "S"])
        #expect(try words("llama-bpe", "it's IT'S") == ["i", "t", "'s", "Ġ", "I", "T", "'S"])
        // \s+(?!\S): a run of spaces before a word gives back its last space.
        #expect(try words("gpt-2", "a   b") == ["a", "ĠĠ", "Ġ", "b"])
        // Llama 3's \s*[\r\n]+ takes the spaces up to the last newline as one word; GPT-2's \s+(?!\S)
        // leaves the last whitespace character for a word of its own.
        #expect(try words("llama-bpe", "a \n\nb") == ["a", "Ġ", "ĊĊ", "b"])
        #expect(try words("gpt-2", "a \n\nb") == ["a", "ĠĊ", "Ċ", "b"])
        // Llama 3: one non-letter may lead a word ("[^\r\n\p{L}\p{N}]?\p{L}+").
        let llama = try tinyBPE(pre: "llama-bpe", merges: ["( a", "(a b"])
        #expect(llama.encode("(ab", addSpecial: false, parseSpecial: false).map { llama.token($0) } == ["(ab"])
        let gpt2 = try tinyBPE(pre: "gpt-2", merges: ["( a", "(a b"])
        #expect(gpt2.encode("(ab", addSpecial: false, parseSpecial: false).map { gpt2.token($0) } == ["(", "a", "b"])
    }

    @Test("codepoints assigned after Unicode 15.1 are unassigned, as in llama.cpp's table")
    func unicodeVersion() throws {
        // U+1C89 (Unicode 16, a Cyrillic letter) is no letter to llama.cpp, so GPT-2's \p{L}+ stops at it:
        // with a merge "a" + its first byte-level character, the merge must not happen across words.
        let first = byteLevel([0xE1])  // U+1C89 is E1 B2 89 in UTF-8
        let tok = try tinyBPE(pre: "gpt-2", merges: ["a \(first)"])
        let ids = tok.encode("a\u{1C89}b", addSpecial: false, parseSpecial: false)
        #expect(ids.map { tok.token($0) } == ["a", byteLevel([0xE1]), byteLevel([0xB2]), byteLevel([0x89]), "b"])
        // A letter from Unicode 15.0 or older joins the word: "aé" is one word, so "a" + "Ã" merges.
        let tok2 = try tinyBPE(pre: "gpt-2", merges: ["a \(byteLevel([0xC3]))"])
        let ids2 = tok2.encode("a\u{E9}", addSpecial: false, parseSpecial: false)
        #expect(ids2.map { tok2.token($0) } == ["a" + byteLevel([0xC3]), byteLevel([0xA9])])
    }

    @Test("special tokens: parse_special, longest first, user-defined always")
    func specialTokens() throws {
        let tok = try tinyBPE(pre: "gpt-2", merges: Self.helloMerges,
                              extra: [("<br>", 4), ("ab", 4), ("bcd", 4)])
        let start = try #require(tok.tokenID(for: "<|im_start|>")), end = try #require(tok.tokenID(for: "<|im_end|>"))
        let hello = try #require(tok.tokenID(for: "hello")), br = try #require(tok.tokenID(for: "<br>"))
        #expect(tok.encode("<|im_start|>hello<|im_end|>", addSpecial: false, parseSpecial: true) == [start, hello, end])
        let plain = tok.encode("<|im_start|>hello", addSpecial: false, parseSpecial: false)
        #expect(!plain.contains(start) && tok.decode(plain) == "<|im_start|>hello")
        // User-defined tokens are split out even without parse_special.
        #expect(tok.encode("hello<br>hello", addSpecial: false, parseSpecial: false) == [hello, br, hello])
        // Longer special tokens claim text first, as in llama.cpp: "abcd" -> "a" + "bcd", not "ab" + "cd".
        let abcd = tok.encode("abcd", addSpecial: false, parseSpecial: false)
        #expect(abcd == [try #require(tok.tokenID(for: "a")), try #require(tok.tokenID(for: "bcd"))])
        // User-defined tokens render their text.
        #expect(tok.decode([br]) == "<br>")
        // addSpecial adds BOS/EOS only as add_bos/add_eos say (gpt2 default: neither).
        #expect(tok.encode("hello", addSpecial: true, parseSpecial: false) == [hello])
    }

    @Test("unknown pre-tokenizer names fall back to the default splitter")
    func unknownPre() throws {
        let tok = try tinyBPE(pre: "some-future-model", merges: Self.helloMerges)
        #expect(tok.preTokenizer == "some-future-model")
        #expect(tok.decode(tok.encode("hello world 123!?", addSpecial: false, parseSpecial: false)) == "hello world 123!?")
        let none = try tinyBPE(pre: nil, merges: Self.helloMerges)
        #expect(none.preTokenizer == "default")
    }

    @Test("clean_spaces for BPE models that ask for it")
    func cleanSpaces() throws {
        let gpt2 = try tinyBPE(pre: "gpt-2", merges: [])
        let ids = gpt2.encode("a , b ' c 's", addSpecial: false, parseSpecial: false)
        #expect(gpt2.decode(ids) == "a, b'c's")
        let smol = try tinyBPE(pre: "smollm", merges: [])
        #expect(smol.decode(smol.encode("a , b ' c 's", addSpecial: false, parseSpecial: false)) == "a , b ' c 's")
    }

    /// A SentencePiece vocabulary with byte tokens and scores.
    static func tinySPM(addSpacePrefix: Bool? = nil, extra: [(String, Float, Int)] = []) throws -> Tokenizer {
        var tokens = ["<unk>", "<s>", "</s>"], scores: [Float] = [0, 0, 0], types = [2, 3, 3]
        for b in 0..<256 {
            tokens.append("<0x" + String(b, radix: 16, uppercase: true).leftPadded(2) + ">")
            scores.append(0)
            types.append(6)
        }
        let pieces: [(String, Float)] = [
            ("▁", -1), ("h", -2), ("e", -2), ("l", -2), ("o", -2), ("w", -2), ("r", -2), ("d", -2),
            ("▁h", -3), ("he", -4), ("ll", -5), ("▁he", -6), ("llo", -7), ("▁hello", -8),
            ("▁w", -3), ("or", -4), ("▁wor", -5), ("▁worl", -6), ("▁world", -7),
        ]
        for (p, s) in pieces { tokens.append(p); scores.append(s); types.append(1) }
        for (p, s, t) in extra { tokens.append(p); scores.append(s); types.append(t) }
        return try Tokenizer(vocabulary: TokenizerVocabulary(
            model: "llama", tokens: tokens, scores: scores, tokenTypes: types, addSpacePrefix: addSpacePrefix))
    }

    @Test("SentencePiece: space prefix, score order, byte fallback, decode")
    func sentencePiece() throws {
        let tok = try Self.tinySPM()
        #expect(tok.kind == "llama" && tok.bosID == 1 && tok.eosID == 2 && tok.addBOS)
        let hello = try #require(tok.tokenID(for: "▁hello")), world = try #require(tok.tokenID(for: "▁world"))
        #expect(tok.encode("hello world", addSpecial: true, parseSpecial: false) == [1, hello, world])
        #expect(tok.encode("hello world", addSpecial: false, parseSpecial: false) == [hello, world])
        // llama.cpp keeps the space of the first word when a BOS precedes it (common_detokenize).
        #expect(tok.decode([hello, world]) == "hello world")
        #expect(tok.decode([1, hello, world]) == " hello world")
        // 'é' is not a token: its two UTF-8 bytes become <0xC3> <0xA9>.
        let ids = tok.encode("hé", addSpecial: false, parseSpecial: false)
        let c3 = try #require(tok.tokenID(for: "<0xC3>")), a9 = try #require(tok.tokenID(for: "<0xA9>"))
        #expect(ids == [try #require(tok.tokenID(for: "▁h")), c3, a9])
        #expect(tok.decode(ids) == "hé")
        #expect(tok.piece(for: c3) == [0xC3])
        // Without add_space_prefix nothing is prepended.
        let bare = try Self.tinySPM(addSpacePrefix: false)
        #expect(bare.encode("hello", addSpecial: false, parseSpecial: false).first != hello)
    }

    @Test("SentencePiece: the best-scored pair merges first, then its new neighbours compete")
    func scores() throws {
        let tok = try Self.tinySPM(addSpacePrefix: false, extra: [("hel", -0.5, 1)])
        // h e l l: "he" (-4) beats "ll" (-5); then "hel" (-0.5) beats "ll", leaving "hel" "l".
        let ids = tok.encode("hell", addSpecial: false, parseSpecial: false)
        #expect(ids.map { tok.token($0) } == ["hel", "l"])
        // Without "hel": "he" then "ll" -> "he" "ll".
        let plain = try Self.tinySPM(addSpacePrefix: false)
        #expect(plain.encode("hell", addSpecial: false, parseSpecial: false).map { plain.token($0) } == ["he", "ll"])
    }

    @Test("errors name the key or value at fault")
    func errors() throws {
        #expect(throws: TokenizerError.unsupportedModel("rwkv")) {
            try Tokenizer(vocabulary: TokenizerVocabulary(model: "rwkv", tokens: ["a"]))
        }
        #expect(TokenizerError.unsupportedModel("rwkv").description.contains("\"rwkv\""))
        #expect(throws: TokenizerError.missingKey("tokenizer.ggml.merges")) {
            try Tokenizer(vocabulary: TokenizerVocabulary(model: "gpt2", tokens: ["a"]))
        }
        #expect(throws: TokenizerError.lengthMismatch(key: "tokenizer.ggml.scores", expected: 2, found: 1)) {
            try Tokenizer(vocabulary: TokenizerVocabulary(model: "llama", tokens: ["a", "b"], scores: [0]))
        }
        #expect(throws: TokenizerError.emptyVocabulary) {
            try Tokenizer(vocabulary: TokenizerVocabulary(model: "llama", tokens: []))
        }
        // Out-of-range ids decode to nothing instead of trapping.
        let tok = try Self.tinySPM()
        #expect(tok.piece(for: -1).isEmpty && tok.piece(for: 1_000_000).isEmpty && tok.token(-5) == "")
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { String(repeating: "0", count: max(0, n - count)) + self }
}
