import GodwitGGUF
import Testing

/// Error descriptions name the tensor or key and the offending value.
@Suite struct GGUFErrorMessageTests {
    @Test func messagesNameTheCulprit() throws {
        var b = try sampleFile()
        b.put(UInt32(99), at: b.tensorFields("t.q80", nDims: 2).type)
        let e = #expect(throws: GGUFError.self) { try GGUFFile(bytes: b) }
        #expect(e?.description == "GGUF tensor 't.q80' has unknown ggml type 99")

        var c = try sampleFile()
        c.put(UInt64(1) << 62, at: c.afterString("test.name") + 4)
        let e2 = #expect(throws: GGUFError.self) { try GGUFFile(bytes: c) }
        #expect(e2?.description.contains("value of 'test.name'") == true)
        #expect(e2?.description.contains("\(UInt64(1) << 62) bytes") == true)

        #expect(GGUFError.duplicateKey("general.name").description == "GGUF metadata key 'general.name' appears twice")
        #expect(GGUFError.tensorsOverlap(first: "a.weight", second: "b.weight").description
                == "GGUF tensors 'a.weight' and 'b.weight' have overlapping data")
        #expect(GGUFError.misalignedTensor(tensor: "blk.0.attn_q.weight", offset: 33, alignment: 32).description
                .contains("'blk.0.attn_q.weight' data offset 33"))
    }

    @Test func typedAccessorsNameTheKey() throws {
        var w = GGUFWriter()
        w.set("llama.block_count", .string("thirty"))
        let file = try GGUFFile(bytes: w.bytes())
        let e = #expect(throws: GGUFError.self) { try file.int("llama.block_count") }
        #expect(e?.description == "GGUF metadata 'llama.block_count' should be an integer, found string")
        #expect(throws: GGUFError.missingKey("llama.context_length")) { try file.int("llama.context_length") }
        #expect(throws: GGUFError.missingTensor("output.weight")) { try file.tensor("output.weight") }
    }
}
