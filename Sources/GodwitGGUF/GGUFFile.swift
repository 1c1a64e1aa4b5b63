// GGUF container reader. Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
// Little-endian v2 and v3 (v1 used 32-bit counts and is rejected). Tensor data is not copied:
// `GGUFTensor.data` points into the memory map.
// Malformed input never traps: every count, length, dimension and offset is checked (with overflow
// checks) against the bytes actually present before it is used or anything is allocated for it.
// Compared with ggml's gguf.cpp this reader is stricter in two ways (n_dims must be 1...4, not 0...4;
// tensor data must not overlap) and more lenient in others: tensor data may come in any order and
// with gaps, general.alignment may be any integer type, a file without tensors needs no final
// padding, arrays may nest (up to 8 levels), keys may be empty and tensor names longer than 63 bytes.

/// Shape, type and location of one tensor. `dims` are ggml's `ne`: dims[0] is the contiguous one.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// ggml `ne`, innermost first: a weight matrix is [cols (input features), rows (output features)].
    public let dims: [Int]
    public let type: GGMLType
    /// Offset of the data from the start of the data section.
    public let offset: Int
    public let byteCount: Int
    public let elementCount: Int
}

/// A tensor's info and its bytes, valid while the owning `GGUFFile` is alive.
public struct GGUFTensor: @unchecked Sendable {
    public let info: GGUFTensorInfo
    public let data: UnsafeRawBufferPointer
}

/// A parsed GGUF file: metadata in file order, tensor infos, and mapped tensor data.
public final class GGUFFile: @unchecked Sendable {
    public static let defaultAlignment = 32
    public static let maxDims = 4
    /// Largest accepted value of one dimension (2^35 - 16): far beyond any real tensor, small
    /// enough that a single dimension never overflows the size arithmetic.
    public static let maxDimension = UInt64(Int32.max) * 16

    public let path: String?
    public let version: UInt32
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Absolute file offset of the data section.
    public let dataOffset: Int
    public let fileSize: Int

    private let tensorIndex: [String: Int]
    private let mapped: MappedFile?
    private let owned: UnsafeMutableRawBufferPointer?
    private var bytes: UnsafeRawBufferPointer { mapped?.bytes ?? UnsafeRawBufferPointer(owned!) }

    /// Memory-maps and parses the file at `path`.
    public convenience init(path: String) throws(GGUFError) {
        let file = try MappedFile(path: path)
        try self.init(mapped: file, owned: nil, path: path)
    }

    /// Parses GGUF bytes held in memory (copied).
    public convenience init(bytes: [UInt8]) throws(GGUFError) {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { src in
            if let base = src.baseAddress { buf.baseAddress!.copyMemory(from: base, byteCount: src.count) }
        }
        let view = UnsafeMutableRawBufferPointer(rebasing: buf[0..<bytes.count])
        do { try self.init(mapped: nil, owned: view, path: nil) } catch {
            buf.deallocate()
            throw error
        }
    }

    private init(mapped: MappedFile?, owned: UnsafeMutableRawBufferPointer?, path: String?) throws(GGUFError) {
        self.mapped = mapped
        self.owned = owned
        self.path = path
        let all = mapped?.bytes ?? UnsafeRawBufferPointer(owned!)
        fileSize = all.count
        var p = GGUFParser(all)

        let magic = try p.read(UInt32.self, "magic")
        guard magic == 0x4655_4747 else { throw .badMagic(found: magic) }
        let rawVersion = try p.read(UInt32.self, "version")
        if rawVersion & 0xFFFF == 0 && rawVersion != 0 { throw .bigEndian }
        guard rawVersion == 2 || rawVersion == 3 else { throw .unsupportedVersion(rawVersion) }
        version = rawVersion

        let tensorCount = try p.read(UInt64.self, "tensor count")
        let kvCount = try p.read(UInt64.self, "metadata count")
        // Each key/value needs at least a key length (8), a type (4) and one byte of value.
        try p.checkCount(kvCount, minSize: 13, "metadata count")
        // Each tensor info needs a name length (8), n_dims (4), one dim (8), type (4), offset (8).
        try p.checkCount(tensorCount, minSize: 32, "tensor count")

        var keys = [String]()
        var meta = [String: GGUFValue]()
        keys.reserveCapacity(Int(kvCount))
        for i in 0..<Int(kvCount) {
            let key = try p.readString("key of metadata entry \(i)")
            let type = try p.read(UInt32.self, "value type of '\(key)'")
            let value = try p.readValue(type: type, key: key)
            guard meta[key] == nil else { throw .duplicateKey(key) }
            meta[key] = value
            keys.append(key)
        }
        metadataKeys = keys
        metadata = meta
        // Re-check against what is left now, so the reservation below stays proportional to the file.
        try p.checkCount(tensorCount, minSize: 32, "tensor count")

        var align = Self.defaultAlignment
        if let a = meta["general.alignment"] {
            guard let v = a.intValue, v >= 0 else {
                if case .uint64(let u) = a { throw .invalidAlignment(u) }
                throw .wrongValueType(key: "general.alignment", expected: "an unsigned integer",
                                      found: a.intValue.map { "\(a.typeName) \($0)" } ?? a.typeName)
            }
            guard v > 0, v <= 65536, v & (v - 1) == 0 else { throw .invalidAlignment(UInt64(v)) }
            align = v
        }
        alignment = align

        struct RawInfo { let name: String; let dims: [Int]; let type: GGMLType; let offset: UInt64 }
        var raws = [RawInfo]()
        raws.reserveCapacity(Int(tensorCount))
        var index = [String: Int]()
        for i in 0..<Int(tensorCount) {
            let name = try p.readString("name of tensor \(i)")
            let nDims = try p.read(UInt32.self, "dimension count of tensor '\(name)'")
            guard nDims >= 1, nDims <= UInt32(Self.maxDims) else {
                throw .invalidTensorShape(tensor: name, dims: [], reason: "\(nDims) dimensions (1 to \(Self.maxDims) allowed)")
            }
            var rawDims = [UInt64]()
            for d in 0..<Int(nDims) { rawDims.append(try p.read(UInt64.self, "dimension \(d) of tensor '\(name)'")) }
            let rawType = try p.read(UInt32.self, "type of tensor '\(name)'")
            let offset = try p.read(UInt64.self, "data offset of tensor '\(name)'")
            guard let type = GGMLType(rawValue: rawType) else { throw .unknownTensorType(tensor: name, type: rawType) }
            if let d = rawDims.firstIndex(where: { $0 > Self.maxDimension }) {
                let v = rawDims[d]
                throw .invalidTensorShape(tensor: name, dims: rawDims, reason: v > UInt64(Int64.max)
                    ? "dimension \(d) is negative (\(Int64(bitPattern: v)))"
                    : "dimension \(d) is absurdly large (more than \(Self.maxDimension))")
            }
            guard index[name] == nil else { throw .duplicateTensor(name) }
            index[name] = i
            raws.append(RawInfo(name: name, dims: rawDims.map { Int($0) }, type: type, offset: offset))
        }
        tensorIndex = index

        // ggml pads to the alignment after the infos; a file without tensors may omit that padding.
        let start = raws.isEmpty ? min((p.offset + align - 1) / align * align, all.count)
                                 : (p.offset + align - 1) / align * align
        guard start <= all.count else {
            throw .truncated(reading: "padding before tensor data", offset: p.offset, needed: start - p.offset, fileSize: all.count)
        }
        dataOffset = start
        let dataSize = UInt64(all.count - start)

        var infos = [GGUFTensorInfo]()
        infos.reserveCapacity(raws.count)
        for r in raws {
            var count = 1
            for d in r.dims {
                let (m, o) = count.multipliedReportingOverflow(by: d)
                guard !o else { throw .invalidTensorShape(tensor: r.name, dims: r.dims.map(UInt64.init), reason: "element count overflows") }
                count = m
            }
            guard r.dims[0] % r.type.blockSize == 0 else {
                throw .invalidTensorShape(tensor: r.name, dims: r.dims.map(UInt64.init),
                                          reason: "first dimension is not a multiple of the \(r.type) block size \(r.type.blockSize)")
            }
            guard let rowBytes = r.type.rowBytes(r.dims[0]) else {
                throw .invalidTensorShape(tensor: r.name, dims: r.dims.map(UInt64.init), reason: "row size overflows")
            }
            let (bytes, o) = rowBytes.multipliedReportingOverflow(by: r.dims[0] == 0 ? 0 : count / r.dims[0])
            guard !o else { throw .invalidTensorShape(tensor: r.name, dims: r.dims.map(UInt64.init), reason: "byte size overflows") }
            guard r.offset % UInt64(align) == 0 else { throw .misalignedTensor(tensor: r.name, offset: r.offset, alignment: align) }
            guard r.offset <= dataSize, UInt64(bytes) <= dataSize - r.offset else {
                throw .tensorOutOfBounds(tensor: r.name, offset: r.offset, bytes: UInt64(bytes), dataSize: dataSize)
            }
            infos.append(GGUFTensorInfo(name: r.name, dims: r.dims, type: r.type, offset: Int(r.offset),
                                        byteCount: bytes, elementCount: count))
        }
        // ggml requires tensors back to back in file order; we allow any order and gaps, but no overlap.
        let placed = infos.filter { $0.byteCount > 0 }.sorted { $0.offset < $1.offset }
        for (a, b) in zip(placed, placed.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw .tensorsOverlap(first: a.name, second: b.name)
        }
        // Keep this the last stored property assigned: nothing may throw after it (init(bytes:)
        // frees the buffer itself when this initializer throws).
        tensors = infos
    }

    deinit { owned?.deallocate() }

    // MARK: Tensors

    public func tensorInfo(_ name: String) -> GGUFTensorInfo? { tensorIndex[name].map { tensors[$0] } }

    /// The tensor called `name`, with its data; throws `.missingTensor` if absent.
    public func tensor(_ name: String) throws(GGUFError) -> GGUFTensor {
        guard let info = tensorInfo(name) else { throw .missingTensor(name) }
        let start = dataOffset + info.offset
        return GGUFTensor(info: info, data: UnsafeRawBufferPointer(rebasing: bytes[start..<start + info.byteCount]))
    }

    /// Advises the OS to page in the whole mapping (no-op for in-memory files).
    public func prefetch() { mapped?.adviseWillNeed() }

    // MARK: Typed metadata access

    public subscript(key: String) -> GGUFValue? { metadata[key] }

    public func int(_ key: String) throws(GGUFError) -> Int {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let i = v.intValue else { throw .wrongValueType(key: key, expected: "an integer", found: v.typeName) }
        return i
    }

    public func int(_ key: String, default d: Int) throws(GGUFError) -> Int {
        metadata[key] == nil ? d : try int(key)
    }

    public func double(_ key: String) throws(GGUFError) -> Double {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let d = v.doubleValue else { throw .wrongValueType(key: key, expected: "a number", found: v.typeName) }
        return d
    }

    public func double(_ key: String, default d: Double) throws(GGUFError) -> Double {
        metadata[key] == nil ? d : try double(key)
    }

    public func bool(_ key: String, default d: Bool) throws(GGUFError) -> Bool {
        guard let v = metadata[key] else { return d }
        guard let b = v.boolValue else { throw .wrongValueType(key: key, expected: "a bool", found: v.typeName) }
        return b
    }

    public func string(_ key: String) throws(GGUFError) -> String {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let s = v.stringValue else { throw .wrongValueType(key: key, expected: "a string", found: v.typeName) }
        return s
    }

    public func optionalString(_ key: String) throws(GGUFError) -> String? {
        metadata[key] == nil ? nil : try string(key)
    }

    public func array(_ key: String) throws(GGUFError) -> GGUFArray {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let a = v.arrayValue else { throw .wrongValueType(key: key, expected: "an array", found: v.typeName) }
        return a
    }

    public func strings(_ key: String) throws(GGUFError) -> [String] {
        let a = try array(key)
        guard let s = a.strings else { throw .wrongValueType(key: key, expected: "array of string", found: "array of \(a.elementTypeName)") }
        return s
    }

    public func floats(_ key: String) throws(GGUFError) -> [Float] {
        let a = try array(key)
        guard let f = a.floats else { throw .wrongValueType(key: key, expected: "numeric array", found: "array of \(a.elementTypeName)") }
        return f
    }

    public func ints(_ key: String) throws(GGUFError) -> [Int] {
        let a = try array(key)
        guard let i = a.ints else { throw .wrongValueType(key: key, expected: "integer array", found: "array of \(a.elementTypeName)") }
        return i
    }
}
