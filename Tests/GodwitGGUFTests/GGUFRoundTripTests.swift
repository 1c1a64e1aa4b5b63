import Foundation
import GodwitGGUF
import Testing

/// GGUFWriter → file → GGUFFile gives back exactly what was written.
@Suite struct GGUFRoundTripTests {
    /// Every value type, including nested and empty arrays.
    static let metadata: [(String, GGUFValue)] = [
        ("general.architecture", .string("llama")),
        ("t.u8", .uint8(250)), ("t.i8", .int8(-7)), ("t.u16", .uint16(65_000)), ("t.i16", .int16(-30_000)),
        ("t.u32", .uint32(4_000_000_000)), ("t.i32", .int32(-2_000_000_000)),
        ("t.u64", .uint64(.max)), ("t.i64", .int64(.min)),
        ("t.f32", .float32(-1.5e-7)), ("t.f64", .float64(.pi)), ("t.f32.inf", .float32(.infinity)),
        ("t.true", .bool(true)), ("t.false", .bool(false)),
        ("t.str", .string("héllo ▁wörld 🐦")), ("t.str.empty", .string("")),
        ("t.a.u8", .array(.uint8([0, 1, 255]))), ("t.a.i8", .array(.int8([-128, 0, 127]))),
        ("t.a.u16", .array(.uint16([1, 65535]))), ("t.a.i16", .array(.int16([-1, 2]))),
        ("t.a.u32", .array(.uint32([3, .max]))), ("t.a.i32", .array(.int32([-3, 4]))),
        ("t.a.u64", .array(.uint64([5, .max]))), ("t.a.i64", .array(.int64([.min, 6]))),
        ("t.a.f32", .array(.float32([0.5, -0.25, 1e30]))), ("t.a.f64", .array(.float64([1e-300, -2]))),
        ("t.a.bool", .array(.bool([true, false, true]))),
        ("t.a.str", .array(.string(["a", "", "ĠHello", "<s>"]))),
        ("t.a.empty.u8", .array(.uint8([]))), ("t.a.empty.str", .array(.string([]))),
        ("t.a.empty.arrays", .array(.arrays([]))),
        ("t.a.arrays.str", .array(.arrays([.string(["x", "yz"]), .string([]), .string(["w"])]))),
        ("t.a.arrays.mixed", .array(.arrays([.int32([1, 2]), .float32([]), .arrays([.bool([true])]), .arrays([])]))),
    ]

    /// Tensors of several types, with block-sized arbitrary bytes, plus 3-d, 4-d and empty ones.
    static func tensors() -> [(String, GGMLType, [Int])] {
        [("a.f32", .f32, [8, 3]), ("b.f16", .f16, [32, 2]), ("c.q4_0", .q4_0, [64, 3]),
         ("d.q8_0", .q8_0, [32, 5]), ("e.q4_K", .q4_K, [256, 2]), ("f.q6_K", .q6_K, [512]),
         ("g.3d", .f32, [2, 3, 4]), ("h.4d", .bf16, [2, 1, 3, 2]), ("i.empty", .f32, [32, 0]),
         ("j.after.empty", .q4_1, [32, 1])]
    }

    static func makeWriter(alignment: Int) throws -> GGUFWriter {
        var w = GGUFWriter(alignment: alignment)
        for (k, v) in metadata { w.set(k, v) }
        for (i, (name, type, dims)) in tensors().enumerated() {
            let bytes = type.rowBytes(dims[0])! * dims.dropFirst().reduce(1, *)
            try w.addTensor(name: name, type: type, dims: dims, data: pattern(bytes, seed: i))
        }
        return w
    }

    @Test(arguments: [1, 8, 32, 64, 4096])
    func roundTrip(alignment: Int) throws {
        let dir = try TempDir()
        let w = try Self.makeWriter(alignment: alignment)
        let path = dir.path("rt.gguf")
        try w.write(to: path)
        let onDisk = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(onDisk == w.bytes())

        for file in [try GGUFFile(path: path), try GGUFFile(bytes: onDisk)] {
            #expect(file.version == 3)
            #expect(file.alignment == alignment)
            #expect(file.fileSize == onDisk.count)
            #expect(file.dataOffset % alignment == 0)

            // Metadata: same keys in the same order, same values; general.alignment only when needed.
            let expectedKeys = (alignment == 32 ? [] : ["general.alignment"]) + Self.metadata.map(\.0)
            #expect(file.metadataKeys == expectedKeys)
            #expect(file.metadataKeys == w.metadataKeys)
            for (k, v) in Self.metadata { #expect(file[k] == v, "key \(k)") }
            if alignment != 32 { #expect(file["general.alignment"] == .uint32(UInt32(alignment))) }

            // Tensors: same infos in order, identical bytes, each aligned.
            #expect(file.tensors == w.tensors)
            #expect(file.tensors.map(\.name) == Self.tensors().map(\.0))
            for (i, (name, type, dims)) in Self.tensors().enumerated() {
                let t = try file.tensor(name)
                #expect(t.info.type == type && t.info.dims == dims)
                #expect(t.info.elementCount == dims.reduce(1, *))
                #expect((file.dataOffset + t.info.offset) % alignment == 0, "\(name) aligned")
                #expect(Array(t.data) == pattern(t.info.byteCount, seed: i), "\(name) bytes")
                if let base = t.data.baseAddress, alignment <= 64 {  // in-memory copies are 64-aligned
                    #expect(Int(bitPattern: base) % alignment == 0)
                }
            }
        }
    }

    @Test func f32ConvenienceStoresLittleEndianFloats() throws {
        var w = GGUFWriter()
        let values: [Float] = [0, 1, -2.5, .greatestFiniteMagnitude, -.leastNonzeroMagnitude, 3.25]
        try w.addTensor(name: "v", floats: values, dims: [3, 2])
        let file = try GGUFFile(bytes: w.bytes())
        let t = try file.tensor("v")
        #expect(t.info.type == .f32 && t.info.dims == [3, 2] && t.info.byteCount == 24)
        let back = (0..<6).map { Float(bitPattern: UInt32(littleEndian: t.data.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        #expect(back == values)
        withExtendedLifetime(file) {}  // tensor data points into the file's memory
    }

    @Test func setKeepsOrderAndReplacesInPlace() throws {
        var w = GGUFWriter()
        w.set("a", .uint32(1))
        w.set("b", .string("x"))
        w.set("c", .bool(true))
        w.set("b", .array(.int8([1, 2])))
        #expect(w.metadataKeys == ["a", "b", "c"])
        let file = try GGUFFile(bytes: w.bytes())
        #expect(file.metadataKeys == ["a", "b", "c"])
        #expect(file["b"] == .array(.int8([1, 2])))
        #expect(file.tensors.isEmpty)
    }

    @Test func alignmentKeyIsManagedByTheWriter() throws {
        var w = GGUFWriter(alignment: 64)
        w.set("x", .uint8(1))
        w.set("general.alignment", .string("ignored"))  // replaced in place by the real alignment
        #expect(w.metadataKeys == ["general.alignment", "x"])
        let file = try GGUFFile(bytes: w.bytes())
        #expect(file["general.alignment"] == .uint32(64) && file.alignment == 64)
    }

    @Test func version2Files() throws {
        var w = GGUFWriter(version: 2)
        w.set("k", .int64(-1))
        try w.addTensor(name: "t", floats: [1, 2], dims: [2])
        let file = try GGUFFile(bytes: w.bytes())
        #expect(file.version == 2 && file["k"] == .int64(-1) && file.tensors.count == 1)
    }

    @Test func metadataOnlyFileWithoutFinalPaddingParses() throws {
        var w = GGUFWriter()
        w.set("only.key", .string("abc"))  // header 24 + key 16 + type 4 + value 11 = 55 bytes, padded to 64
        let full = w.bytes()
        #expect(full.count == 64)
        let file = try GGUFFile(bytes: Array(full[0..<55]))  // ggml only pads before tensor data
        #expect(file["only.key"] == .string("abc") && file.tensors.isEmpty && file.dataOffset == 55)
    }

    @Test func tensorOrderAndOffsetsFollowGGML() throws {
        var w = GGUFWriter(alignment: 32)
        try w.addTensor(name: "a", type: .q8_0, dims: [32], data: pattern(34))
        try w.addTensor(name: "b", type: .f16, dims: [3], data: pattern(6))
        try w.addTensor(name: "c", type: .f32, dims: [1], data: pattern(4))
        // Offsets are the running sum of sizes padded to the alignment, as gguf.cpp requires.
        #expect(w.tensors.map(\.offset) == [0, 64, 96])
        let file = try GGUFFile(bytes: w.bytes())
        #expect(file.fileSize == file.dataOffset + 128)
    }

    @Test func writerRejectsBadTensors() throws {
        var w = GGUFWriter()
        try w.addTensor(name: "x", floats: [1, 2, 3, 4], dims: [4])
        #expect(throws: GGUFError.duplicateTensor("x")) { try w.addTensor(name: "x", floats: [1], dims: [1]) }
        #expect(throws: GGUFError.invalidTensorShape(tensor: "y", dims: [4], reason: "3 bytes of data given, the shape needs 16")) {
            try w.addTensor(name: "y", type: .f32, dims: [4], data: [1, 2, 3])
        }
        #expect(throws: GGUFError.self) { try w.addTensor(name: "q", type: .q4_0, dims: [16], data: pattern(9)) }
        #expect(throws: GGUFError.self) { try w.addTensor(name: "d5", type: .f32, dims: [1, 1, 1, 1, 1], data: pattern(4)) }
        #expect(throws: GGUFError.self) { try w.addTensor(name: "d0", type: .f32, dims: [], data: []) }
        #expect(throws: GGUFError.self) { try w.addTensor(name: "neg", type: .f32, dims: [-1], data: []) }
        #expect(throws: GGUFError.self) { try w.addTensor(name: "big", type: .f32, dims: [1 << 30, 1 << 30, 1 << 30], data: []) }
        #expect(throws: GGUFError.self) { try w.addTensor(name: "wide", type: .f32, dims: [1 << 40, 0], data: []) }
        #expect(w.tensors.map(\.name) == ["x"])  // failed adds leave the writer unchanged
    }

    @Test func writeIsAtomicAndReportsFailures() throws {
        let dir = try TempDir()
        let path = dir.path("model.gguf")
        var w = GGUFWriter()
        w.set("v", .uint8(1))
        try w.write(to: path)
        w.set("v", .uint8(2))
        try w.write(to: path)  // replaces the existing file
        #expect(try GGUFFile(path: path)["v"] == .uint8(2))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path) == ["model.gguf"])

        let missing = dir.path("no/such/dir/model.gguf")
        let error = #expect(throws: GGUFError.self) { try w.write(to: missing) }
        guard case .writeFailed(let p, _)? = error else { Issue.record("expected writeFailed, got \(String(describing: error))"); return }
        #expect(p == missing)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url.path) == ["model.gguf"])
    }
}
