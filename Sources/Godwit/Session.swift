// A conversation with a model: its own KV cache and scratch, the tokens evaluated so far, and
// generation. A session is used from one task at a time (it is not internally synchronized).
import Foundation
import GodwitKVCache
import GodwitKernels
import GodwitModel
import GodwitTokenizer

public final class Session: @unchecked Sendable {
    public let model: LanguageModel
    public let contextLength: Int
    public let batchSize: Int
    public let threadCount: Int
    public let cacheConfiguration: KVCacheConfiguration
    /// Tokens whose K/V are in the cache, in order.
    public private(set) var tokens: [Int32] = []
    /// The last sampled token that is not yet in the cache (it is evaluated first by the next call).
    public private(set) var pendingToken: Int32?
    /// Speeds of the last `generate` run.
    public internal(set) var timings = Timings()

    let state: InferenceState
    let pool: ThreadPool
    /// Logits of the last evaluated token. [vocab]
    let lastLogits: UnsafeMutablePointer<Float>
    var vocabularySize: Int { model.config.vocabularySize }

    init(model: LanguageModel, configuration: SessionConfiguration) throws(GodwitError) {
        self.model = model
        contextLength = try configuration.resolvedContext(trained: model.config.trainedContextLength)
        guard configuration.batchSize > 0 else {
            throw .invalidParameter(name: "batch size", value: "\(configuration.batchSize)", reason: "must be positive")
        }
        batchSize = min(configuration.batchSize, contextLength)
        threadCount = try configuration.resolvedThreads()
        cacheConfiguration = configuration.cache
        pool = ThreadPool(threads: threadCount)
        do {
            state = try model.transformer.makeState(contextLength: contextLength, maxBatch: batchSize,
                                                    cache: configuration.cache, pool: pool,
                                                    calibration: configuration.calibration)
        } catch { throw .model(error) }
        lastLogits = .allocate(capacity: model.config.vocabularySize)
        lastLogits.initialize(repeating: 0, count: model.config.vocabularySize)
    }

    deinit { lastLogits.deallocate() }

    /// The cache's memory now (allocated and logical bytes, bits per value).
    public var cacheMemory: KVMemoryReport { state.cache.memory() }

    /// Names of the K and V schemes of a layer (after per-layer overrides).
    public func cacheSchemes(layer: Int) -> (key: String, value: String) { state.cache.schemeNames(layer: layer) }

    /// Empties the context.
    public func reset() {
        state.cache.reset()
        tokens.removeAll(keepingCapacity: true)
        pendingToken = nil
    }

    /// Whether `truncate(to:)` can go back to `count` tokens: a sliding-window layer keeps only
    /// window + batch − 1 positions, so it can drop at most `batchSize` tokens.
    public func canTruncate(to count: Int) -> Bool { state.cache.canTruncate(to: count) }

    /// Drops tokens after the first `count` (e.g. to regenerate a reply). Check `canTruncate(to:)`
    /// first on models with sliding-window layers.
    public func truncate(to count: Int) {
        guard count < tokens.count else { return }
        state.cache.truncate(to: count)
        tokens.removeLast(tokens.count - count)
        pendingToken = nil
    }

    /// Evaluates `newTokens` after the current context, in batches of `batchSize`, and writes the
    /// logits of rows `outputRows` (indices into `newTokens`) to `output` [outputRows.count, vocab].
    public func evaluate(_ newTokens: [Int32], outputRows: Range<Int>, into output: UnsafeMutableBufferPointer<Float>) throws(GodwitError) {
        precondition(outputRows.lowerBound >= 0 && outputRows.upperBound <= newTokens.count, "output rows outside the tokens")
        precondition(output.count >= outputRows.count * vocabularySize, "output buffer too small")
        try evaluateBatches(newTokens, outputRows: outputRows, output: output.baseAddress!)
    }

    /// Evaluates tokens and returns the log-probabilities of every position: [newTokens.count][vocab].
    public func logProbabilities(_ newTokens: [Int32]) throws(GodwitError) -> [[Float]] {
        let v = vocabularySize
        var flat = [Float](repeating: 0, count: newTokens.count * v)
        try flat.withUnsafeMutableBufferPointer { (buf) throws(GodwitError) in
            try evaluateBatches(newTokens, outputRows: 0..<newTokens.count, output: buf.baseAddress!)
        }
        return (0..<newTokens.count).map { t in
            let row = Array(flat[t * v..<(t + 1) * v])
            let m = row.max()!
            let lse = m + Foundation.log(row.reduce(Float(0)) { $0 + Foundation.exp($1 - m) })
            return row.map { $0 - lse }
        }
    }

    /// Logits of the last evaluated token (a copy). [vocab]
    public var logits: [Float] { Array(UnsafeBufferPointer(start: lastLogits, count: vocabularySize)) }

    func evaluateBatches(_ newTokens: [Int32], outputRows: Range<Int>, output: UnsafeMutablePointer<Float>) throws(GodwitError) {
        guard !newTokens.isEmpty else { return }
        guard tokens.count + newTokens.count <= contextLength else {
            throw .contextFull(tokens: tokens.count + newTokens.count, contextLength: contextLength)
        }
        let v = vocabularySize
        var done = 0
        while done < newTokens.count {
            let n = min(batchSize, newTokens.count - done)
            let batch = Array(newTokens[done..<done + n])
            let lo = max(outputRows.lowerBound, done), hi = min(outputRows.upperBound, done + n)
            let rows = lo < hi ? (lo - done)..<(hi - done) : 0..<0
            let dst = output + (lo < hi ? (lo - outputRows.lowerBound) * v : 0)
            do { try model.transformer.forward(tokens: batch, state: state, logitRows: rows, logits: dst) }
            catch { throw .model(error) }
            tokens.append(contentsOf: batch)
            done += n
        }
        if outputRows.upperBound == newTokens.count, !outputRows.isEmpty {
            lastLogits.update(from: output + (outputRows.count - 1) * v, count: v)
        }
    }

    /// Evaluates tokens, keeping only the last token's logits (for sampling).
    func feed(_ newTokens: [Int32]) throws(GodwitError) {
        guard !newTokens.isEmpty else { return }
        guard tokens.count + newTokens.count <= contextLength else {
            throw .contextFull(tokens: tokens.count + newTokens.count, contextLength: contextLength)
        }
        var done = 0
        while done < newTokens.count {
            let n = min(batchSize, newTokens.count - done)
            let last = done + n == newTokens.count
            do {
                try model.transformer.forward(tokens: Array(newTokens[done..<done + n]), state: state,
                                              logitRows: last ? (n - 1)..<n : 0..<0, logits: lastLogits)
            } catch { throw .model(error) }
            tokens.append(contentsOf: newTokens[done..<done + n])
            done += n
        }
    }

    /// Generates text after `prompt` (tokenized with the model's BOS rule; special-token text such
    /// as `<|im_start|>` is parsed). Iterate the stream to drive generation.
    public func generate(prompt: String, maxTokens: Int = 128, sampling: SamplingParameters = .greedy,
                         parseSpecial: Bool = true) -> GenerationStream {
        let addSpecial = tokens.isEmpty && pendingToken == nil
        let ids = model.tokenizer.encode(prompt, addSpecial: addSpecial, parseSpecial: parseSpecial)
        return GenerationStream(session: self, prompt: ids, maxTokens: maxTokens, sampling: sampling)
    }

    /// Generates after the given prompt tokens.
    public func generate(tokens prompt: [Int32], maxTokens: Int = 128, sampling: SamplingParameters = .greedy) -> GenerationStream {
        GenerationStream(session: self, prompt: prompt, maxTokens: maxTokens, sampling: sampling)
    }

    func setPending(_ t: Int32?) { pendingToken = t }
}
