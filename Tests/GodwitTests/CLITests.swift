import Foundation
import Testing

/// Runs the built `godwit` executable (it sits next to the test bundle in the build folder).
@Suite(.serialized) struct CLITests {
    static var binary: URL {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        if dir.lastPathComponent == "MacOS" { dir = dir.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent() }
        return dir.appendingPathComponent("godwit")
    }

    static func run(_ args: [String], stdin: String? = nil) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = binary
        p.arguments = args
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        if let stdin { inp.fileHandleForWriting.write(Data(stdin.utf8)) }
        try inp.fileHandleForWriting.close()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    @Test("generate: stdout carries only the generated text; speeds and KV memory go to stderr")
    func generate() throws {
        let r = try Self.run(["generate", "-p", "The capital of France is", "-n", "8", "--temp", "0", "-c", "64", "-t", "2"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.hasPrefix(" Paris"), "\(r.out)")
        #expect(!r.out.contains("t/s"))
        #expect(r.err.contains("prompt:") && r.err.contains("generation:") && r.err.contains("KV cache:"))
    }

    @Test("tokenize --ids prints a JSON array like llama-tokenize")
    func tokenize() throws {
        let r = try Self.run(["tokenize", "-p", "Hello world", "--ids"])
        #expect(r.status == 0)
        #expect(r.out.trimmingCharacters(in: .whitespacesAndNewlines) == "[19556, 905]")
    }

    @Test("Bad input gives a clear error, not a crash")
    func errors() throws {
        let unknownType = try Self.run(["generate", "-p", "x", "-ctk", "q3_z"])
        #expect(unknownType.status != 0 && unknownType.err.contains("unknown KV cache type 'q3_z'"))
        let missing = try Self.run(["generate", "-m", "/nonexistent/model.gguf", "-p", "x"])
        #expect(missing.status != 0 && missing.err.contains("not found"))
        let noTemplate = try Self.run(["chat", "-m", "gemma3"], stdin: "hi\n")
        #expect(noTemplate.status != 0 && noTemplate.err.contains("--chat-template"))
    }

    @Test("chat keeps the conversation in the cache across turns")
    func chat() throws {
        let r = try Self.run(["chat", "--temp", "0", "-n", "16", "-c", "512", "--verbose"], stdin: "What is 2+2?\nAnd 3+3?\n")
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.split(separator: "\n", omittingEmptySubsequences: false).count >= 2)
        // Two replies: the second turn's prompt is only the new message, not the whole history.
        let prompts = r.err.split(separator: "\n").filter { $0.hasPrefix("prompt:") }
        #expect(prompts.count == 2)
        if prompts.count == 2 {
            let second = Int(prompts[1].split(separator: " ", omittingEmptySubsequences: true)[1])!
            #expect(second < 20, "second turn re-read \(second) tokens")
        }
    }

    @Test("inspect --ctx lists every registered cache type with K and V bytes")
    func inspect() throws {
        let r = try Self.run(["inspect", "smollm2", "--ctx", "4096"])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("architecture: llama"))
        // q4_0: 4.5 bits · 4096 tokens · 30 layers · 3 heads · 64 dims / 8 = 13,271,040 bytes each for K and V.
        #expect(r.out.contains("| q4_0 | 4.500 | 4.500 | 13271040 | 13271040 |"), "\(r.out)")
        #expect(r.out.contains("| f16 | 16.000 | 16.000 | 47185920 | 47185920 |"))
    }
}
