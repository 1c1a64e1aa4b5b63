import GodwitKVCache
import GodwitKernels

/// How a session runs: context size, batch size, threads and the KV cache formats.
public struct SessionConfiguration: Sendable {
    /// Tokens the cache holds (`-c`); nil → min(model's trained context, 4096).
    public var contextLength: Int?
    /// Largest batch evaluated at once while reading a prompt (`-b`).
    public var batchSize: Int
    /// Threads including the caller (`-t`); nil → one per core.
    public var threads: Int?
    /// K and V formats and their options (`-ctk`, `-ctv`, …).
    public var cache: KVCacheConfiguration
    /// Calibration data for schemes that need it (`--kv-calibration`).
    public var calibration: KVCalibration?

    /// Numerics of the forward pass (`--numerics`): `.fast` (default) or `.ggml` (llama.cpp's CPU
    /// operation order, flash attention off; see `Numerics`). Stored in `cache.numerics`, which is
    /// what the model and the cache read.
    public var numerics: Numerics {
        get { cache.numerics }
        set { cache.numerics = newValue }
    }

    /// `numerics` nil keeps `cache.numerics`.
    public init(contextLength: Int? = nil, batchSize: Int = 512, threads: Int? = nil,
                cache: KVCacheConfiguration = .init(), calibration: KVCalibration? = nil, numerics: Numerics? = nil) {
        self.contextLength = contextLength
        self.batchSize = batchSize
        self.threads = threads
        self.cache = cache
        self.calibration = calibration
        if let numerics { self.cache.numerics = numerics }
    }

    /// Threads used when none are given: one per core.
    public static var defaultThreadCount: Int { ThreadPool.coreCount }

    func resolvedContext(trained: Int) throws(GodwitError) -> Int {
        let ctx = contextLength ?? min(trained, 4096)
        guard ctx > 0 else { throw .invalidParameter(name: "context size", value: "\(ctx)", reason: "must be positive") }
        return ctx
    }

    func resolvedThreads() throws(GodwitError) -> Int {
        let t = threads ?? ThreadPool.coreCount
        guard t > 0 && t <= 1024 else { throw .invalidParameter(name: "threads", value: "\(t)", reason: "must be 1…1024") }
        return t
    }
}

/// Prompt and generation speed of a session's last run.
public struct Timings: Sendable, Equatable {
    public var promptTokens = 0
    public var promptSeconds = 0.0
    public var generatedTokens = 0
    public var generationSeconds = 0.0

    public var promptTokensPerSecond: Double { promptSeconds > 0 ? Double(promptTokens) / promptSeconds : 0 }
    public var generationTokensPerSecond: Double { generationSeconds > 0 ? Double(generatedTokens) / generationSeconds : 0 }
}
