import ArgumentParser
import Foundation
import Godwit
import GodwitGGUF
import GodwitKVCache
import GodwitModel

struct InspectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a model's architecture, hyper-parameters, tensor types, tokenizer and KV cache cost.",
        discussion: "With --ctx N, also the K and V bytes every registered cache type needs for N tokens.")

    @Argument(help: "Model: a .gguf path or a known name (default: smollm2).")
    var model: String?
    @Option(name: .customLong("ctx"), help: "Context length for the per-format KV memory table.")
    var ctx: Int?

    func validate() throws {
        if let c = ctx, c <= 0 { throw ValidationError("--ctx must be positive, got \(c)") }
    }

    func run() async throws {
        let lm = try loadModel(model)
        let c = lm.config
        print("model:        \(lm.path)")
        print("name:         \(c.name)")
        print("architecture: \(c.architecture)")
        print(String(format: "parameters:   %.2f M, weights %.2f MiB", Double(lm.transformer.parameterCount) / 1e6, mib(lm.transformer.weightBytes)))
        print("layers: \(c.layerCount)  embedding: \(c.embeddingLength)  feed-forward: \(c.feedForwardLength) (\(c.feedForward.rawValue))")
        print("heads: \(c.headCount)  kv heads: \(c.kvHeadCount)  key length: \(c.keyLength)  value length: \(c.valueLength)")
        print("context (trained): \(c.trainedContextLength)  vocabulary: \(c.vocabularySize)  rms eps: \(c.rmsEpsilon)")
        print("rope: \(c.ropeStyle.rawValue), \(c.ropeDimensions) dims, base \(c.ropeBase), frequency scale \(c.ropeFrequencyScale)"
              + (lm.transformer.weights.ropeFrequencyFactors.isEmpty ? "" : ", rope_freqs factors"))
        if let w = c.slidingWindow {
            let sliding = c.slidingLayers.enumerated().filter { $0.element }.map(\.offset)
            let global = c.slidingLayers.enumerated().filter { !$0.element }.map(\.offset)
            print("sliding window: \(w) on \(sliding.count) layers (rope base \(c.slidingRopeBase)); global layers: \(global)")
        }
        print("attention scale: \(c.attentionScale)  embedding scale: \(c.embeddingScale)  output head: \(lm.transformer.weights.outputIsTied ? "tied to token embedding" : "separate")")
        var types = [String: Int]()
        for t in lm.gguf.tensors { types[t.type.name, default: 0] += 1 }
        print("tensor types: " + types.sorted { $0.value > $1.value }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", "))
        let tk = lm.tokenizer
        print("tokenizer: \(tk.kind) (pre: \(tk.preTokenizer)), \(tk.vocabularySize) tokens, bos \(tk.bosID.map(String.init) ?? "-"), eos \(tk.eosID.map(String.init) ?? "-"), add_bos \(tk.addBOS), add_eos \(tk.addEOS)")
        print("chat template: " + (lm.chatTemplateSource.map { ChatTemplate.detect(jinja: $0)?.rawValue ?? "unrecognised" } ?? "none"))
        print("KV bytes per token (f16 K and V, all layers): \(lm.f16CacheBytesPerToken)")
        if let ctx { try printCacheTable(lm, ctx: ctx) }
    }

    func printCacheTable(_ lm: LanguageModel, ctx: Int) throws {
        let specs = lm.transformer.cacheSpecs
        print("")
        print("KV cache for \(ctx) tokens (K and V counted apart; a K/V pair costs the sum):")
        let hasSliding = specs.contains { $0.window != nil }
        var header = "| type | K bpv | V bpv | K bytes | V bytes |"
        var rule = "|---|---:|---:|---:|---:|"
        if hasSliding {
            header += " global K+V logical | global allocated | sliding K+V logical | sliding allocated |"
            rule += "---:|---:|---:|---:|"
        }
        print(header)
        print(rule)
        for scheme in KVSchemeRegistry.shared.all {
            let config = KVCacheConfiguration(keyScheme: scheme.name, valueScheme: scheme.name)
            let cache: KVCache
            do {
                cache = try KVCache(specs: specs, contextLength: ctx, maxBatch: 512, configuration: config, threads: 1)
            } catch {
                print("| \(scheme.name) | – | – | – | – | (\(error)) |")
                continue
            }
            let m = cache.memory(tokens: ctx)
            var row = String(format: "| %@ | %.3f | %.3f | %d | %d |", scheme.name, m.keyBitsPerValue, m.valueBitsPerValue,
                             m.keyLogicalBytes, m.valueLogicalBytes)
            if hasSliding {
                row += " \(m.global.logical) | \(m.global.allocated) | \(m.sliding.logical) | \(m.sliding.allocated) |"
            }
            print(row)
        }
    }
}
