import Foundation
import Godwit
import Testing

/// The README's Swift API example, verbatim between the markers, compiled and run.
@Suite(.serialized) struct ReadmeExampleTests {
    @Test("The README example runs on the default model")
    func readmeExample() async throws {
        var printed = ""
        func print(_ items: Any..., terminator: String = "\n") {
            printed += items.map { "\($0)" }.joined(separator: " ") + terminator
        }
        // README example begins
        let model = try LanguageModel.load()   // default model; or LanguageModel(path: "/path/model.gguf")
        let cache = KVCacheConfiguration(keyScheme: "q8_0", valueScheme: "q8_0")
        let session = try model.makeSession(SessionConfiguration(contextLength: 2048, cache: cache))
        for try await text in session.generate(prompt: "The capital of France is", maxTokens: 24) {
            print(text, terminator: "")
        }
        print("\n\(session.timings.generationTokensPerSecond) t/s, KV \(session.cacheMemory.logicalBytes) bytes")
        // README example ends
        #expect(printed.hasPrefix(" Paris"), "\(printed)")
        // q8_0: 34 bytes per 32 values, K and V, 30 layers × 3 KV heads × 64 dims per token.
        #expect(session.cacheMemory.logicalBytes == session.tokens.count * 30 * 3 * 64 * 2 * 34 / 32)
    }

    @Test("The README's example block and this test stay in sync")
    func inSync() throws {
        let readme = try String(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        let test = try String(contentsOf: URL(fileURLWithPath: #filePath), encoding: .utf8)
        let body = test.components(separatedBy: "// README example begins\n")[1].components(separatedBy: "        // README example ends")[0]
        let lines = body.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        for line in lines { #expect(readme.contains(line), "README lacks: \(line)") }
    }
}
