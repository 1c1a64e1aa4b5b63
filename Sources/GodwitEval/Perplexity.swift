// Perplexity exactly as llama-perplexity computes it (tools/perplexity/perplexity.cpp:
// perplexity()), so the numbers are comparable: tokenize the whole text once (special tokens as
// the model's metadata says, special-token text not parsed), cut ⌊tokens/c⌋ chunks of c tokens,
// replace (not insert) each chunk's first token with BOS when add_bos_token is true, and score the
// c−1−c/2 predictions from positions c/2 … c−2. Only the scored positions' logits are computed.
// Like llama.cpp's -f, one trailing newline of the file is dropped before tokenizing.
import Foundation
import Godwit
import GodwitKVCache

public struct PerplexityOptions: Sendable {
    public var contextLength = 512
    /// Chunks to evaluate (nil: all).
    public var chunks: Int? = nil
    public var batchSize = 512
    public var threads: Int? = nil
    public var cache = KVCacheConfiguration()
    public var calibration: KVCalibration? = nil
    /// Save this run's log-probabilities to a llama.cpp-compatible file (`--kl-divergence-base`).
    public var saveLogitsPath: String? = nil
    /// Compare against a base file (`--kl-divergence`); the tokens come from the file.
    public var klBasePath: String? = nil

    public init() {}
}

/// Progress after each chunk.
public struct PerplexityProgress: Sendable {
    public let chunk: Int
    public let chunks: Int
    public let perplexity: Double
    public let secondsElapsed: Double
    public var secondsRemaining: Double { chunk > 0 ? secondsElapsed / Double(chunk) * Double(chunks - chunk) : 0 }
    /// KL statistics so far, when comparing against a base.
    public let kl: KLDivergenceStats?
}

public struct PerplexityResult: Sendable {
    public let perplexity: Double
    /// PPL·√((E[nll²] − E[nll]²)/(N − 1)).
    public let uncertainty: Double
    public let scoredTokens: Int
    public let chunks: Int
    public let textTokens: Int
    /// Bits per cached value at the end of a chunk: bytes the cache held over the values cached.
    public let cacheBitsPerValue: Double
    public let cacheBytesHeld: Int
    public let kl: KLDivergenceStats?
    public let seconds: Double
}

public enum Perplexity {
    /// Runs the evaluation over `text` (ignored when comparing against a base file, whose tokens are used).
    public static func run(model: LanguageModel, text: String, options o: PerplexityOptions,
                           progress: (PerplexityProgress) -> Void = { _ in }) throws -> PerplexityResult {
        let c = o.contextLength
        guard c >= 4 else { throw EvalError.invalidOption(name: "context", value: "\(c)", reason: "must be at least 4") }
        guard o.batchSize > 0 else { throw EvalError.invalidOption(name: "batch size", value: "\(o.batchSize)", reason: "must be positive") }
        let vocab = model.config.vocabularySize
        let reader = try o.klBasePath.map { path throws(EvalError) in try LogitsFileReader(path: path) }
        defer { reader?.close() }

        var tokens: [Int32]
        var chunkCount: Int
        if let reader {
            let h = reader.header
            guard h.context == c else { throw EvalError.logitsMismatch(path: reader.path, reason: "it was computed with -c \(h.context), this run uses -c \(c)") }
            guard h.vocabularySize == vocab else {
                throw EvalError.logitsMismatch(path: reader.path, reason: "vocabulary \(h.vocabularySize) vs the model's \(vocab)")
            }
            tokens = h.tokens
            chunkCount = min(h.chunks, o.chunks ?? h.chunks)
        } else {
            // llama.cpp's -f drops one trailing newline before tokenizing (common/arg.cpp).
            let body = text.hasSuffix("\n") ? String(text.dropLast()) : text
            tokens = model.tokenize(body, addSpecial: true, parseSpecial: false)
            guard tokens.count >= 2 * c else { throw EvalError.textTooShort(tokens: tokens.count, needed: 2 * c, context: c) }
            chunkCount = tokens.count / c
            if let n = o.chunks { chunkCount = min(n, chunkCount) }
        }
        guard chunkCount > 0 else { throw EvalError.invalidOption(name: "chunks", value: "\(o.chunks ?? 0)", reason: "must be positive") }

        let writer = try o.saveLogitsPath.map { path throws(EvalError) in
            try LogitsFileWriter(path: path, header: LogitsFileHeader(context: c, vocabularySize: vocab, chunks: chunkCount,
                                                                        tokens: Array(tokens[0..<chunkCount * c])))
        }
        defer { writer?.close() }

        let session = try model.makeSession(SessionConfiguration(contextLength: c, batchSize: o.batchSize, threads: o.threads,
                                                                 cache: o.cache, calibration: o.calibration))
        let first = c / 2
        let rows = c - 1 - first
        var logits = [Float](repeating: 0, count: rows * vocab)
        let addBOS = model.tokenizer.addBOS
        let bos = model.tokenizer.bosID
        var nll = 0.0, nll2 = 0.0, count = 0
        var kl: KLDivergenceStats? = reader == nil ? nil : KLDivergenceStats()
        var bpv = 0.0, held = 0
        let start = DispatchTime.now().uptimeNanoseconds

        for chunk in 0..<chunkCount {
            session.reset()
            var chunkTokens = Array(tokens[chunk * c..<(chunk + 1) * c])
            if addBOS, let bos { chunkTokens[0] = bos }
            try logits.withUnsafeMutableBufferPointer { buf in
                try session.evaluate(chunkTokens, outputRows: first..<(c - 1), into: buf)
            }
            let memory = session.cacheMemory
            bpv = memory.bitsPerValue
            held = memory.logicalBytes
            let base = try reader?.nextChunk()
            logits.withUnsafeBufferPointer { buf in
                for r in 0..<rows {
                    let row = buf.baseAddress! + r * vocab
                    let target = Int(chunkTokens[first + r + 1])
                    let lse = LogSoftmax.logSumExp(row, vocab).lse
                    let v = lse - Double(row[target])
                    nll += v
                    nll2 += v * v
                    if let base {
                        base.withUnsafeBufferPointer { b in
                            kl!.add(logits: row, vocabularySize: vocab, base: b.baseAddress! + r * reader!.header.valuesPerRow, token: target)
                        }
                    }
                }
                writer?.append(logits: buf.baseAddress!, rows: rows)
            }
            count += rows
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            progress(PerplexityProgress(chunk: chunk + 1, chunks: chunkCount, perplexity: Foundation.exp(nll / Double(count)),
                                        secondsElapsed: elapsed, kl: kl))
        }
        let mean = nll / Double(count)
        let variance = nll2 / Double(count) - mean * mean
        let ppl = Foundation.exp(mean)
        let unc = variance > 0 && count > 1 ? ppl * (variance / Double(count - 1)).squareRoot() : 0
        return PerplexityResult(perplexity: ppl, uncertainty: unc, scoredTokens: count, chunks: chunkCount,
                                textTokens: tokens.count, cacheBitsPerValue: bpv, cacheBytesHeld: held, kl: kl,
                                seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
}
