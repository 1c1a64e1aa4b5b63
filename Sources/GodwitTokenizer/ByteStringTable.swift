// Hash tables for the tokenizer's hot lookups. llama.cpp keeps `std::unordered_map<std::string, llama_token>`
// (`token_to_id`) and `std::unordered_map<std::pair<std::string, std::string>, int>` (`bpe_ranks`).
// Deviation: both are replaced by open-addressing tables over raw bytes so that a lookup of a slice of the
// text being tokenized needs no String or Array allocation; building one for Gemma 3's 262,144 tokens takes
// a few milliseconds. Semantics are those of the C++ maps: inserting an existing key overwrites the value
// (`token_to_id[word] = i`), except `PairTable.insertIfAbsent`, which keeps the first value (`emplace`).

/// Maps byte strings to `Int32` values. Keys are copied into one contiguous arena. A value type, so that
/// tokenizers hold it in `let` properties and lookups pay no dynamic exclusivity checks.
struct ByteStringTable: Sendable {
    struct Entry {
        var start: Int32
        var length: Int32
        var value: Int32
    }

    private var arena: [UInt8] = []
    private var entries: [Entry] = []
    /// Open-addressing slots: the hash's high 32 bits << 32 | entry index + 1 (0 = empty), so that most
    /// misses are decided without touching the entry. Capacity is a power of two.
    private var slots: [UInt64]
    private var slotMask: Int

    var count: Int { entries.count }

    init(expectedCount: Int, expectedBytes: Int) {
        var cap = 16
        while cap < expectedCount * 2 { cap <<= 1 }
        slots = [UInt64](repeating: 0, count: cap)
        slotMask = cap - 1
        arena.reserveCapacity(expectedBytes)
        entries.reserveCapacity(expectedCount)
    }

    @inline(__always)
    static func hash(_ p: UnsafePointer<UInt8>, _ n: Int) -> UInt64 {
        // 8 bytes per step (unaligned loads), a partial word for the tail, then a final avalanche.
        let k: UInt64 = 0xbf58_476d_1ce4_e5b9
        var h = UInt64(truncatingIfNeeded: n) &* 0x9e37_79b9_7f4a_7c15
        let raw = UnsafeRawPointer(p)
        var i = 0
        while i + 8 <= n {
            h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* k
            h ^= h >> 29
            i += 8
        }
        if i < n {
            var v: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                v |= UInt64(p[i]) << shift
                shift += 8
                i += 1
            }
            h = (h ^ v) &* k
        }
        h ^= h >> 32
        h = h &* 0x94d0_49bb_1331_11eb
        h ^= h >> 29
        return h
    }

    /// The value stored for the `n` bytes at `p`, or -1.
    @inline(__always)
    func lookup(_ p: UnsafePointer<UInt8>, _ n: Int) -> Int32 {
        let h = Self.hash(p, n)
        let tag = h & 0xFFFF_FFFF_0000_0000
        return slots.withUnsafeBufferPointer { sl in
            entries.withUnsafeBufferPointer { en in
                arena.withUnsafeBufferPointer { ar in
                    var slot = Int(truncatingIfNeeded: h) & slotMask
                    while true {
                        let e = sl[slot]
                        if e == 0 { return -1 }
                        if e & 0xFFFF_FFFF_0000_0000 == tag {
                            let entry = en[Int(e & 0xFFFF_FFFF) - 1]
                            if Int(entry.length) == n && memoryEqual(ar.baseAddress! + Int(entry.start), p, n) {
                                return entry.value
                            }
                        }
                        slot = (slot + 1) & slotMask
                    }
                }
            }
        }
    }

    func lookup(_ bytes: [UInt8]) -> Int32 {
        withBytes(bytes) { lookup($0, $1) }
    }

    /// Inserts or overwrites.
    mutating func insert(_ p: UnsafePointer<UInt8>, _ n: Int, value: Int32) {
        let h = Self.hash(p, n)
        var slot = Int(truncatingIfNeeded: h) & slotMask
        while true {
            let e = slots[slot]
            if e == 0 { break }
            let i = Int(e & 0xFFFF_FFFF) - 1
            if Int(entries[i].length) == n
                && arena.withUnsafeBufferPointer({ memoryEqual($0.baseAddress! + Int(entries[i].start), p, n) }) {
                entries[i].value = value
                return
            }
            slot = (slot + 1) & slotMask
        }
        entries.append(Entry(start: Int32(arena.count), length: Int32(n), value: value))
        arena.append(contentsOf: UnsafeBufferPointer(start: p, count: n))
        if arena.isEmpty { arena.append(0) }  // keep a valid base address for empty keys
        slots[slot] = h & 0xFFFF_FFFF_0000_0000 | UInt64(entries.count)
        if entries.count * 2 > slotMask + 1 { grow() }
    }

    mutating func insert(_ bytes: [UInt8], value: Int32) {
        withBytes(bytes) { insert($0, $1, value: value) }
    }

    private mutating func grow() {
        let newCap = (slotMask + 1) * 2
        slots = [UInt64](repeating: 0, count: newCap)
        slotMask = newCap - 1
        arena.withUnsafeBufferPointer { ar in
            for (i, entry) in entries.enumerated() {
                let h = Self.hash(ar.baseAddress! + Int(entry.start), Int(entry.length))
                var slot = Int(truncatingIfNeeded: h) & slotMask
                while slots[slot] != 0 { slot = (slot + 1) & slotMask }
                slots[slot] = h & 0xFFFF_FFFF_0000_0000 | UInt64(i + 1)
            }
        }
    }
}

/// Calls `body` with a valid pointer to `bytes` (a dummy one for an empty array) and the count.
@inline(__always)
func withBytes<R>(_ bytes: [UInt8], _ body: (UnsafePointer<UInt8>, Int) -> R) -> R {
    if bytes.isEmpty {
        let one: [UInt8] = [0]
        return one.withUnsafeBufferPointer { body($0.baseAddress!, 0) }
    }
    return bytes.withUnsafeBufferPointer { body($0.baseAddress!, $0.count) }
}

@inline(__always)
func memoryEqual(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    var i = 0
    while i + 8 <= n {
        if UnsafeRawPointer(a + i).loadUnaligned(as: UInt64.self) != UnsafeRawPointer(b + i).loadUnaligned(as: UInt64.self) {
            return false
        }
        i += 8
    }
    while i < n {
        if a[i] != b[i] { return false }
        i += 1
    }
    return true
}

/// Maps a pair of 32-bit symbol ids to a 64-bit payload (for BPE: rank and merged symbol). A value type
/// for the same reason as ByteStringTable.
struct PairTable: Sendable {
    private var keys: [UInt64]
    private var payloads: [UInt64]
    private var mask: Int
    private(set) var count = 0
    private static let empty = UInt64.max

    init(expectedCount: Int) {
        var cap = 16
        while cap < expectedCount * 2 { cap <<= 1 }
        keys = [UInt64](repeating: Self.empty, count: cap)
        payloads = [UInt64](repeating: 0, count: cap)
        mask = cap - 1
    }

    @inline(__always)
    private static func slot(_ key: UInt64, _ mask: Int) -> Int {
        var h = key &* 0x9e37_79b9_7f4a_7c15
        h ^= h >> 31
        return Int(truncatingIfNeeded: h) & mask
    }

    @inline(__always)
    static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always)
    func lookup(_ key: UInt64) -> UInt64? {
        keys.withUnsafeBufferPointer { k in
            var s = Self.slot(key, mask)
            while true {
                let found = k[s]
                if found == key { return payloads[s] }
                if found == Self.empty { return nil }
                s = (s + 1) & mask
            }
        }
    }

    /// Inserts unless the key is present (C++ `emplace`). Returns whether it inserted.
    @discardableResult
    mutating func insertIfAbsent(_ key: UInt64, _ payload: UInt64) -> Bool {
        var s = Self.slot(key, mask)
        while true {
            let k = keys[s]
            if k == key { return false }
            if k == Self.empty { break }
            s = (s + 1) & mask
        }
        keys[s] = key
        payloads[s] = payload
        count += 1
        if count * 2 > mask + 1 { grow() }
        return true
    }

    private mutating func grow() {
        let oldKeys = keys, oldPayloads = payloads
        let cap = oldKeys.count * 2
        keys = [UInt64](repeating: Self.empty, count: cap)
        payloads = [UInt64](repeating: 0, count: cap)
        mask = cap - 1
        for i in 0..<oldKeys.count where oldKeys[i] != Self.empty {
            var s = Self.slot(oldKeys[i], mask)
            while keys[s] != Self.empty { s = (s + 1) & mask }
            keys[s] = oldKeys[i]
            payloads[s] = oldPayloads[i]
        }
    }
}
