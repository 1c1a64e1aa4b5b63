// The cache's memory, exactly: allocated bytes (what the process holds) and logical bytes (what the
// cached tokens need), per layer kind and role, plus bits per cached value.

public struct KVMemoryReport: Sendable, Equatable {
    public struct Part: Sendable, Equatable {
        public var layers = 0
        public var keyAllocated = 0, valueAllocated = 0
        public var keyLogical = 0, valueLogical = 0
        /// Cached values (tokens × heads × dim, K and V counted apart).
        public var keyValues = 0, valueValues = 0

        public var allocated: Int { keyAllocated + valueAllocated }
        public var logical: Int { keyLogical + valueLogical }
    }

    public var global = Part()
    public var sliding = Part()
    public var tokens = 0

    public var allocatedBytes: Int { global.allocated + sliding.allocated }
    public var logicalBytes: Int { global.logical + sliding.logical }
    public var keyLogicalBytes: Int { global.keyLogical + sliding.keyLogical }
    public var valueLogicalBytes: Int { global.valueLogical + sliding.valueLogical }

    /// Bits per cached value: bytes held for the cached tokens over the number of values they hold.
    public var bitsPerValue: Double {
        let values = global.keyValues + global.valueValues + sliding.keyValues + sliding.valueValues
        return values == 0 ? 0 : Double(logicalBytes * 8) / Double(values)
    }
    public var keyBitsPerValue: Double {
        let values = global.keyValues + sliding.keyValues
        return values == 0 ? 0 : Double(keyLogicalBytes * 8) / Double(values)
    }
    public var valueBitsPerValue: Double {
        let values = global.valueValues + sliding.valueValues
        return values == 0 ? 0 : Double(valueLogicalBytes * 8) / Double(values)
    }
}
