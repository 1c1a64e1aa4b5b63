/// A bounds-checked little-endian cursor over GGUF bytes. Every read either succeeds or throws
/// `.truncated` naming what was being read; counts are checked against the bytes left before any
/// allocation, so a corrupt count can never cause a huge allocation.
struct GGUFParser {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws(GGUFError) {
        if n < 0 || n > remaining {
            throw .truncated(reading: what(), offset: offset, needed: n, fileSize: bytes.count)
        }
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws(GGUFError) -> T {
        try need(MemoryLayout<T>.size, what())
        let v = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += MemoryLayout<T>.size
        return v
    }

    mutating func readString(_ what: @autoclosure () -> String) throws(GGUFError) -> String {
        let len = try read(UInt64.self, "length of \(what())")
        guard len <= UInt64(remaining) else {
            throw .truncated(reading: what(), offset: offset, needed: Int(clamping: len), fileSize: bytes.count)
        }
        let n = Int(len)
        let s = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n]), as: UTF8.self)
        offset += n
        return s
    }

    /// Checks that `count` elements of at least `minSize` bytes each can fit in what is left.
    func checkCount(_ count: UInt64, minSize: Int, _ what: @autoclosure () -> String) throws(GGUFError) {
        let limit = UInt64(remaining / max(minSize, 1))
        if count > limit { throw .absurdCount(what: what(), count: count, limit: limit) }
    }

    mutating func readValue(type raw: UInt32, key: String, depth: Int = 0) throws(GGUFError) -> GGUFValue {
        guard let type = GGUFValueType(rawValue: raw) else { throw .unknownValueType(key: key, type: raw) }
        let what = "value of '\(key)'"
        switch type {
        case .uint8: return .uint8(try read(UInt8.self, what))
        case .int8: return .int8(try read(Int8.self, what))
        case .uint16: return .uint16(try read(UInt16.self, what))
        case .int16: return .int16(try read(Int16.self, what))
        case .uint32: return .uint32(try read(UInt32.self, what))
        case .int32: return .int32(try read(Int32.self, what))
        case .uint64: return .uint64(try read(UInt64.self, what))
        case .int64: return .int64(try read(Int64.self, what))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self, what)))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self, what)))
        case .bool: return .bool(try read(UInt8.self, what) != 0)
        case .string: return .string(try readString(what))
        case .array: return .array(try readArray(key: key, depth: depth + 1))
        }
    }

    mutating func readArray(key: String, depth: Int) throws(GGUFError) -> GGUFArray {
        guard depth <= 8 else { throw .nestingTooDeep(key: key) }
        let rawType = try read(UInt32.self, "array element type of '\(key)'")
        guard let type = GGUFValueType(rawValue: rawType) else { throw .unknownValueType(key: key, type: rawType) }
        let count = try read(UInt64.self, "array length of '\(key)'")
        try checkCount(count, minSize: type.minimumEncodedSize, "array length of '\(key)'")
        let n = Int(count)
        let what = "array '\(key)'"
        switch type {
        case .uint8: return .uint8(try readScalars(UInt8.self, n, what))
        case .int8: return .int8(try readScalars(Int8.self, n, what))
        case .uint16: return .uint16(try readScalars(UInt16.self, n, what))
        case .int16: return .int16(try readScalars(Int16.self, n, what))
        case .uint32: return .uint32(try readScalars(UInt32.self, n, what))
        case .int32: return .int32(try readScalars(Int32.self, n, what))
        case .uint64: return .uint64(try readScalars(UInt64.self, n, what))
        case .int64: return .int64(try readScalars(Int64.self, n, what))
        case .float32: return .float32(try readScalars(UInt32.self, n, what).map { Float(bitPattern: $0) })
        case .float64: return .float64(try readScalars(UInt64.self, n, what).map { Double(bitPattern: $0) })
        case .bool: return .bool(try readScalars(UInt8.self, n, what).map { $0 != 0 })
        case .string:
            var out = [String]()
            out.reserveCapacity(n)
            for i in 0..<n { out.append(try readString("element \(i) of \(what)")) }
            return .string(out)
        case .array:
            // No reservation here: nested reservations would multiply, each bounded only by the bytes left.
            var out = [GGUFArray]()
            for _ in 0..<n { out.append(try readArray(key: key, depth: depth + 1)) }
            return .arrays(out)
        }
    }

    mutating func readScalars<T: FixedWidthInteger>(_: T.Type, _ n: Int, _ what: String) throws(GGUFError) -> [T] {
        let size = MemoryLayout<T>.size
        try need(n * size, what)  // n was checked against remaining/size, so no overflow
        let base = offset
        let out = [T](unsafeUninitializedCapacity: n) { buf, count in
            for i in 0..<n { buf[i] = T(littleEndian: bytes.loadUnaligned(fromByteOffset: base + i * size, as: T.self)) }
            count = n
        }
        offset += n * size
        return out
    }
}
