// Golden tokenizations from llama.cpp (../shared/reference/<model>/tokenizer.json): ids produced by
// `llama_tokenize(text, add_special: add_bos, parse_special: true)` for SmolLM2 (gpt2 + smollm pre-tokenizer)
// and Gemma 3 (llama = SentencePiece). Every case must encode to exactly those ids and decode back to the text.
import Foundation
import GodwitGGUF
import GodwitTestSupport
import GodwitTokenizer
import Testing

/// The two real tokenizers, built once per test process.
enum Models {
    static func load(_ name: String) throws -> Tokenizer {
        let path = name == "smollm2" ? try TestPaths.smolLM2() : try TestPaths.gemma3()
        return try Tokenizer(gguf: GGUFFile(path: path))
    }
    static let smolLM2 = Result { try load("smollm2") }
    static let gemma3 = Result { try load("gemma3") }
    static func get(_ name: String) throws -> Tokenizer { try (name == "smollm2" ? smolLM2 : gemma3).get() }
}

@Suite("Reference tokenizations")
struct ReferenceTokenizerTests {
    @Test("encode matches llama.cpp and decode round-trips", arguments: ["smollm2", "gemma3"])
    func referenceCases(model: String) throws {
        let tok = try Models.get(model)
        let file = try Reference.tokenizer(model)
        #expect(file.cases.count == 32)
        var encodeFailures = [String]()
        var decodeFailures = [String]()
        for c in file.cases {
            let ids = tok.encode(c.text, addSpecial: file.add_bos, parseSpecial: file.parse_special)
            if ids != c.ids { encodeFailures.append("\(c.text.debugDescription): got \(ids), want \(c.ids)") }
            // The chat-template case holds control tokens, which render only with renderSpecial.
            let text = tok.decode(c.ids, renderSpecial: file.parse_special)
            if text != c.text { decodeFailures.append("\(c.text.debugDescription) decoded as \(text.debugDescription)") }
        }
        #expect(encodeFailures.isEmpty,
                "\(model): \(encodeFailures.count)/\(file.cases.count) differ:\n\(encodeFailures.joined(separator: "\n"))")
        #expect(decodeFailures.isEmpty, "\(model): \(decodeFailures.joined(separator: "\n"))")
        print("\(model): \(file.cases.count - encodeFailures.count)/\(file.cases.count) reference cases encode exactly, "
              + "\(file.cases.count - decodeFailures.count)/\(file.cases.count) decode exactly")
    }

    @Test("SmolLM2 metadata and special tokens")
    func smolLM2Metadata() throws {
        let tok = try Models.get("smollm2")
        #expect(tok.kind == "gpt2")
        #expect(tok.preTokenizer == "smollm")
        #expect(tok.vocabularySize == 49152)
        #expect(tok.bosID == 1 && tok.eosID == 2)
        #expect(tok.eotID == 0)  // <|endoftext|>, as llama.cpp prints "EOT token = 0"
        #expect(!tok.addBOS && !tok.addEOS)
        #expect(tok.tokenID(for: "<|im_end|>") == 2)
        #expect(tok.tokenID(for: "Ġworld") == 905)
        #expect(tok.tokenID(for: "no such token") == nil)
        #expect(tok.token(905) == "Ġworld")
        #expect(tok.isControl(1) && !tok.isControl(905))
        // llama.cpp's EOG list for this model: 0, 2 and 4 (<reponame>, detected as FIM repo token).
        #expect(tok.endOfGenerationIDs == [0, 2, 4])
        #expect(tok.isEndOfGeneration(2) && !tok.isEndOfGeneration(1))
        #expect(tok.piece(for: 905) == Array(" world".utf8))
        #expect(tok.piece(for: 2).isEmpty && tok.piece(for: 2, renderSpecial: true) == Array("<|im_end|>".utf8))
        // Without parse_special the control-token text is ordinary text.
        let plain = tok.encode("<|im_end|>", addSpecial: false, parseSpecial: false)
        #expect(plain != [2] && tok.decode(plain) == "<|im_end|>")
    }

    @Test("Gemma 3 metadata and special tokens")
    func gemma3Metadata() throws {
        let tok = try Models.get("gemma3")
        #expect(tok.kind == "llama")
        #expect(tok.vocabularySize == 262_144)
        #expect(tok.bosID == 2 && tok.eosID == 1 && tok.eotID == 106)
        #expect(tok.addBOS && !tok.addEOS)
        #expect(tok.tokenID(for: "<end_of_turn>") == 106)
        #expect(tok.tokenID(for: "<start_of_turn>") == 105)
        // llama.cpp's EOG list: <eos>, <end_of_turn>, and "</s>" (user-defined, matched by text).
        #expect(tok.endOfGenerationIDs == [1, 106, 212])
        #expect(tok.isControl(212))
        #expect(tok.encode("Hi", addSpecial: true, parseSpecial: false).first == 2)
        #expect(tok.piece(for: 248) == [0x0A])  // <0x0A>
        #expect(tok.decode([2, 9259, 1902]) == "Hello world")  // BOS renders as nothing
        #expect(tok.decode([2, 9259], renderSpecial: true) == "<bos>Hello")
        // Chat markup is split out only with parse_special; user-defined "\n" is always split out.
        let turn = "<start_of_turn>user\nHi<end_of_turn>\n"
        let ids = tok.encode(turn, addSpecial: false, parseSpecial: true)
        #expect(ids.first == 105 && ids.contains(106))
        #expect(!tok.encode(turn, addSpecial: false, parseSpecial: false).contains(105))
        #expect(tok.decode(ids, renderSpecial: true) == turn)
    }
}
