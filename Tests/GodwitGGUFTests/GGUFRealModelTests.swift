import GodwitGGUF
import GodwitTestSupport
import Testing

/// The real default models parse (they come from scripts/fetch-model.sh; a missing one fails loudly).
@Suite struct GGUFRealModelTests {
    @Test func smolLM2() throws {
        let file = try GGUFFile(path: try TestPaths.smolLM2())
        #expect(file.version == 3 && file.alignment == 32)
        #expect(file.tensors.count == 272)
        #expect(try file.string("general.architecture") == "llama")
        #expect(try file.int("llama.block_count") == 30)
        #expect(try file.int("llama.embedding_length") == 576)
        #expect(try file.double("llama.rope.freq_base") == 100_000)

        // Keys in file order.
        #expect(file.metadataKeys.count == 33)
        #expect(Array(file.metadataKeys.prefix(4)) == ["general.architecture", "general.type", "general.name", "general.organization"])
        #expect(file.metadataKeys.last == "general.quantization_version")
        #expect(Array(file.metadataKeys[9...12]) == ["llama.block_count", "llama.context_length",
                                                    "llama.embedding_length", "llama.feed_forward_length"])

        let tokens = try file.strings("tokenizer.ggml.tokens")
        #expect(tokens.count == 49152)
        #expect(try file.ints("tokenizer.ggml.token_type").count == 49152)
        #expect(try file.strings("tokenizer.ggml.merges").count == 48900)
        #expect(try file.int("tokenizer.ggml.bos_token_id") == 1)
        #expect(tokens[1] == "<|im_start|>")

        let embd = try file.tensor("token_embd.weight")
        #expect(embd.info.type == .q8_0 && embd.info.dims == [576, 49152])
        #expect(embd.info.byteCount == 576 / 32 * 34 * 49152 && embd.data.count == embd.info.byteCount)
        #expect(embd.info.offset == 0 && file.dataOffset == 1_785_664)
        #expect(file.tensorInfo("blk.0.ffn_down.weight")?.type == .q4_1)
        #expect(file.tensorInfo("blk.29.attn_q.weight")?.dims == [576, 576])
        let last = file.tensors.max { $0.offset < $1.offset }!
        #expect(file.dataOffset + last.offset + last.byteCount <= file.fileSize)
    }

    @Test func gemma3() throws {
        let file = try GGUFFile(path: try TestPaths.gemma3())
        #expect(file.tensors.count == 236)
        #expect(try file.string("general.architecture") == "gemma3")
        #expect(try file.int("gemma3.block_count") == 18)
        #expect(try file.strings("tokenizer.ggml.tokens").count == 262_144)
        #expect(try file.floats("tokenizer.ggml.scores").count == 262_144)
        #expect(file.tensorInfo("token_embd.weight")?.type == .q8_0)
        #expect(file.tensorInfo("token_embd.weight")?.dims == [640, 262_144])
        #expect(file.tensors.first?.name == "output_norm.weight")
    }
}
