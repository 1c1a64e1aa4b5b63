/// Everything that can be wrong with a GGUF file. Messages name the offending part and value.
public enum GGUFError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case badMagic(found: UInt32)
    case bigEndian
    case unsupportedVersion(UInt32)
    case truncated(reading: String, offset: Int, needed: Int, fileSize: Int)
    case absurdCount(what: String, count: UInt64, limit: UInt64)
    case unknownValueType(key: String, type: UInt32)
    case nestingTooDeep(key: String)
    case duplicateKey(String)
    case invalidAlignment(UInt64)
    case unknownTensorType(tensor: String, type: UInt32)
    case invalidTensorShape(tensor: String, dims: [UInt64], reason: String)
    case duplicateTensor(String)
    case misalignedTensor(tensor: String, offset: UInt64, alignment: Int)
    case tensorOutOfBounds(tensor: String, offset: UInt64, bytes: UInt64, dataSize: UInt64)
    case tensorsOverlap(first: String, second: String)
    case missingKey(String)
    case wrongValueType(key: String, expected: String, found: String)
    case missingTensor(String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason): "cannot open GGUF file '\(path)': \(reason)"
        case .badMagic(let found):
            "not a GGUF file: magic is 0x\(String(found, radix: 16)), expected 0x46554747 ('GGUF')"
        case .bigEndian: "big-endian GGUF files are not supported"
        case .unsupportedVersion(let v): "unsupported GGUF version \(v) (supported: 2, 3)"
        case .truncated(let what, let offset, let needed, let size):
            "GGUF file truncated while reading \(what): needs \(needed) bytes at offset \(offset), file has \(size)"
        case .absurdCount(let what, let count, let limit):
            "GGUF \(what) \(count) is impossible for this file (at most \(limit))"
        case .unknownValueType(let key, let type): "GGUF metadata '\(key)' has unknown value type \(type)"
        case .nestingTooDeep(let key): "GGUF metadata '\(key)' nests arrays too deeply"
        case .duplicateKey(let key): "GGUF metadata key '\(key)' appears twice"
        case .invalidAlignment(let a): "GGUF general.alignment \(a) is not a power of two between 1 and 65536"
        case .unknownTensorType(let t, let type): "GGUF tensor '\(t)' has unknown ggml type \(type)"
        case .invalidTensorShape(let t, let dims, let reason): "GGUF tensor '\(t)' has invalid shape \(dims): \(reason)"
        case .duplicateTensor(let t): "GGUF tensor '\(t)' appears twice"
        case .misalignedTensor(let t, let offset, let alignment):
            "GGUF tensor '\(t)' data offset \(offset) is not a multiple of the alignment \(alignment)"
        case .tensorOutOfBounds(let t, let offset, let bytes, let size):
            "GGUF tensor '\(t)' data (\(bytes) bytes at offset \(offset)) lies outside the data section (\(size) bytes)"
        case .tensorsOverlap(let a, let b): "GGUF tensors '\(a)' and '\(b)' have overlapping data"
        case .missingKey(let key): "GGUF metadata key '\(key)' is missing"
        case .wrongValueType(let key, let expected, let found):
            "GGUF metadata '\(key)' should be \(expected), found \(found)"
        case .missingTensor(let t): "GGUF tensor '\(t)' is missing"
        case .writeFailed(let path, let reason): "cannot write GGUF file '\(path)': \(reason)"
        }
    }
}
