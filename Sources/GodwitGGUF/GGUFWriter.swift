// GGUF container writer. Format: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
// Layout, as ggml's gguf_write_out produces it (all little-endian):
//   magic "GGUF" · u32 version · u64 tensor count · u64 metadata count
//   metadata: (string key, u32 value type, value)*      string = u64 byte length + UTF-8 bytes
//             array value = u32 element type + u64 count + elements (nested arrays allowed)
//   tensor infos: (string name, u32 n_dims, u64 dims[n_dims] innermost first, u32 ggml type,
//                  u64 offset relative to the data section)*
//   zero padding up to `alignment`, then each tensor's bytes, each padded to `alignment`.
// Tensor offsets are the running sum of padded sizes, as ggml requires when it reads a file.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Builds a GGUF file in memory and writes it out. Metadata keeps insertion order.
///
/// ```swift
/// var w = GGUFWriter()
/// w.set("general.architecture", .string("llama"))
/// try w.addTensor(name: "output_norm.weight", floats: norm, dims: [576])
/// try w.write(to: path)
/// ```
/// `general.alignment` is managed by the writer: it is written as a uint32 holding `alignment`
/// whenever `alignment != 32` (first among the keys unless `set` put it elsewhere).
/// For files llama.cpp must read: keep tensor names under 64 bytes, keys non-empty, and arrays flat
/// (the spec allows nested arrays and GGUFFile reads them, but ggml's gguf.cpp rejects them).
public struct GGUFWriter: Sendable {
    public let alignment: Int
    public let version: UInt32

    private var keys: [String] = []
    private var values: [String: GGUFValue] = [:]
    private var tensorInfos: [GGUFTensorInfo] = []
    private var tensorData: [[UInt8]] = []
    private var tensorNames: Set<String> = []
    private var dataSize = 0

    /// `alignment` must be a power of two in 1...65536 and `version` 2 or 3 (programmer errors otherwise).
    public init(alignment: Int = GGUFFile.defaultAlignment, version: UInt32 = 3) {
        precondition(alignment > 0 && alignment <= 65536 && alignment & (alignment - 1) == 0,
                     "GGUFWriter alignment \(alignment) is not a power of two between 1 and 65536")
        precondition(version == 2 || version == 3, "GGUFWriter can write GGUF versions 2 and 3, not \(version)")
        self.alignment = alignment
        self.version = version
        if alignment != GGUFFile.defaultAlignment { set("general.alignment", .uint32(UInt32(alignment))) }
    }

    /// Metadata keys in the order they will be written.
    public var metadataKeys: [String] { keys }

    /// Tensor infos in the order they will be written (offsets relative to the data section).
    public var tensors: [GGUFTensorInfo] { tensorInfos }

    public subscript(key: String) -> GGUFValue? { values[key] }

    /// Sets `key`, appending it to the key order, or replacing the value in place if it exists.
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if values.updateValue(value, forKey: key) == nil { keys.append(key) }
    }

    /// Adds a tensor. `dims` are ggml's `ne`, innermost first (a weight of out×in is `[in, out]`);
    /// `data` must hold exactly `type.rowBytes(dims[0]) * dims[1...].product` bytes.
    /// Names should stay under 64 bytes for llama.cpp (its GGML_MAX_NAME).
    public mutating func addTensor(name: String, type: GGMLType, dims: [Int], data: [UInt8]) throws(GGUFError) {
        let shape = dims.map { UInt64(bitPattern: Int64($0)) }
        func bad(_ reason: String) -> GGUFError { .invalidTensorShape(tensor: name, dims: shape, reason: reason) }
        guard !tensorNames.contains(name) else { throw .duplicateTensor(name) }
        guard (1...GGUFFile.maxDims).contains(dims.count) else {
            throw bad("\(dims.count) dimensions (1 to \(GGUFFile.maxDims) allowed)")
        }
        if let d = dims.firstIndex(where: { $0 < 0 }) { throw bad("dimension \(d) is negative") }
        if let d = dims.firstIndex(where: { UInt64($0) > GGUFFile.maxDimension }) {
            throw bad("dimension \(d) is absurdly large (more than \(GGUFFile.maxDimension))")
        }
        guard dims[0] % type.blockSize == 0 else {
            throw bad("first dimension is not a multiple of the \(type) block size \(type.blockSize)")
        }
        var count = 1
        for d in dims {
            let (m, o) = count.multipliedReportingOverflow(by: d)
            guard !o else { throw bad("element count overflows") }
            count = m
        }
        guard let rowBytes = type.rowBytes(dims[0]) else { throw bad("row size overflows") }
        let rows = dims[0] == 0 ? 0 : count / dims[0]
        let (bytes, o) = rowBytes.multipliedReportingOverflow(by: rows)
        guard !o else { throw bad("byte size overflows") }
        guard data.count == bytes else { throw bad("\(data.count) bytes of data given, the shape needs \(bytes)") }
        let (padded, o2) = bytes.addingReportingOverflow(alignment - 1)
        let (end, o3) = dataSize.addingReportingOverflow(padded / alignment * alignment)
        guard !o2, !o3 else { throw bad("data section size overflows") }

        tensorInfos.append(GGUFTensorInfo(name: name, dims: dims, type: type, offset: dataSize,
                                          byteCount: bytes, elementCount: count))
        tensorData.append(data)
        tensorNames.insert(name)
        dataSize = end
    }

    /// Adds an F32 tensor from `floats` (stored little-endian).
    public mutating func addTensor(name: String, floats: [Float], dims: [Int]) throws(GGUFError) {
        var data = [UInt8]()
        data.reserveCapacity(floats.count * 4)
        for f in floats { data.appendLittleEndian(f.bitPattern) }
        try addTensor(name: name, type: .f32, dims: dims, data: data)
    }

    // MARK: Encoding

    /// Header, metadata, tensor infos and padding: everything before the data section.
    private func headerBytes() -> [UInt8] {
        var out = [UInt8]()
        out.appendLittleEndian(UInt32(0x4655_4747))  // "GGUF"
        out.appendLittleEndian(version)
        out.appendLittleEndian(UInt64(tensorInfos.count))
        out.appendLittleEndian(UInt64(keys.count))
        for key in keys {
            var value = values[key]!
            if key == "general.alignment" { value = .uint32(UInt32(alignment)) }
            out.appendString(key)
            out.appendLittleEndian(value.type.rawValue)
            out.appendValue(value)
        }
        for info in tensorInfos {
            out.appendString(info.name)
            out.appendLittleEndian(UInt32(info.dims.count))
            for d in info.dims { out.appendLittleEndian(UInt64(d)) }
            out.appendLittleEndian(info.type.rawValue)
            out.appendLittleEndian(UInt64(info.offset))
        }
        out.append(contentsOf: repeatElement(0, count: padding(out.count)))
        return out
    }

    private func padding(_ size: Int) -> Int { (alignment - size % alignment) % alignment }

    /// The whole file: header, metadata, tensor infos, then the aligned data section.
    public func bytes() -> [UInt8] {
        var out = headerBytes()
        out.reserveCapacity(out.count + dataSize)
        for data in tensorData {
            out.append(contentsOf: data)
            out.append(contentsOf: repeatElement(0, count: padding(data.count)))
        }
        return out
    }

    /// Writes the file atomically: into a temporary file next to `path`, flushed, then renamed over `path`.
    public func write(to path: String) throws(GGUFError) {
        let tmp = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw .writeFailed(path: path, reason: "cannot create \(tmp): \(errnoString())") }
        var closed = false
        do throws(GGUFError) {
            try writeAll(fd, headerBytes(), path)
            let zeros = [UInt8](repeating: 0, count: alignment)
            for data in tensorData {
                try writeAll(fd, data, path)
                try writeAll(fd, zeros[0..<padding(data.count)], path)
            }
            guard fsync(fd) == 0 else { throw .writeFailed(path: path, reason: "fsync failed: \(errnoString())") }
            closed = true
            guard close(fd) == 0 else { throw .writeFailed(path: path, reason: "close failed: \(errnoString())") }
            guard rename(tmp, path) == 0 else {
                throw .writeFailed(path: path, reason: "cannot rename \(tmp): \(errnoString())")
            }
        } catch {
            if !closed { close(fd) }
            unlink(tmp)
            throw error
        }
    }

    private func writeAll<C: Collection>(_ fd: Int32, _ bytes: C, _ path: String) throws(GGUFError)
    where C.Element == UInt8 {
        let result: String? = bytes.withContiguousStorageIfAvailable { buf -> String? in
            var done = 0
            while done < buf.count {
                let n = posixWrite(fd, buf.baseAddress! + done, buf.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    return "write failed: \(errnoString())"
                }
                done += n
            }
            return nil
        } ?? "non-contiguous buffer"
        if let reason = result { throw .writeFailed(path: path, reason: reason) }
    }
}

private func errnoString() -> String { String(cString: strerror(errno)) }

/// POSIX write(2) (the name is shadowed inside GGUFWriter by `write(to:)`).
private func posixWrite(_ fd: Int32, _ p: UnsafePointer<UInt8>, _ n: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, p, n)
    #else
    Darwin.write(fd, p, n)
    #endif
}

// MARK: Little-endian serialization

extension [UInt8] {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }

    mutating func appendString(_ s: String) {
        appendLittleEndian(UInt64(s.utf8.count))
        append(contentsOf: s.utf8)
    }

    mutating func appendValue(_ value: GGUFValue) {
        switch value {
        case .uint8(let v): appendLittleEndian(v)
        case .int8(let v): appendLittleEndian(v)
        case .uint16(let v): appendLittleEndian(v)
        case .int16(let v): appendLittleEndian(v)
        case .uint32(let v): appendLittleEndian(v)
        case .int32(let v): appendLittleEndian(v)
        case .uint64(let v): appendLittleEndian(v)
        case .int64(let v): appendLittleEndian(v)
        case .float32(let v): appendLittleEndian(v.bitPattern)
        case .float64(let v): appendLittleEndian(v.bitPattern)
        case .bool(let v): append(v ? 1 : 0)
        case .string(let v): appendString(v)
        case .array(let a): appendArray(a)
        }
    }

    /// Element type, count, elements.
    mutating func appendArray(_ array: GGUFArray) {
        appendLittleEndian(array.elementType.rawValue)
        appendLittleEndian(UInt64(array.count))
        switch array {
        case .uint8(let a): append(contentsOf: a)
        case .int8(let a): for v in a { appendLittleEndian(v) }
        case .uint16(let a): for v in a { appendLittleEndian(v) }
        case .int16(let a): for v in a { appendLittleEndian(v) }
        case .uint32(let a): for v in a { appendLittleEndian(v) }
        case .int32(let a): for v in a { appendLittleEndian(v) }
        case .uint64(let a): for v in a { appendLittleEndian(v) }
        case .int64(let a): for v in a { appendLittleEndian(v) }
        case .float32(let a): for v in a { appendLittleEndian(v.bitPattern) }
        case .float64(let a): for v in a { appendLittleEndian(v.bitPattern) }
        case .bool(let a): for v in a { append(v ? 1 : 0) }
        case .string(let a): for s in a { appendString(s) }
        case .arrays(let a): for inner in a { appendArray(inner) }
        }
    }
}
