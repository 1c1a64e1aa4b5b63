// Owns the weight matrices the model repacks at load (q4_1 in 16-row groups, see GodwitKernels'
// WeightMatrix+Interleaved.swift) and releases the mapped pages they were copied from, so the
// process holds each weight once. `GODWIT_NO_REPACK=1` keeps every matrix in the memory map
// (for comparisons; results are bitwise the same either way).
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import GodwitKernels

final class RepackedWeights: @unchecked Sendable {
    private var buffers: [UnsafeMutableRawPointer] = []
    /// Bytes held by the repacked copies.
    private(set) var byteCount = 0

    static let enabled = getenv("GODWIT_NO_REPACK") == nil

    /// The matrix multiplying from a repacked copy when its format has one, else unchanged.
    func repack(_ m: WeightMatrix) -> WeightMatrix {
        guard Self.enabled, m.canInterleave, m.rows > 0 else { return m }
        let bytes = m.interleavedByteCount
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
        buffers.append(buffer)
        byteCount += bytes
        let repacked = m.repackInterleaved(into: buffer)
        Self.releaseMappedPages(m.data, bytes: m.rows * m.rowBytes)
        return repacked
    }

    /// Drops the mapped file pages of [p, p + bytes) from this process (they are read back from the
    /// file if touched again, e.g. by the reference kernels): whole pages inside the range only.
    static func releaseMappedPages(_ p: UnsafeRawPointer, bytes: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0 else { return }
        let start = (Int(bitPattern: p) + page - 1) / page * page
        let end = (Int(bitPattern: p) + bytes) / page * page
        guard end > start, let raw = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(raw, end - start, MADV_DONTNEED)
    }

    deinit { for b in buffers { b.deallocate() } }
}
