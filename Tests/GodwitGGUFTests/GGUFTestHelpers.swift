import Foundation
import GodwitGGUF
import Testing

/// A fresh directory under the temporary directory, removed when the value goes away.
final class TempDir {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory
            .appendingPathComponent("godwit-gguf-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(at: url) }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// Writes `bytes` to `name` and opens it with the memory-mapping reader.
    func open(_ bytes: [UInt8], name: String = "test.gguf") throws -> GGUFFile {
        let p = path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return try GGUFFile(path: p)
    }

    /// The `GGUFError` that opening `bytes` from a file throws (nil, recorded as an issue, if none).
    func error(_ bytes: [UInt8], name: String = "test.gguf",
               sourceLocation: SourceLocation = #_sourceLocation) throws -> GGUFError? {
        let p = path(name)
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return #expect(throws: GGUFError.self, sourceLocation: sourceLocation) { try GGUFFile(path: p) }
    }
}

/// Deterministic filler bytes for tensor data.
func pattern(_ count: Int, seed: Int = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: ($0 &* 37 &+ seed &* 101 &+ 11) ^ ($0 >> 3)) }
}

func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

/// Locating and patching fields of a serialized GGUF file.
extension [UInt8] {
    /// Offset of the first occurrence of `needle`, or nil.
    func firstOffset(of needle: [UInt8]) -> Int? {
        guard needle.count <= count else { return nil }
        for i in 0...(count - needle.count) where self[i] == needle[0] && Array(self[i..<i + needle.count]) == needle {
            return i
        }
        return nil
    }

    /// Offset just after the GGUF string `s` (u64 length + bytes) as serialized: where a key's
    /// value type, or a tensor name's n_dims, begins.
    func afterString(_ s: String) -> Int {
        let needle = le(UInt64(s.utf8.count)) + Array(s.utf8)
        guard let o = firstOffset(of: needle) else { preconditionFailure("string '\(s)' not in the file") }
        return o + needle.count
    }

    func read<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var v = T.zero
        for i in 0..<MemoryLayout<T>.size { v |= T(truncatingIfNeeded: self[offset + i]) << (8 * i) }
        return v
    }

    mutating func put<T: FixedWidthInteger>(_ v: T, at offset: Int) {
        replaceSubrange(offset..<offset + MemoryLayout<T>.size, with: le(v))
    }

    /// Offsets of the fields of the tensor info called `name` with `nDims` dimensions.
    func tensorFields(_ name: String, nDims: Int) -> (nDims: Int, dims: Int, type: Int, offset: Int) {
        let start = afterString(name)
        return (start, start + 4, start + 4 + 8 * nDims, start + 8 + 8 * nDims)
    }
}
