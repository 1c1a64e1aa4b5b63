// q4_1 weights repacked 16 rows at a time for the decode GEMV (the default model's matrices).
// Source: the idea of ggml-cpu/repack.cpp (block_q4_0x8 / x16: blocks of several rows interleaved
// so one activation value meets many rows in one vector instruction); the layout and kernel are
// Godwit's own. ggml does not repack q4_1; its vec_dot reads one row at a time.
//
// Layout (same bytes as the row-major blocks, 20 per row and block): [groups, blocks, group block],
// groups = ⌈rows / 16⌉ (rows past the end: zero blocks), a group block of 320 bytes:
//   d  [16] f16        row r's block scale at 2r
//   m  [16] f16        row r's block minimum at 32 + 2r
//   qs [16][16] u8     byte k of row r's qs at 64 + 16k + r (low nibble = value k, high = value k+16)
// Kernel per group and block: for each byte k, the 16 rows' bytes are one 16-byte load; low and
// high nibbles times the broadcast activations x[k], x[k+16] accumulate 16 rows' exact integer
// sums in 16 Int32 lanes (`vpmaddwd` + `vpdpwssd`), with no horizontal sums; then per lane the
// same float operations as `gemv32` (acc = fma(Float(isum), d_x·d_w, acc); acc = fma(s_x, m_w, acc),
// blocks in order), so results are bitwise those of the row-major kernels (and of the GEMM, which
// reads blocks back from this layout with `interleavedBlock`).
// Memory: the repacked copy replaces the mapped tensor for every product (the model drops the
// mapped pages after repacking), so resident memory does not grow.

extension WeightMatrix {
    /// Software prefetch distance of the GEMV's single stream (4 group blocks ahead).
    static let prefetchDistance = 4 * 16 * BlockLayout.Q4_1.bytes
    /// Rows per interleaved group.
    public static let interleavedRows = 16

    /// Bytes of the q4_1 matrix repacked in groups of 16 rows (`repackInterleaved`).
    public var interleavedByteCount: Int {
        (rows + Self.interleavedRows - 1) / Self.interleavedRows * (cols / 32) * Self.interleavedRows * BlockLayout.Q4_1.bytes
    }

    /// Whether this matrix can be repacked (q4_1 weights).
    public var canInterleave: Bool { type == .q4_1 }

    /// Writes the 16-row interleaved copy of this q4_1 matrix into `dst` (`interleavedByteCount` bytes)
    /// and returns a matrix that multiplies from it.
    public func repackInterleaved(into dst: UnsafeMutableRawPointer) -> WeightMatrix {
        precondition(canInterleave, "repackInterleaved: \(type) weights")
        let nb = cols / 32, g16 = Self.interleavedRows, L = BlockLayout.Q4_1.self
        let groupBlock = g16 * L.bytes
        dst.initializeMemory(as: UInt8.self, repeating: 0, count: interleavedByteCount)
        for r in 0..<rows {
            let g = r / g16, lane = r % g16
            for b in 0..<nb {
                let src = row(r) + b * L.bytes, blk = dst + (g * nb + b) * groupBlock
                blk.storeBytes(of: src.loadUnaligned(fromByteOffset: L.d, as: UInt16.self), toByteOffset: 2 * lane, as: UInt16.self)
                blk.storeBytes(of: src.loadUnaligned(fromByteOffset: L.m, as: UInt16.self), toByteOffset: 32 + 2 * lane, as: UInt16.self)
                for k in 0..<16 {
                    blk.storeBytes(of: src.load(fromByteOffset: L.qs + k, as: UInt8.self), toByteOffset: 64 + 16 * k + lane, as: UInt8.self)
                }
            }
        }
        var m = self
        m.interleaved = UnsafeRawPointer(dst)
        return m
    }

    /// Row r's block b as a row-major q4_1 block (20 bytes) in `tmp`; returns `tmp`.
    @inline(__always)
    func interleavedBlock(_ base: UnsafeRawPointer, _ r: Int, _ b: Int, _ tmp: UnsafeMutableRawPointer) -> UnsafeRawPointer {
        let g16 = Self.interleavedRows, L = BlockLayout.Q4_1.self
        let lane = r % g16, blk = base + ((r / g16) * (cols / 32) + b) * g16 * L.bytes
        tmp.storeBytes(of: blk.loadUnaligned(fromByteOffset: 2 * lane, as: UInt16.self), toByteOffset: L.d, as: UInt16.self)
        tmp.storeBytes(of: blk.loadUnaligned(fromByteOffset: 32 + 2 * lane, as: UInt16.self), toByteOffset: L.m, as: UInt16.self)
        for k in 0..<16 {
            tmp.storeBytes(of: blk.load(fromByteOffset: 64 + 16 * k + lane, as: UInt8.self), toByteOffset: L.qs + k, as: UInt8.self)
        }
        return UnsafeRawPointer(tmp)
    }

    /// Row r as a row-major q4_1 row in `tmp` (rowBytes); returns `tmp`.
    func interleavedRow(_ r: Int, _ tmp: UnsafeMutableRawPointer) -> UnsafeRawPointer {
        let base = interleaved!
        for b in 0..<cols / 32 { _ = interleavedBlock(base, r, b, tmp + b * BlockLayout.Q4_1.bytes) }
        return UnsafeRawPointer(tmp)
    }

    /// One token from the interleaved layout: out[r] = W[r]·x[t] for r in rows (whole groups where
    /// `rows` covers them; a partial group at either end goes row by row through `interleavedBlock`).
    func gemvInterleavedQ4_1(_ x: ActivationBuffer, _ t: Int, _ rows: Range<Int>, _ out: UnsafeMutablePointer<Float>) {
        let nb = cols / 32, g16 = Self.interleavedRows, groupBlock = g16 * BlockLayout.Q4_1.bytes
        let base = interleaved!
        let xr = x.row(t) + BlockLayout.Q8_1.qs, xBytes = BlockLayout.Q8_1.bytes
        let dxp = x.rowScale + t * nb, sxp = x.rowSum + t * nb
        var r = rows.lowerBound
        while r < rows.upperBound {
            if r % g16 == 0 && r + g16 <= rows.upperBound && r + g16 <= self.rows {
                var acc = SIMD16<Float>()
                var blk = base + (r / g16) * nb * groupBlock
                for b in 0..<nb {
                    Self.prefetch(blk + Self.prefetchDistance, bytes: groupBlock)
                    let xb = xr + b * xBytes
                    let isum = Self.groupSums(blk + 64, xb.assumingMemoryBound(to: Int8.self))
                    let dw = halfToFloat(blk.loadUnaligned(as: SIMD16<UInt16>.self))
                    let mw = halfToFloat(blk.loadUnaligned(fromByteOffset: 32, as: SIMD16<UInt16>.self))
                    acc = acc.addingProduct(Lanes.float(isum), SIMD16<Float>(repeating: dxp[b]) * dw)
                    acc = acc.addingProduct(SIMD16<Float>(repeating: sxp[b]), mw)
                    blk += groupBlock
                }
                UnsafeMutableRawPointer(out + r).storeBytes(of: acc, as: SIMD16<Float>.self)
                r += g16
            } else {
                // A row outside whole groups: the row-major kernel's scalar tail on gathered blocks.
                withUnsafeTemporaryAllocation(byteCount: BlockLayout.Q4_1.bytes, alignment: 16) { tmp in
                    var acc: Float = 0
                    for b in 0..<nb {
                        let w = interleavedBlock(base, r, b, tmp.baseAddress!), xb = xr + b * xBytes
                        let i = Lanes.sum(Self.lanes32(Q4_1Format.self, w, Lanes.signedBytes(xb, 0), Lanes.signedBytes(xb, 16)))
                        acc = acc.addingProduct(Float(i), dxp[b] * Q4_1Format.scale(w))
                        acc = acc.addingProduct(sxp[b], Q4_1Format.minimum(w))
                    }
                    out[r] = acc
                }
                r += 1
            }
        }
    }

    /// Exact Σ_k q[row, k]·x[k] of one group block for its 16 rows: qs [16 bytes k][16 rows],
    /// x the 32 q8_1 quants. Low nibble of byte k is value k, high nibble value k + 16.
    @inline(__always)
    static func groupSums(_ qs: UnsafeRawPointer, _ x: UnsafePointer<Int8>) -> SIMD16<Int32> {
        var a0 = SIMD16<Int32>(), a1 = SIMD16<Int32>()
        var k = 0
        while k < 16 {
            let w0 = Lanes.bytes(qs, 16 * k), w1 = Lanes.bytes(qs, 16 * k + 16)
            a0 = a0 &+ (w0 & 15) &* SIMD16<Int32>(repeating: Int32(x[k])) &+ (w0 &>> 4) &* SIMD16<Int32>(repeating: Int32(x[k + 16]))
            a1 = a1 &+ (w1 & 15) &* SIMD16<Int32>(repeating: Int32(x[k + 1])) &+ (w1 &>> 4) &* SIMD16<Int32>(repeating: Int32(x[k + 17]))
            k += 2
        }
        return a0 &+ a1
    }
}
