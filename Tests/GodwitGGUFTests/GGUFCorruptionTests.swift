import Foundation
import GodwitGGUF
import Testing

/// A small valid file to corrupt. Alignment 64, so `general.alignment` is the first key.
/// Tensors: t.f32 F32 [4, 2] (32 bytes), t.q80 Q8_0 [64, 2] (136 bytes), t.f16 F16 [8] (16 bytes).
func sampleFile(alignment: Int = 64) throws -> [UInt8] {
    var w = GGUFWriter(alignment: alignment)
    w.set("general.architecture", .string("llama"))
    w.set("test.u32", .uint32(7))
    w.set("test.name", .string("tiny"))
    w.set("test.list", .array(.int32([1, 2, 3])))
    w.set("test.words", .array(.string(["a", "bc"])))
    w.set("test.dup.a", .uint8(1))
    w.set("test.dup.b", .uint8(2))
    try w.addTensor(name: "t.f32", type: .f32, dims: [4, 2], data: pattern(32))
    try w.addTensor(name: "t.q80", type: .q8_0, dims: [64, 2], data: pattern(136, seed: 1))
    try w.addTensor(name: "t.f16", type: .f16, dims: [8], data: pattern(16, seed: 2))
    return w.bytes()
}

/// Each corruption gives its own typed error; nothing traps. Files are written to a temporary
/// directory and opened through the memory-mapping path.
@Suite struct GGUFCorruptionTests {
    let dir: TempDir
    let valid: [UInt8]
    init() throws {
        dir = try TempDir()
        valid = try sampleFile()
    }

    func corrupt(_ mutate: (inout [UInt8]) -> Void, sourceLocation: SourceLocation = #_sourceLocation) throws -> GGUFError? {
        var b = valid
        mutate(&b)
        return try dir.error(b, sourceLocation: sourceLocation)
    }

    func expectShape(_ error: GGUFError?, tensor: String, _ reason: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .invalidTensorShape(let t, _, let r)? = error else {
            Issue.record("expected invalidTensorShape, got \(String(describing: error))", sourceLocation: sourceLocation)
            return
        }
        #expect(t == tensor && r.contains(reason), "\(t): \(r)", sourceLocation: sourceLocation)
    }

    @Test func sampleIsValid() throws {
        let file = try dir.open(valid)
        #expect(file.alignment == 64 && file.tensors.count == 3 && file.metadataKeys.count == 8)
    }

    // MARK: Header

    @Test func badMagic() throws {
        let e = try corrupt { $0[0] = UInt8(ascii: "X") }
        #expect(e == .badMagic(found: 0x4655_4758))
    }

    @Test(arguments: [UInt32(2), 3])
    func bigEndian(version: UInt32) throws {
        #expect(try corrupt { $0.put(version.byteSwapped, at: 4) } == .bigEndian)
    }

    @Test(arguments: [UInt32(0), 1, 4, 0x1_0001])
    func unsupportedVersion(version: UInt32) throws {
        #expect(try corrupt { $0.put(version, at: 4) } == .unsupportedVersion(version))
    }

    @Test(arguments: [UInt64(1) << 62, .max])
    func absurdTensorCount(count: UInt64) throws {
        let e = try corrupt { $0.put(count, at: 8) }
        guard case .absurdCount("tensor count", count, let limit)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(limit < UInt64(valid.count))
    }

    @Test(arguments: [UInt64(1) << 62, .max])
    func absurdMetadataCount(count: UInt64) throws {
        let e = try corrupt { $0.put(count, at: 16) }
        guard case .absurdCount("metadata count", count, let limit)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(limit < UInt64(valid.count))
    }

    /// Every proper prefix up to the end of the last tensor's data fails, never traps:
    /// `.truncated`/`.absurdCount` before the data section, `.tensorOutOfBounds` inside it.
    @Test func truncationAtEveryOffset() throws {
        let file = try dir.open(valid)
        let last = file.tensors.max { $0.offset < $1.offset }!
        let end = file.dataOffset + last.offset + last.byteCount
        var kinds = [String: Int]()
        for length in 0..<end {
            let error = try dir.error(Array(valid[0..<length]), name: "prefix.gguf")
            switch error {
            case .truncated? where length < file.dataOffset: kinds["truncated", default: 0] += 1
            case .absurdCount? where length < file.dataOffset: kinds["absurdCount", default: 0] += 1
            case .tensorOutOfBounds? where length >= file.dataOffset: kinds["outOfBounds", default: 0] += 1
            default: Issue.record("prefix of \(length) bytes: unexpected \(String(describing: error))")
            }
        }
        #expect(kinds.values.reduce(0, +) == end)
        #expect(kinds.count == 3)
        // The trailing padding after the last tensor is not needed.
        _ = try dir.open(Array(valid[0..<end]))
    }

    /// The tensor count passes the size check but the file ends where the extra info should be.
    @Test func tensorCountFitsButInfosTruncated() throws {
        var w = GGUFWriter()
        let names = (0..<3).map { "a.rather.long.tensor.name.to.make.infos.big.\($0)" }
        for n in names { try w.addTensor(name: n, floats: [1, 2], dims: [2]) }
        var b = w.bytes()
        let infoEnd = b.tensorFields(names[2], nDims: 1).offset + 8
        b = Array(b[0..<infoEnd])
        b.put(UInt64(4), at: 8)
        let e = try dir.error(b)
        guard case .truncated(let what, infoEnd, 8, b.count)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(what == "length of name of tensor 3")
    }

    @Test func emptyFileAndMissingFile() throws {
        #expect(try dir.error([]) == .truncated(reading: "magic", offset: 0, needed: 4, fileSize: 0))
        let missing = dir.path("missing.gguf")
        let e = #expect(throws: GGUFError.self) { try GGUFFile(path: missing) }
        guard case .cannotOpen(missing, _)? = e else { Issue.record("got \(String(describing: e))"); return }
        let e2 = #expect(throws: GGUFError.self) { try GGUFFile(path: dir.url.path) }
        #expect(e2 == .cannotOpen(path: dir.url.path, reason: "not a regular file"))
    }

    // MARK: Metadata

    @Test func unknownValueType() throws {
        let e = try corrupt { $0.put(UInt32(13), at: $0.afterString("test.u32")) }
        #expect(e == .unknownValueType(key: "test.u32", type: 13))
    }

    @Test func unknownArrayElementType() throws {
        let e = try corrupt { $0.put(UInt32(42), at: $0.afterString("test.list") + 4) }
        #expect(e == .unknownValueType(key: "test.list", type: 42))
    }

    @Test(arguments: [UInt64(1) << 62, .max])
    func absurdArrayLength(count: UInt64) throws {
        for key in ["test.list", "test.words"] {
            let e = try corrupt { $0.put(count, at: $0.afterString(key) + 8) }
            guard case .absurdCount(let what, count, _)? = e else { Issue.record("\(key): got \(String(describing: e))"); continue }
            #expect(what == "array length of '\(key)'")
        }
    }

    /// A string length past the end of the file (a value, an array element, a key, a tensor name).
    @Test(arguments: [UInt64(1) << 62, .max])
    func absurdStringLength(length: UInt64) throws {
        let cases: [(String, (inout [UInt8]) -> Void)] = [
            ("value of 'test.name'", { $0.put(length, at: $0.afterString("test.name") + 4) }),
            ("element 0 of array 'test.words'", { $0.put(length, at: $0.afterString("test.words") + 16) }),
            ("key of metadata entry 0", { $0.put(length, at: 24) }),
            ("name of tensor 0", { $0.put(length, at: $0.afterString("t.f32") - 13) }),
        ]
        for (what, mutate) in cases {
            let e = try corrupt(mutate)
            guard case .truncated(what, _, Int(clamping: length), valid.count)? = e else {
                Issue.record("\(what): got \(String(describing: e))"); continue
            }
        }
    }

    @Test func duplicateKey() throws {
        let e = try corrupt { b in
            let o = b.afterString("test.dup.b") - 1
            b[o] = UInt8(ascii: "a")
        }
        #expect(e == .duplicateKey("test.dup.a"))
    }

    @Test(arguments: [UInt32(0), 3, 48, 1 << 20])
    func invalidAlignment(value: UInt32) throws {
        let e = try corrupt { $0.put(value, at: $0.afterString("general.alignment") + 4) }
        #expect(e == .invalidAlignment(UInt64(value)))
    }

    @Test func alignmentOfWrongType() throws {
        // int32 -1 (same size as the uint32 it replaces).
        let e = try corrupt { b in
            let o = b.afterString("general.alignment")
            b.put(UInt32(5), at: o)
            b.put(UInt32.max, at: o + 4)
        }
        #expect(e == .wrongValueType(key: "general.alignment", expected: "an unsigned integer", found: "int32 -1"))
        // uint64 beyond Int: a plain invalid value.
        var w = GGUFWriter()
        w.set("x", .uint8(0))
        var b = w.bytes()
        b.replaceSubrange(24..<(24 + 8 + 1 + 4 + 1), with: le(UInt64(17)) + Array("general.alignment".utf8) + le(UInt32(10)) + le(UInt64.max))
        #expect(try dir.error(b) == .invalidAlignment(.max))
    }

    @Test func alignmentOfOneIsValid() throws {
        var b = valid
        b.put(UInt32(1), at: b.afterString("general.alignment") + 4)
        let file = try dir.open(b)
        #expect(file.alignment == 1 && file.tensors.count == 3)
    }

    @Test func nestingTooDeep() throws {
        func nested(_ depth: Int) -> GGUFArray { depth == 1 ? .uint8([1]) : .arrays([nested(depth - 1)]) }
        var w8 = GGUFWriter(), w9 = GGUFWriter()
        w8.set("deep", .array(nested(8)))
        w9.set("deep", .array(nested(9)))
        #expect(try dir.open(w8.bytes())["deep"] == .array(nested(8)))
        #expect(try dir.error(w9.bytes()) == .nestingTooDeep(key: "deep"))
    }

    // MARK: Tensor infos

    @Test(arguments: [UInt32(4), 5, 31, 99, .max])
    func unknownTensorType(type: UInt32) throws {
        let e = try corrupt { $0.put(type, at: $0.tensorFields("t.q80", nDims: 2).type) }
        #expect(e == .unknownTensorType(tensor: "t.q80", type: type))
    }

    @Test(arguments: [UInt32(0), 5, .max])
    func dimensionCount(nDims: UInt32) throws {
        let e = try corrupt { $0.put(nDims, at: $0.tensorFields("t.f32", nDims: 2).nDims) }
        expectShape(e, tensor: "t.f32", "\(nDims) dimensions (1 to 4 allowed)")
    }

    @Test func firstDimensionNotAMultipleOfTheBlockSize() throws {
        let e = try corrupt { $0.put(UInt64(48), at: $0.tensorFields("t.q80", nDims: 2).dims) }
        expectShape(e, tensor: "t.q80", "not a multiple of the q8_0 block size 32")
    }

    @Test func elementCountOverflow() throws {
        let e = try corrupt { b in
            let f = b.tensorFields("t.f32", nDims: 2)
            b.put(UInt64(1) << 34, at: f.dims)
            b.put(UInt64(1) << 34, at: f.dims + 8)
        }
        expectShape(e, tensor: "t.f32", "element count overflows")
    }

    @Test func byteSizeOverflow() throws {
        let e = try corrupt { b in
            let f = b.tensorFields("t.f32", nDims: 2)
            b.put(UInt64(1) << 31, at: f.dims)
            b.put(UInt64(1) << 31, at: f.dims + 8)
        }
        expectShape(e, tensor: "t.f32", "byte size overflows")
    }

    @Test func negativeAndHugeDimensions() throws {
        let neg = try corrupt { $0.put(UInt64.max, at: $0.tensorFields("t.f32", nDims: 2).dims + 8) }
        expectShape(neg, tensor: "t.f32", "dimension 1 is negative (-1)")
        let huge = try corrupt { $0.put(UInt64(1) << 40, at: $0.tensorFields("t.f32", nDims: 2).dims) }
        expectShape(huge, tensor: "t.f32", "dimension 0 is absurdly large")
    }

    @Test func zeroDimensionsAreAllowed() throws {
        var b = valid
        b.put(UInt64(0), at: b.tensorFields("t.f32", nDims: 2).dims + 8)
        let file = try dir.open(b)
        let t = try file.tensor("t.f32")
        #expect(t.info.dims == [4, 0] && t.info.elementCount == 0 && t.info.byteCount == 0 && t.data.isEmpty)
    }

    @Test(arguments: [UInt64(1) << 40, UInt64.max & ~63])
    func tensorDataOutOfBounds(offset: UInt64) throws {
        let e = try corrupt { $0.put(offset, at: $0.tensorFields("t.f16", nDims: 1).offset) }
        guard case .tensorOutOfBounds("t.f16", offset, 16, let size)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(size > 0 && size < UInt64(valid.count))
    }

    @Test func misalignedTensorOffset() throws {
        var at = 0
        let e = try corrupt { b in
            let o = b.tensorFields("t.f16", nDims: 1).offset
            at = Int(b.read(UInt64.self, at: o)) + 32
            b.put(UInt64(at), at: o)
        }
        #expect(e == .misalignedTensor(tensor: "t.f16", offset: UInt64(at), alignment: 64))
    }

    @Test func overlappingTensors() throws {
        let e = try corrupt { $0.put(UInt64(0), at: $0.tensorFields("t.q80", nDims: 2).offset) }
        guard case .tensorsOverlap(let a, let b)? = e else { Issue.record("got \(String(describing: e))"); return }
        #expect(Set([a, b]) == ["t.f32", "t.q80"])
    }

    @Test func duplicateTensorName() throws {
        let e = try corrupt { b in
            let o = b.afterString("t.f16")
            b.replaceSubrange(o - 3..<o, with: Array("f32".utf8))
        }
        #expect(e == .duplicateTensor("t.f32"))
    }
}
