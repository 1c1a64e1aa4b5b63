// Errors raised while building a tokenizer from GGUF metadata (llama.cpp throws std::runtime_error from
// `llama_vocab::impl::load` for the same conditions). Encoding and decoding never fail.

public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// A required key is absent, e.g. `tokenizer.ggml.tokens`, or `tokenizer.ggml.merges` for a gpt2 model.
    case missingKey(String)
    /// A key holds the wrong kind of value; `reason` says what was expected and found.
    case invalidValue(key: String, reason: String)
    /// `tokenizer.ggml.model` names a tokenizer this module does not implement.
    case unsupportedModel(String)
    /// A per-token array is shorter than the token list.
    case lengthMismatch(key: String, expected: Int, found: Int)
    /// The token list is empty.
    case emptyVocabulary

    public var description: String {
        switch self {
        case .missingKey(let key): "tokenizer metadata '\(key)' is missing"
        case .invalidValue(let key, let reason): "tokenizer metadata '\(key)' is invalid: \(reason)"
        case .unsupportedModel(let model):
            "unsupported tokenizer model \"\(model)\" in 'tokenizer.ggml.model' (supported: \"gpt2\", \"llama\")"
        case .lengthMismatch(let key, let expected, let found):
            "tokenizer metadata '\(key)' has \(found) entries, fewer than the \(expected) tokens"
        case .emptyVocabulary: "tokenizer metadata 'tokenizer.ggml.tokens' is empty"
        }
    }
}
