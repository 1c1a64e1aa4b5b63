// Speed of building the tokenizers and of encoding the wikitext corpus. Prints the numbers; the limits
// are loose (other suites run in parallel on small CI machines). Targets: Gemma 3's 262,144-token
// vocabulary builds in well under 0.5 s, the 1.3 MB corpus encodes in well under a second.
import Foundation
import GodwitGGUF
import GodwitTestSupport
import GodwitTokenizer
import Testing

@Suite("Tokenizer performance", .serialized)
struct TokenizerPerformanceTests {
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    @Test("construction and wikitext encode throughput", arguments: ["smollm2", "gemma3"])
    func speed(model: String) throws {
        let path = model == "smollm2" ? try TestPaths.smolLM2() : try TestPaths.gemma3()
        let gguf = try GGUFFile(path: path)
        var build = Double.infinity
        var tok: Tokenizer?
        for _ in 0..<3 { build = min(build, try Self.seconds { tok = try Tokenizer(gguf: gguf) }) }
        let tokenizer = try #require(tok)
        let text = try String(contentsOf: TestPaths.shared("data/wikitext-2-test.txt"), encoding: .utf8)
        var encode = Double.infinity
        var count = 0
        for _ in 0..<3 {
            encode = min(encode, Self.seconds { count = tokenizer.encode(text, addSpecial: true, parseSpecial: false).count })
        }
        let ids = tokenizer.encode(text, addSpecial: true, parseSpecial: false)
        let decode = Self.seconds { _ = tokenizer.decode(ids) }
        let mb = Double(text.utf8.count) / 1e6
        print(String(format: "%@: build %.1f ms, encode %.3f s = %.1f MB/s (%d tokens), decode %.1f MB/s",
                     model, build * 1e3, encode, mb / encode, count, mb / decode))
        #if !DEBUG  // the limits are for release builds
        #expect(build < 1.5)
        #expect(encode < 3.0)
        #endif
    }
}
