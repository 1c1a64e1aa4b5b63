// BPE pre-tokenization: llama.cpp `llm_tokenizer_bpe` (llama-vocab.cpp) picks a list of regexes per
// `tokenizer.ggml.pre`, and `unicode_regex_split` (unicode.cpp) applies them one after another, each one
// splitting every piece left by the previous one into its matches and the gaps between them.
// Supported (names as in `llama_vocab::impl::load`):
//   gpt2   "gpt-2", "phi-2", "mpt", "olmo", "jais", "exaone4", ...: the GPT-2 regex (custom splitter)
//   smollm "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b", "mellum2":
//          `\p{N}` (every number codepoint alone), then the GPT-2 regex
//   llama3 "llama3", "llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe", "chatglm-bpe", "glm4", ...:
//          the Llama 3 regex (digits in groups of up to 3, case-insensitive contractions)
//   qwen2  "qwen2", "deepseek-r1-qwen", "stablelm2", "megrez", "hunyuan", "grok-2", ...: as llama3 but
//          each digit alone
//   default (the name "default", a missing name, and any unknown name): `[\p{P}\$\+<=>\^~\|]+`,
//          the GPT-2 regex, `\p{N}+`, `[0-9][0-9][0-9]`
// Deviations: llama.cpp rejects unknown names ("unknown pre-tokenizer type"); here they fall back to the
// default splitter. The regexes llama.cpp runs through std::regex (`\p{N}`, the default's punctuation,
// number and digit-triple rules) are hand-written stages with the same match semantics (leftmost,
// greedy, non-overlapping; `\p{P}` on its collapsed text means Unicode punctuation). Everything works
// on codepoints with the categories of CodepointFlags.swift. No Swift Regex is used.

/// How the text between special tokens is cut into words before BPE.
struct PreTokenizer: Sendable {
    enum Kind: Sendable { case gpt2, smollm, llama3, qwen2, defaultRegexes }

    let name: String
    let kind: Kind
    /// llama.cpp `ignore_merges`: a word that is itself a token is emitted whole.
    let ignoreMerges: Bool
    /// llama.cpp `clean_spaces` (clean_up_tokenization_spaces) used by `decode`.
    let cleanSpaces: Bool
    /// The add_bos default of this pre-tokenizer (llama3, tekken, chameleon: true), before metadata.
    let addBOSDefault: Bool
    /// llama.cpp clears the default BOS id (11) for ChatGLM/GLM vocabularies, before metadata.
    let clearsDefaultBOS: Bool

    init(name: String?) {
        let n = name ?? "default"
        self.name = n
        var ignoreMerges = false, clean = true, bos = false, clearBOS = false
        let kind: Kind
        switch n {
        case "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano":
            kind = .llama3; ignoreMerges = true; bos = true
        case "dbrx", "smaug-bpe":
            kind = .llama3
        case "chatglm-bpe":
            kind = .llama3; clearBOS = true
        case "glm4", "glm5":
            kind = .llama3; ignoreMerges = true; clearBOS = true
        case "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open", "grok-2":
            kind = .qwen2; clean = false
        case "stablelm2", "megrez":
            kind = .qwen2
        case "smollm", "command-r":
            kind = .smollm; clean = false
        case "starcoder", "refact", "codeshell", "exaone", "minerva-7b", "mellum2":
            kind = .smollm
        case "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
             "modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais", "exaone4":
            kind = .gpt2
        case "trillion", "granite-docling":
            kind = .gpt2; clean = false
        default:
            kind = .defaultRegexes
        }
        self.kind = kind
        self.ignoreMerges = ignoreMerges
        self.cleanSpaces = clean
        self.addBOSDefault = bos
        self.clearsDefaultBOS = clearBOS
    }

    /// Reusable buffers for one encode call.
    struct Scratch {
        var cpts: [UInt32] = []
        var flags: [UInt16] = []
        /// Byte offset of each codepoint, plus the total length at the end.
        var byteOffsets: [Int32] = []
        var bounds: [Int] = []
        var nextBounds: [Int] = []
    }

    /// Splits `text` (UTF-8) into words and calls `body` with each word's byte range, in order.
    func split(_ text: UnsafeBufferPointer<UInt8>, scratch s: inout Scratch, _ body: (Range<Int>) -> Void) {
        guard !text.isEmpty else { return }
        Self.decode(text, into: &s)
        let n = s.cpts.count
        s.bounds.removeAll(keepingCapacity: true)
        s.bounds.append(n)
        let cpts = s.cpts, flags = s.flags  // shares storage; keeps `s` free for the stages below
        cpts.withUnsafeBufferPointer { c in
            flags.withUnsafeBufferPointer { f in
                let cp = c.baseAddress!, fp = f.baseAddress!
                switch kind {
                case .gpt2:
                    apply(&s) { ini, end, out in Self.splitGPT2(cp, fp, ini, end, &out) }
                case .smollm:
                    apply(&s) { ini, end, out in Self.isolateEach(fp, ini, end, &out) { $0.isNumber } }
                    apply(&s) { ini, end, out in Self.splitGPT2(cp, fp, ini, end, &out) }
                case .llama3:
                    apply(&s) { ini, end, out in Self.splitLlama3(cp, fp, ini, end, digitGroup: 3, &out) }
                case .qwen2:
                    apply(&s) { ini, end, out in Self.splitLlama3(cp, fp, ini, end, digitGroup: 1, &out) }
                case .defaultRegexes:
                    apply(&s) { ini, end, out in
                        Self.isolateRuns(cp, fp, ini, end, &out) { f, c in f.isPunctuation || Self.isDefaultSymbol(c) }
                    }
                    apply(&s) { ini, end, out in Self.splitGPT2(cp, fp, ini, end, &out) }
                    apply(&s) { ini, end, out in Self.isolateRuns(cp, fp, ini, end, &out) { f, _ in f.isNumber } }
                    apply(&s) { ini, end, out in Self.isolateASCIIDigitTriples(cp, ini, end, &out) }
                }
            }
        }
        var start = 0
        for end in s.bounds {
            body(Int(s.byteOffsets[start])..<Int(s.byteOffsets[end]))
            start = end
        }
    }

    /// Runs one stage over every current piece: `stage(ini, end, &out)` appends the end of each new piece.
    private func apply(_ s: inout Scratch, _ stage: (Int, Int, inout [Int]) -> Void) {
        s.nextBounds.removeAll(keepingCapacity: true)
        var start = 0
        for end in s.bounds {
            stage(start, end, &s.nextBounds)
            start = end
        }
        swap(&s.bounds, &s.nextBounds)
    }

    /// `$+<=>^~|`: the symbols the default punctuation rule adds to `\p{P}`.
    @inline(__always)
    static func isDefaultSymbol(_ c: UInt32) -> Bool {
        c == 0x24 || c == 0x2B || c == 0x3C || c == 0x3D || c == 0x3E || c == 0x5E || c == 0x7E || c == 0x7C
    }

    /// A regex that matches one codepoint (`\p{N}`): each match and each gap becomes a piece.
    static func isolateEach(_ f: UnsafePointer<UInt16>, _ ini: Int, _ end: Int, _ out: inout [Int],
                            _ match: (CodepointFlags) -> Bool) {
        var pos = ini
        var gapStart = ini
        while pos < end {
            if match(CodepointFlags(rawValue: f[pos])) {
                if pos > gapStart { out.append(pos) }
                out.append(pos + 1)
                gapStart = pos + 1
            }
            pos += 1
        }
        if end > gapStart { out.append(end) }
    }

    /// A regex `[class]+`: each maximal run and each gap becomes a piece.
    static func isolateRuns(_ c: UnsafePointer<UInt32>, _ f: UnsafePointer<UInt16>, _ ini: Int, _ end: Int,
                            _ out: inout [Int], _ match: (CodepointFlags, UInt32) -> Bool) {
        var pos = ini
        var gapStart = ini
        while pos < end {
            if match(CodepointFlags(rawValue: f[pos]), c[pos]) {
                if pos > gapStart { out.append(pos) }
                var e = pos + 1
                while e < end && match(CodepointFlags(rawValue: f[e]), c[e]) { e += 1 }
                out.append(e)
                gapStart = e
                pos = e
            } else {
                pos += 1
            }
        }
        if end > gapStart { out.append(end) }
    }

    /// The regex `[0-9][0-9][0-9]`: leftmost non-overlapping triples of ASCII digits.
    static func isolateASCIIDigitTriples(_ c: UnsafePointer<UInt32>, _ ini: Int, _ end: Int, _ out: inout [Int]) {
        @inline(__always) func digit(_ p: Int) -> Bool { c[p] >= 0x30 && c[p] <= 0x39 }
        var pos = ini
        var gapStart = ini
        while pos + 3 <= end {
            if digit(pos) && digit(pos + 1) && digit(pos + 2) {
                if pos > gapStart { out.append(pos) }
                out.append(pos + 3)
                gapStart = pos + 3
                pos += 3
            } else {
                pos += 1
            }
        }
        if end > gapStart { out.append(end) }
    }

    /// UTF-8 to codepoints, flags and byte offsets. Invalid bytes become U+FFFD one byte at a time, as
    /// llama.cpp's `unicode_cpts_from_utf8` does (input from a Swift String is always valid).
    static func decode(_ text: UnsafeBufferPointer<UInt8>, into s: inout Scratch) {
        s.cpts.removeAll(keepingCapacity: true)
        s.flags.removeAll(keepingCapacity: true)
        s.byteOffsets.removeAll(keepingCapacity: true)
        let n = text.count
        s.cpts.reserveCapacity(n)
        s.flags.reserveCapacity(n)
        s.byteOffsets.reserveCapacity(n + 1)
        let table = CodepointFlags.bmpTable
        table.withUnsafeBufferPointer { t in
            var i = 0
            while i < n {
                let b0 = text[i]
                var cp: UInt32
                var len: Int
                if b0 < 0x80 {
                    cp = UInt32(b0); len = 1
                } else if b0 & 0xE0 == 0xC0, i + 1 < n, text[i + 1] & 0xC0 == 0x80 {
                    cp = UInt32(b0 & 0x1F) << 6 | UInt32(text[i + 1] & 0x3F); len = 2
                } else if b0 & 0xF0 == 0xE0, i + 2 < n, text[i + 1] & 0xC0 == 0x80, text[i + 2] & 0xC0 == 0x80 {
                    cp = UInt32(b0 & 0x0F) << 12 | UInt32(text[i + 1] & 0x3F) << 6 | UInt32(text[i + 2] & 0x3F); len = 3
                } else if b0 & 0xF8 == 0xF0, i + 3 < n, text[i + 1] & 0xC0 == 0x80, text[i + 2] & 0xC0 == 0x80,
                          text[i + 3] & 0xC0 == 0x80 {
                    cp = UInt32(b0 & 0x07) << 18 | UInt32(text[i + 1] & 0x3F) << 12
                        | UInt32(text[i + 2] & 0x3F) << 6 | UInt32(text[i + 3] & 0x3F)
                    len = 4
                } else {
                    cp = 0xFFFD; len = 1
                }
                s.cpts.append(cp)
                s.flags.append(cp < 0x10000 ? t[Int(cp)] : CodepointFlags.of(cp).rawValue)
                s.byteOffsets.append(Int32(i))
                i += len
            }
            s.byteOffsets.append(Int32(n))
        }
    }
}
