import Foundation
import Godwit
import GodwitEval
import GodwitTestSupport
import Testing

/// Perplexity parity with llama.cpp on wikitext-2 (../shared/reference/*/perplexity.json):
/// f16/f16 within 0.5% of llama.cpp's, and for every other K/V pair the *cost* of the format
/// agrees: Δ = PPL(pair)/PPL(f16) − 1 for each engine against its own f16, and
/// |Δ_Godwit − Δ_llama.cpp| ≤ max(0.2 percentage points, 0.25·Δ_llama.cpp).
/// The full 40-chunk runs of every pair are in docs/kv-cache-formats.md; this runs the pairs below.
@Suite(.serialized) struct PerplexityParityTests {
    static func perplexity(_ name: String, ctx: Int, chunks: Int, k: String, v: String, numerics: Numerics = .fast) throws -> Double {
        var o = PerplexityOptions()
        o.contextLength = ctx
        o.chunks = chunks
        o.batchSize = min(ctx, 512)
        o.threads = 2
        o.cache = KVCacheConfiguration(keyScheme: k, valueScheme: v, numerics: numerics)
        let text = try String(contentsOf: TestPaths.shared("data/wikitext-2-test.txt"), encoding: .utf8)
        let r = try Perplexity.run(model: try Fixtures.model(name), text: text, options: o)
        print("\(name) -c \(ctx) --chunks \(chunks) \(k)/\(v) (\(numerics)): PPL \(r.perplexity) ± \(r.uncertainty), KV bpv \(r.cacheBitsPerValue)")
        return r.perplexity
    }

    /// `known`: pairs whose cost is known to miss the rule, with the reason (recorded, not failed).
    static func check(_ name: String, section: String?, ctx: Int, chunks: Int, pairs: [String],
                      known: [String: Comment] = [:]) throws {
        let reference = try Reference.perplexity(name, section: section)
        let base = try perplexity(name, ctx: ctx, chunks: chunks, k: "f16", v: "f16")
        let refBase = reference["f16/f16"]!.ppl
        #expect(abs(base / refBase - 1) <= 0.005, "f16/f16: \(base) vs llama.cpp \(refBase)")
        for pair in pairs {
            let kv = pair.split(separator: "/").map(String.init)
            let ppl = try perplexity(name, ctx: ctx, chunks: chunks, k: kv[0], v: kv[1])
            let ours = ppl / base - 1, theirs = reference[pair]!.ppl / refBase - 1
            let tolerance = max(0.002, 0.25 * theirs)
            let message: Comment = "\(pair): Godwit Δ \(String(format: "%+.3f%%", ours * 100)) vs llama.cpp \(String(format: "%+.3f%%", theirs * 100)) (tolerance \(String(format: "%.3f%%", tolerance * 100)))"
            print(message)
            if let why = known[pair] {
                withKnownIssue(why, isIntermittent: true) { #expect(abs(ours - theirs) <= tolerance, message) }
            } else {
                #expect(abs(ours - theirs) <= tolerance, message)
            }
        }
    }

    /// q8_0's cost (llama.cpp: SmolLM2 +0.01 %, Gemma 3 +0.25 %) is below what any rounding change
    /// moves a 40-chunk perplexity by (a few tenths of a percent, the rule's own tolerance): fast
    /// numerics land on either side of the line depending on last-bit details (measured: the cache
    /// quantizer's rounding alone moved SmolLM2 from +0.06 % to +0.24 % and Gemma from −0.12 % to
    /// +0.06 %; docs/kv-cache-formats.md). Recorded, not failed; `ggmlExact` below shows the two
    /// engines compute the same q8_0 cache: with llama.cpp's kernels the perplexities are equal.
    static let belowNoise: [String: Comment] = [
        "q8_0/q8_0": "q8_0's cost is below the perplexity's rounding noise in fast numerics (exact in ggml numerics)",
    ]

    @Test("SmolLM2, -c 512, 40 chunks")
    func smollm2() throws {
        try Self.check("smollm2", section: nil, ctx: 512, chunks: 40, pairs: ["q8_0/q8_0", "q4_0/q4_0", "q4_0/f16", "f16/q4_0", "iq4_nl/iq4_nl", "bf16/bf16"],
                       known: Self.belowNoise)
    }

    @Test("Gemma 3, -c 512, 40 chunks")
    func gemma3c512() throws {
        try Self.check("gemma3", section: "c512", ctx: 512, chunks: 40, pairs: ["q8_0/q8_0", "q4_0/q4_0"], known: Self.belowNoise)
    }

    /// With `numerics: .ggml` (llama.cpp's kernels in llama.cpp's order, flash attention on as in the
    /// reference runs) Godwit's perplexities are llama.cpp's to the reference's 4 decimals, so every
    /// cost is llama.cpp's: f16 through the tiled flash-attention kernel, q8_0 through the one-chunk
    /// kernel with its q8_0 query, Hadamard rotation and cache quantizer. (Also measured equal:
    /// Gemma q4_0/q4_0 17.9546; see docs/kv-cache-formats.md.)
    @Test("ggml numerics: llama.cpp's -c 512 perplexities to the last digit", arguments: ["smollm2", "gemma3"])
    func ggmlExact(model: String) throws {
        let reference = try Reference.perplexity(model, section: model == "gemma3" ? "c512" : nil)
        for pair in ["f16/f16", "q8_0/q8_0"] {
            let kv = pair.split(separator: "/").map(String.init)
            let ppl = try Self.perplexity(model, ctx: 512, chunks: 40, k: kv[0], v: kv[1], numerics: .ggml)
            let theirs = reference[pair]!.ppl
            #expect(abs(ppl - theirs) <= 0.0001, "\(model) \(pair) (ggml): \(ppl) vs llama.cpp \(theirs)")
        }
    }

    @Test("Gemma 3, -c 2048, 10 chunks (exercises the 512-token sliding window)")
    func gemma3c2048() throws {
        try Self.check("gemma3", section: "c2048", ctx: 2048, chunks: 10, pairs: ["q8_0/q8_0", "q4_0/q4_0"])
    }
}
