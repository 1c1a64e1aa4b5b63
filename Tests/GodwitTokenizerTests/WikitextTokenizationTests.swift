// The perplexity corpus (../shared/data/wikitext-2-test.txt, 1,307,975 bytes, CRLF line ends) tokenized
// whole, as `llama-tokenize -m MODEL -f FILE --ids --no-escape --no-parse-special` (llama.cpp from
// llama-cpp-python 0.3.36) tokenizes it: add_special per the model (BOS for Gemma 3, none for SmolLM2),
// parse_special off, file bytes verbatim. The pinned hashes are FNV-1a 64 over the little-endian int32 ids
// llama.cpp printed, so every id is compared, not just the count.
// (llama-perplexity itself drops the file's final '\n' before tokenizing, which changes the last token.)
import Foundation
import GodwitTestSupport
import GodwitTokenizer
import Testing

@Suite("Wikitext tokenization")
struct WikitextTokenizationTests {
    struct Expected: Sendable, CustomTestStringConvertible {
        let model: String
        let count: Int
        let fnv1a: UInt64
        var testDescription: String { model }
    }

    static let expected = [
        Expected(model: "smollm2", count: 309_187, fnv1a: 0xe375_83ab_b572_b062),
        Expected(model: "gemma3", count: 312_601, fnv1a: 0x2226_d338_a343_2d12),
    ]

    static func fnv1a(_ ids: [Int32]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for id in ids {
            var v = UInt32(bitPattern: id)
            for _ in 0..<4 {
                h = (h ^ UInt64(v & 0xFF)) &* 0x0000_0100_0000_01b3
                v >>= 8
            }
        }
        return h
    }

    @Test("whole file: ids identical to llama.cpp's", arguments: expected)
    func wikitext(_ e: Expected) throws {
        let tok = try Models.get(e.model)
        let text = try String(contentsOf: TestPaths.shared("data/wikitext-2-test.txt"), encoding: .utf8)
        let ids = tok.encode(text, addSpecial: true, parseSpecial: false)
        #expect(ids.count == e.count)
        #expect(Self.fnv1a(ids) == e.fnv1a, "token ids differ from llama.cpp's")
        #expect(tok.decode(ids) == text)
    }
}
