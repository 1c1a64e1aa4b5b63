// A tokenizer built from GGUF metadata, following llama.cpp's `llama_vocab` (llama-vocab.cpp):
// `impl::load` for the defaults and flags, `impl::tokenize` for the encode pipeline
// (special-token partition -> per-fragment BPE or SentencePiece -> BOS/EOS), and `token_to_piece` /
// `detokenize` for decoding (Tokenizer+Decoding.swift).
// Supported models: "gpt2" (byte-level BPE with the pre-tokenizers of PreTokenizer.swift) and "llama"
// (SentencePiece-style). Deviations: unknown pre-tokenizer names fall back to the default splitter instead
// of failing; out-of-range special ids in metadata keep the default, as llama.cpp does, but silently.

import GodwitGGUF

public final class Tokenizer: @unchecked Sendable {
    enum Model { case bytePair, sentencePiece }

    let model: Model
    let tokens: [String]
    let attributes: [TokenAttributes]
    let special: SpecialTokens
    let rawTable: ByteStringTable
    let splitter: SpecialTokenSplitter
    let preTokenizerConfig: PreTokenizer
    let bpe: BytePairEncoder?
    let spm: SentencePieceEncoder?
    let addSpacePrefix: Bool
    let cleanSpaces: Bool

    public let addBOS: Bool
    public let addEOS: Bool

    /// Reads the `tokenizer.ggml.*` metadata of `gguf`.
    public convenience init(gguf: GGUFFile) throws(TokenizerError) {
        try self.init(vocabulary: TokenizerVocabulary(gguf: gguf))
    }

    public init(vocabulary v: TokenizerVocabulary) throws(TokenizerError) {
        switch v.model {
        case "gpt2": model = .bytePair
        case "llama": model = .sentencePiece
        default: throw .unsupportedModel(v.model)
        }
        let n = v.tokens.count
        guard n > 0 else { throw .emptyVocabulary }
        guard n < Int(Int32.max) else {
            throw .invalidValue(key: "tokenizer.ggml.tokens", reason: "\(n) tokens do not fit 32-bit ids")
        }
        if let s = v.scores, s.count < n { throw .lengthMismatch(key: "tokenizer.ggml.scores", expected: n, found: s.count) }
        if let t = v.tokenTypes, t.count < n {
            throw .lengthMismatch(key: "tokenizer.ggml.token_type", expected: n, found: t.count)
        }
        let merges: [String]
        if model == .bytePair {
            guard let m = v.merges else { throw .missingKey("tokenizer.ggml.merges") }
            merges = m
        } else {
            merges = []
        }

        // Token texts (an empty one becomes "[EMPTY_<id>]" as in llama.cpp), the text -> id table.
        var texts = v.tokens
        var totalBytes = 0
        for i in 0..<n {
            if texts[i].isEmpty { texts[i] = "[EMPTY_\(i)]" }
            totalBytes += texts[i].utf8.count
        }
        var table = ByteStringTable(expectedCount: n, expectedBytes: totalBytes)
        for i in 0..<n {
            var t = texts[i]
            t.withUTF8 { u in table.insert(u.baseAddress!, u.count, value: Int32(i)) }
        }
        tokens = texts
        rawTable = table

        let pre = PreTokenizer(name: model == .bytePair ? v.preTokenizer : "default")
        var attrs = [TokenAttributes](repeating: .normal, count: n)
        if let types = v.tokenTypes { for i in 0..<n { attrs[i] = TokenAttributes(tokenType: types[i]) } }
        special = SpecialTokenResolver.resolve(v, isSentencePiece: model == .sentencePiece,
                                               clearDefaultBOS: model == .bytePair && pre.clearsDefaultBOS,
                                               table: table, attributes: &attrs)
        attributes = attrs
        splitter = SpecialTokenSplitter(tokens: texts, attributes: attrs)

        switch model {
        case .bytePair:
            preTokenizerConfig = pre
            bpe = BytePairEncoder(tokens: texts, merges: merges, ignoreMerges: pre.ignoreMerges, rawTable: table)
            spm = nil
            addBOS = v.addBOS ?? pre.addBOSDefault
            addSpacePrefix = v.addSpacePrefix ?? false
            cleanSpaces = pre.cleanSpaces
        case .sentencePiece:
            preTokenizerConfig = pre
            bpe = nil
            spm = SentencePieceEncoder(table: table, scores: v.scores.map { Array($0.prefix(n)) } ?? [Float](repeating: 0, count: n),
                                       unknown: special.unknown)
            addBOS = v.addBOS ?? true
            addSpacePrefix = v.addSpacePrefix ?? true
            cleanSpaces = false
        }
        addEOS = v.addEOS ?? false
    }

    // MARK: Properties

    public var vocabularySize: Int { tokens.count }
    public var bosID: Int32? { special.bos }
    public var eosID: Int32? { special.eos }
    /// End-of-turn token (metadata or detected by text, e.g. `<|im_end|>`, `<end_of_turn>`).
    public var eotID: Int32? { special.eot }
    /// End-of-message token (`<|eom_id|>`), if any.
    public var eomID: Int32? { special.eom }
    public var unknownID: Int32? { special.unknown }
    public var paddingID: Int32? { special.padding }
    /// "gpt2" or "llama".
    public var kind: String { model == .bytePair ? "gpt2" : "llama" }
    /// The pre-tokenizer name from the metadata ("default" when absent; always "default" for SentencePiece).
    public var preTokenizer: String { preTokenizerConfig.name }
    /// Whether `encode` prefixes a space to the text (SentencePiece) and `decode` drops it again.
    public var addsSpacePrefix: Bool { addSpacePrefix }
    /// The ids `isEndOfGeneration` accepts, sorted.
    public var endOfGenerationIDs: [Int32] { special.endOfGeneration.sorted() }

    public func isEndOfGeneration(_ id: Int32) -> Bool { special.endOfGeneration.contains(id) }

    /// The id of the token whose vocabulary text is exactly `text` (e.g. "<|im_end|>", "▁Hello", "Ġhello").
    public func tokenID(for text: String) -> Int32? {
        let id = rawTable.lookup(Array(text.utf8))
        return id >= 0 ? id : nil
    }

    /// The vocabulary text of `id` ("" for an id out of range).
    public func token(_ id: Int32) -> String {
        guard id >= 0, Int(id) < tokens.count else { return "" }
        return tokens[Int(id)]
    }

    public func isControl(_ id: Int32) -> Bool { attribute(id).contains(.control) }
    public func isUserDefined(_ id: Int32) -> Bool { attribute(id).contains(.userDefined) }
    public func isByte(_ id: Int32) -> Bool { attribute(id).contains(.byte) }

    func attribute(_ id: Int32) -> TokenAttributes {
        guard id >= 0, Int(id) < attributes.count else { return [] }
        return attributes[Int(id)]
    }

    // MARK: Encoding

    /// Tokenizes `text` like llama.cpp's `llama_tokenize`: `addSpecial` adds BOS/EOS as the model's
    /// `add_bos_token`/`add_eos_token` say; `parseSpecial` turns control-token text such as "<|im_start|>"
    /// into that token (user-defined tokens are always matched).
    public func encode(_ text: String, addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        var utf8 = text
        return utf8.withUTF8 { encodeUTF8($0, addSpecial: addSpecial, parseSpecial: parseSpecial) }
    }

    /// Tokenizes valid UTF-8 (a String's bytes). For invalid UTF-8, llama.cpp's BPE path would tokenize
    /// U+FFFD in place of each bad byte while this one keeps the byte, hence not public.
    func encodeUTF8(_ bytes: UnsafeBufferPointer<UInt8>, addSpecial: Bool, parseSpecial: Bool) -> [Int32] {
        var out = [Int32]()
        out.reserveCapacity(bytes.count / 3 + 4)
        if addSpecial && addBOS, let bos = special.bos { out.append(bos) }
        let fragments = splitter.split(bytes, parseSpecial: parseSpecial)
        switch model {
        case .bytePair:
            guard let bpe else { break }
            var preScratch = PreTokenizer.Scratch()
            var bpeScratch = BytePairEncoder.Scratch()
            for fragment in fragments {
                switch fragment {
                case .token(let id): out.append(id)
                case .text(let range):
                    let piece = UnsafeBufferPointer(rebasing: bytes[range])
                    let base = piece.baseAddress!
                    preTokenizerConfig.split(piece, scratch: &preScratch) { word in
                        bpe.encodeWord(base + word.lowerBound, word.count, scratch: &bpeScratch, into: &out)
                    }
                }
            }
        case .sentencePiece:
            guard let spm else { break }
            var scratch = SentencePieceEncoder.Scratch()
            var previousWasSpecial = true
            for fragment in fragments {
                switch fragment {
                case .token(let id):
                    out.append(id)
                    previousWasSpecial = true
                case .text(let range):
                    spm.encode(UnsafeBufferPointer(rebasing: bytes[range]), prefixSpace: addSpacePrefix && previousWasSpecial,
                               scratch: &scratch, into: &out)
                    previousWasSpecial = false
                }
            }
        }
        if addSpecial && addEOS, let eos = special.eos { out.append(eos) }
        return out
    }
}
