// Token attributes and the special-token bookkeeping of llama.cpp's `llama_vocab::impl::load`
// (llama-vocab.cpp): token types -> attributes, default special ids per tokenizer model, the text-based
// auto-detection of EOT/EOM/FIM tokens (which also marks them control), "unused" control tokens, the
// end-of-generation set, and the gpt-oss/solar "<|end|>" and gemma4/plamo "</s>" workarounds.
// Deviation: llama.cpp walks an unordered_map, so when several EOT-looking tokens exist the one it picks
// depends on hashing; here the lowest id wins (for SmolLM2 both choose <|endoftext|>, id 0). All of them
// are end-of-generation either way. Per-model LSTRIP/RSTRIP attributes (phi-3, jina, modern-bert) are not set.

struct TokenAttributes: OptionSet, Sendable {
    let rawValue: UInt16
    static let unknown = TokenAttributes(rawValue: 1 << 0)
    static let unused = TokenAttributes(rawValue: 1 << 1)
    static let normal = TokenAttributes(rawValue: 1 << 2)
    static let control = TokenAttributes(rawValue: 1 << 3)
    static let userDefined = TokenAttributes(rawValue: 1 << 4)
    static let byte = TokenAttributes(rawValue: 1 << 5)

    /// llama_token_type (GGUF `tokenizer.ggml.token_type`) to attributes.
    init(tokenType: Int) {
        switch tokenType {
        case 1: self = .normal
        case 2: self = .unknown
        case 3: self = .control
        case 4: self = .userDefined
        case 5: self = .unused
        case 6: self = .byte
        default: self = []  // 0 = undefined, and unknown values
        }
    }

    init(rawValue: UInt16) { self.rawValue = rawValue }
}

/// Special token ids after defaults, metadata and auto-detection.
struct SpecialTokens: Sendable {
    var bos: Int32?
    var eos: Int32?
    var eot: Int32?
    var eom: Int32?
    var unknown: Int32?
    var padding: Int32?
    var endOfGeneration: Set<Int32> = []
}

enum SpecialTokenResolver {
    static let eotTexts = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
                           "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>", "<end_of_utterance>"]
    static let eomTexts = ["<|eom_id|>"]
    static let fimPreTexts = ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
                              "<|code_prefix|>", "<|prefix|>"]
    static let fimSufTexts = ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
                              "<|code_suffix|>", "<|suffix|>"]
    static let fimMidTexts = ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
                              "<|code_middle|>", "<|middle|>"]
    static let fimPadTexts = ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]
    static let fimRepTexts = ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]
    static let fimSepTexts = ["<|file_sep|>"]
    static let eogTexts = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
                           "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
                           "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
                           "<｜end▁of▁sentence｜>", "[e~["]
    static let alwaysRenderedTexts = ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"]

    /// Resolves special ids and updates `attributes` the way llama.cpp's loader does.
    static func resolve(_ v: TokenizerVocabulary, isSentencePiece: Bool, clearDefaultBOS: Bool = false,
                        table: ByteStringTable, attributes attrs: inout [TokenAttributes]) -> SpecialTokens {
        let n = v.tokens.count
        func inRange(_ id: Int?) -> Int32? {
            guard let id, id >= 0, id < n else { return nil }
            return Int32(id)
        }
        // Defaults per model, disabled when out of range, then overridden by in-range metadata values.
        var s = SpecialTokens()
        s.bos = clearDefaultBOS ? nil : inRange(isSentencePiece ? 1 : 11)
        s.eos = inRange(isSentencePiece ? 2 : 11)
        s.unknown = isSentencePiece ? inRange(0) : nil
        func override(_ current: Int32?, _ meta: Int?) -> Int32? { inRange(meta) ?? current }
        s.bos = override(s.bos, v.bosID)
        s.eos = override(s.eos, v.eosID)
        s.eot = override(nil, v.eotID)
        s.eom = override(nil, v.eomID)
        s.unknown = override(s.unknown, v.unknownID)
        s.padding = override(nil, v.paddingID)
        var fimPad = override(nil, v.fimPadID)
        var fimRep = override(nil, v.fimRepID)
        var fimSep = override(nil, v.fimSepID)

        func ids(_ texts: [String]) -> [Int32] {
            texts.compactMap { t in
                let id = table.lookup(Array(t.utf8))
                return id >= 0 ? id : nil
            }.sorted()
        }
        func markControl(_ id: Int32) { attrs[Int(id)].insert(.control) }
        func detect(_ current: inout Int32?, _ texts: [String]) {
            guard current == nil, let first = ids(texts).first else { return }
            current = first
            markControl(first)
        }
        detect(&s.eot, eotTexts)
        detect(&s.eom, eomTexts)
        var fimPre: Int32? = nil, fimSuf: Int32? = nil, fimMid: Int32? = nil
        detect(&fimPre, fimPreTexts)
        detect(&fimSuf, fimSufTexts)
        detect(&fimMid, fimMidTexts)
        detect(&fimPad, fimPadTexts)
        detect(&fimRep, fimRepTexts)
        detect(&fimSep, fimSepTexts)

        // Control tokens whose text contains "unused" are unused.
        let unusedWord = Array("unused".utf8)
        for i in 0..<n where attrs[i].contains(.control) && !attrs[i].contains(.unused) {
            if containsSubsequence(v.tokens[i].utf8, unusedWord) { attrs[i].insert(.unused) }
        }

        var eog = Set<Int32>()
        for id in [fimPad, fimRep, fimSep] { if let id { eog.insert(id) } }
        for id in ids(eogTexts) {
            eog.insert(id)
            markControl(id)
        }
        for id in ids(alwaysRenderedTexts) { attrs[Int(id)] = .userDefined }
        for id in [s.eos, s.eot, s.eom] { if let id { eog.insert(id) } }

        // o200k_harmony / solar-open: "<|end|>" is not end-of-generation when "<|return|>"/"<|call|>" exist.
        func text(_ id: Int32) -> String { v.tokens[Int(id)] }
        let eogTextsPresent = Set(eog.map(text))
        if let end = eog.first(where: { text($0) == "<|end|>" }),
           (eogTextsPresent.contains("<|return|>") && (eogTextsPresent.contains("<|call|>") || eogTextsPresent.contains("<|calls|>")))
            || ((eogTextsPresent.contains("<|call|>") || eogTextsPresent.contains("<|calls|>")) && eogTextsPresent.contains("<|flush|>")) {
            eog.remove(end)
            attrs[Int(end)] = .userDefined
        }
        // gemma4 / plamo: "</s>" is a normal token there.
        if let sTag = eog.first(where: { text($0) == "</s>" }),
           eogTextsPresent.contains("<|tool_response>") || eogTextsPresent.contains("<|plamo:eos|>") {
            eog.remove(sTag)
            attrs[Int(sTag)] = .normal
        }
        s.endOfGeneration = eog
        return s
    }

    private static func containsSubsequence(_ hay: String.UTF8View, _ needle: [UInt8]) -> Bool {
        let h = Array(hay)
        guard h.count >= needle.count else { return false }
        var i = 0
        while i + needle.count <= h.count {
            if h[i] == needle[0] && Array(h[i..<i + needle.count]) == needle { return true }
            i += 1
        }
        return false
    }
}
