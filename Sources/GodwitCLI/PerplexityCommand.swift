import ArgumentParser
import Foundation
import Godwit
import GodwitEval

struct PerplexityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity over a text file, computed exactly like llama-perplexity; optionally KL divergence against a base run.",
        discussion: """
        The text is cut into ⌊tokens/c⌋ chunks of c tokens (BOS replaces each chunk's first token when the
        model adds BOS); the last c−1−c/2 predictions of every chunk are scored.
        --kl-divergence-base FILE saves this run's log-probabilities (llama.cpp's file format; ~1 GB for
        40 chunks of SmolLM2); --kl-divergence compares against such a file (the text comes from the file).
        """)

    @OptionGroup var model: ModelOptions
    @Option(name: [.customShort("f"), .customLong("file")], help: "Text file (e.g. wikitext-2-test.txt).")
    var file: String?
    @Option(name: [.customShort("c"), .customLong("ctx-size")], help: "Tokens per chunk.")
    var contextSize: Int = 512
    @Option(name: .customLong("chunks"), help: "Evaluate only the first N chunks.")
    var chunks: Int?
    @Option(name: [.customShort("b"), .customLong("batch-size")], help: "Batch size (≤ context: the chunk is evaluated in pieces).")
    var batchSize: Int = 512
    @Option(name: [.customShort("t"), .customLong("threads")], help: "Threads (default: one per core).")
    var threads: Int?
    @OptionGroup var cache: CacheOptions
    @Option(name: .customLong("kl-divergence-base"), help: "Save this run's log-probabilities to FILE.")
    var klBase: String?
    @Flag(name: .customLong("kl-divergence"), help: "Compare against the log-probabilities in --kl-divergence-base FILE.")
    var klDivergence = false

    func validate() throws {
        if contextSize < 4 { throw ValidationError("--ctx-size must be at least 4, got \(contextSize)") }
        if let n = chunks, n <= 0 { throw ValidationError("--chunks must be positive, got \(n)") }
        if batchSize <= 0 { throw ValidationError("--batch-size must be positive, got \(batchSize)") }
        if let t = threads, t <= 0 || t > 1024 { throw ValidationError("--threads must be 1…1024, got \(t)") }
        if klDivergence && klBase == nil { throw ValidationError("--kl-divergence needs --kl-divergence-base FILE (the base run)") }
        if !klDivergence && file == nil { throw ValidationError("give the text with -f FILE") }
    }

    func run() async throws {
        let lm = try loadModel(model.model)
        var text = ""
        if !klDivergence {
            guard let s = try? String(contentsOfFile: file!, encoding: .utf8) else { throw ValidationError("cannot read \(file!)") }
            text = s
        }
        var o = PerplexityOptions()
        o.contextLength = contextSize
        o.chunks = chunks
        o.batchSize = batchSize
        o.threads = threads
        o.cache = cache.configuration
        o.calibration = try cache.loadCalibration()
        if klDivergence { o.klBasePath = klBase } else { o.saveLogitsPath = klBase }
        printError("perplexity: model \(lm.config.name), -c \(contextSize), K \(cache.cacheTypeK), V \(cache.cacheTypeV)"
                   + (cache.noRotation ? ", no rotation" : ""))
        let result: PerplexityResult
        do {
            result = try Perplexity.run(model: lm, text: text, options: o) { p in
                let eta = p.secondsRemaining
                if p.chunk == 1 { printError(String(format: "%.2f seconds per chunk, ETA %.0f s", p.secondsElapsed, eta)) }
                printError(String(format: "[%d/%d] PPL %.4f  (%.0f s elapsed, ETA %.0f s)", p.chunk, p.chunks, p.perplexity, p.secondsElapsed, eta))
            }
        } catch let e as CustomStringConvertible {
            throw ValidationError(e.description)
        }
        print(String(format: "KV cache bpv: %.4f", result.cacheBitsPerValue))
        print(String(format: "Final estimate: PPL = %.4f +/- %.5f", result.perplexity, result.uncertainty))
        print("scored tokens: \(result.scoredTokens) in \(result.chunks) chunks of \(contextSize); \(String(format: "%.1f", result.seconds)) s")
        if let kl = result.kl { printKL(kl) }
    }

    func printKL(_ kl: KLDivergenceStats) {
        let (ppl, pplU) = kl.perplexity, (base, baseU) = kl.basePerplexity
        let (ratio, ratioU) = kl.logPerplexityRatio
        let (kld, kldU) = kl.meanKLD
        print("")
        print("====== Perplexity statistics ======")
        print(String(format: "Mean PPL(Q)                   : %10.6f ± %10.6f", ppl, pplU))
        print(String(format: "Mean PPL(base)                : %10.6f ± %10.6f", base, baseU))
        print(String(format: "Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f", ratio, ratioU))
        print(String(format: "ΔPPL                          : %+10.4f%%", (ppl / base - 1) * 100))
        print("")
        print("====== KL divergence statistics ======")
        print(String(format: "Mean    KLD: %10.6f ± %10.6f", kld, kldU))
        for (label, p) in [("Maximum", 100.0), ("99.9%", 99.9), ("99.0%", 99.0), ("Median", 50.0), ("10.0%", 10.0), ("5.0%", 5.0), ("1.0%", 1.0), ("Minimum", 0.0)] {
            print(String(format: "%-7@ KLD: %10.6f", label, Double(kl.kldPercentile(p))))
        }
        print("")
        print("====== Token probability statistics ======")
        print(String(format: "RMS Δp    : %6.3f %%", kl.rmsPDiff * 100))
        print(String(format: "Same top p: %6.3f %%", kl.sameTopFraction * 100))
    }
}
