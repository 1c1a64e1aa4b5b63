// Calibration data for schemes that learn parameters offline (KVQuant-style codebooks and
// outlier thresholds). Stored as named f32 tensors (and string metadata) in a GGUF file written by
// `godwit calibrate`; this type is the in-memory form the schemes read.
import GodwitGGUF

/// Named float arrays, e.g. "blk.3.k.codebook" → [16].
public struct KVCalibration: Sendable, Equatable {
    public var tensors: [String: [Float]]
    public var metadata: [String: String]

    public init(tensors: [String: [Float]] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    public func tensor(_ name: String) throws(KVCacheError) -> [Float] {
        guard let t = tensors[name] else { throw .invalidCalibration("missing tensor '\(name)'") }
        return t
    }

    /// Loads every f32 tensor and string metadata value of a calibration GGUF file.
    public static func load(path: String) throws(KVCacheError) -> KVCalibration {
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch { throw .invalidCalibration("\(path): \(error)") }
        var c = KVCalibration()
        for key in file.metadataKeys {
            if let s = file[key]?.stringValue { c.metadata[key] = s }
        }
        for info in file.tensors {
            guard info.type == .f32 else { throw .invalidCalibration("\(path): tensor '\(info.name)' is \(info.type), expected f32") }
            let t: GGUFTensor
            do { t = try file.tensor(info.name) } catch { throw .invalidCalibration("\(path): \(error)") }
            c.tensors[info.name] = (0..<info.elementCount).map { t.data.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        }
        return c
    }

    /// Writes the calibration as a GGUF file (f32 tensors, string metadata), atomically.
    public func write(to path: String) throws(KVCacheError) {
        var w = GGUFWriter()
        for key in metadata.keys.sorted() { w.set(key, .string(metadata[key]!)) }
        do {
            for name in tensors.keys.sorted() {
                try w.addTensor(name: name, floats: tensors[name]!, dims: [tensors[name]!.count])
            }
            try w.write(to: path)
        } catch { throw .invalidCalibration("cannot write \(path): \(error)") }
    }
}
