// The tokenizer metadata of a GGUF file, as plain values: the keys llama.cpp's `llama_vocab::impl::load`
// (llama-vocab.cpp) reads. Defaults that depend on the tokenizer model (special ids, add_bos, ...) are
// applied by `Tokenizer.init(vocabulary:)`, not here, so a nil field means "absent from the file".

import GodwitGGUF

public struct TokenizerVocabulary: Sendable, Equatable {
    /// `tokenizer.ggml.model`: "gpt2" (byte-level BPE) or "llama" (SentencePiece).
    public var model: String
    /// `tokenizer.ggml.pre`: the BPE pre-tokenizer name (e.g. "smollm", "llama-bpe", "qwen2").
    public var preTokenizer: String?
    /// `tokenizer.ggml.tokens`, in id order.
    public var tokens: [String]
    /// `tokenizer.ggml.scores` (SentencePiece merge priorities).
    public var scores: [Float]?
    /// `tokenizer.ggml.token_type` (llama_token_type: 1 normal, 2 unknown, 3 control, 4 user-defined,
    /// 5 unused, 6 byte).
    public var tokenTypes: [Int]?
    /// `tokenizer.ggml.merges` ("left right", highest priority first).
    public var merges: [String]?
    public var bosID: Int?
    public var eosID: Int?
    public var eotID: Int?
    public var eomID: Int?
    public var unknownID: Int?
    public var paddingID: Int?
    /// `tokenizer.ggml.fim_pad_token_id` / `fim_rep_token_id` / `fim_sep_token_id` (end-of-generation tokens).
    public var fimPadID: Int?
    public var fimRepID: Int?
    public var fimSepID: Int?
    public var addBOS: Bool?
    public var addEOS: Bool?
    public var addSpacePrefix: Bool?

    public init(model: String, preTokenizer: String? = nil, tokens: [String], scores: [Float]? = nil,
                tokenTypes: [Int]? = nil, merges: [String]? = nil,
                bosID: Int? = nil, eosID: Int? = nil, eotID: Int? = nil, eomID: Int? = nil,
                unknownID: Int? = nil, paddingID: Int? = nil,
                fimPadID: Int? = nil, fimRepID: Int? = nil, fimSepID: Int? = nil,
                addBOS: Bool? = nil, addEOS: Bool? = nil, addSpacePrefix: Bool? = nil) {
        self.model = model
        self.preTokenizer = preTokenizer
        self.tokens = tokens
        self.scores = scores
        self.tokenTypes = tokenTypes
        self.merges = merges
        self.bosID = bosID
        self.eosID = eosID
        self.eotID = eotID
        self.eomID = eomID
        self.unknownID = unknownID
        self.paddingID = paddingID
        self.fimPadID = fimPadID
        self.fimRepID = fimRepID
        self.fimSepID = fimSepID
        self.addBOS = addBOS
        self.addEOS = addEOS
        self.addSpacePrefix = addSpacePrefix
    }

    /// Reads the `tokenizer.ggml.*` keys of `gguf`.
    public init(gguf: GGUFFile) throws(TokenizerError) {
        func wrap<T>(_ key: String, _ body: () throws(GGUFError) -> T) throws(TokenizerError) -> T {
            do { return try body() } catch {
                if case .missingKey = error { throw TokenizerError.missingKey(key) }
                throw TokenizerError.invalidValue(key: key, reason: error.description)
            }
        }
        func optionalInt(_ key: String) throws(TokenizerError) -> Int? {
            guard gguf[key] != nil else { return nil }
            return try wrap(key) { () throws(GGUFError) in try gguf.int(key) }
        }
        func optionalBool(_ key: String) throws(TokenizerError) -> Bool? {
            guard gguf[key] != nil else { return nil }
            return try wrap(key) { () throws(GGUFError) in try gguf.bool(key, default: false) }
        }
        let p = "tokenizer.ggml."
        model = try wrap(p + "model") { () throws(GGUFError) in try gguf.string(p + "model") }
        preTokenizer = try wrap(p + "pre") { () throws(GGUFError) in try gguf.optionalString(p + "pre") }
        tokens = try wrap(p + "tokens") { () throws(GGUFError) in try gguf.strings(p + "tokens") }
        scores = gguf[p + "scores"] == nil ? nil
            : try wrap(p + "scores") { () throws(GGUFError) in try gguf.floats(p + "scores") }
        tokenTypes = gguf[p + "token_type"] == nil ? nil
            : try wrap(p + "token_type") { () throws(GGUFError) in try gguf.ints(p + "token_type") }
        merges = gguf[p + "merges"] == nil ? nil
            : try wrap(p + "merges") { () throws(GGUFError) in try gguf.strings(p + "merges") }
        bosID = try optionalInt(p + "bos_token_id")
        eosID = try optionalInt(p + "eos_token_id")
        eotID = try optionalInt(p + "eot_token_id")
        eomID = try optionalInt(p + "eom_token_id")
        unknownID = try optionalInt(p + "unknown_token_id")
        paddingID = try optionalInt(p + "padding_token_id")
        fimPadID = try optionalInt(p + "fim_pad_token_id")
        fimRepID = try optionalInt(p + "fim_rep_token_id")
        fimSepID = try optionalInt(p + "fim_sep_token_id")
        addBOS = try optionalBool(p + "add_bos_token")
        addEOS = try optionalBool(p + "add_eos_token")
        addSpacePrefix = try optionalBool(p + "add_space_prefix")
    }
}
