// The library's public surface re-exports the types its API speaks in: cache configuration and
// memory reports, model hyper-parameters, the tokenizer. `import Godwit` is enough for users.
@_exported import GodwitKVCache
@_exported import GodwitModel
@_exported import GodwitTokenizer
