// StreamingDecoder: feeding ids one at a time must give the full decode in pieces, never emitting half a
// character (no U+FFFD in any chunk) even where byte-level BPE or SentencePiece byte tokens split one.
import GodwitTokenizer
import Testing

@Suite("Streaming decoder")
struct StreamingDecoderTests {
    static let texts = [
        "emoji: 🙂🚀👍🏽 and a family 👨‍👩‍👧",
        "日本語のテキストです。中文也可以。한국어도요.",
        "Привет, мир! Ünïcödé ✓ ✗ → ← ∑ ∫ √",
        "naïve café résumé 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𓀀",
    ]

    @Test("chunks concatenate to decode, without replacement characters", arguments: ["smollm2", "gemma3"])
    func realModels(model: String) throws {
        let tok = try Models.get(model)
        var heldBack = 0
        for text in Self.texts {
            let ids = tok.encode(text, addSpecial: true, parseSpecial: false)
            var decoder = StreamingDecoder(tokenizer: tok)
            var out = ""
            for id in ids {
                let chunk = decoder.append(id)
                #expect(!chunk.contains("\u{FFFD}"), "\(model): chunk \(chunk.debugDescription) of \(text)")
                if chunk.isEmpty { heldBack += 1 }
                out += chunk
            }
            out += decoder.flush()
            #expect(out == tok.decode(ids))
            #expect(out == text)
        }
        // Both tokenizers split some of these characters over several tokens (byte-level pieces, <0xXX>).
        #expect(heldBack > 0)
    }

    @Test("a character cut by the end of the stream is flushed as U+FFFD")
    func flushIncomplete() throws {
        let tok = try Models.get("smollm2")
        let ids = tok.encode("🚀", addSpecial: false, parseSpecial: false)
        #expect(ids.count > 1)
        var decoder = StreamingDecoder(tokenizer: tok)
        #expect(decoder.append(ids[0]) == "")
        #expect(decoder.flush() == "\u{FFFD}")
        #expect(decoder.flush() == "")
    }

    @Test("control tokens stream only with renderSpecial")
    func control() throws {
        let tok = try Models.get("smollm2")
        var plain = StreamingDecoder(tokenizer: tok)
        var special = StreamingDecoder(tokenizer: tok, renderSpecial: true)
        #expect(plain.append(2) == "")
        #expect(special.append(2) == "<|im_end|>")
    }
}
