// The registry of cache schemes: open-ended identifiers, not a public exhaustive enum. Built-in
// schemes register at first use; applications may register their own under new names.
import Foundation

public final class KVSchemeRegistry: @unchecked Sendable {
    public static let shared = KVSchemeRegistry()

    private let lock = NSLock()
    private var schemes: [String: any KVScheme] = [:]
    private var order: [String] = []

    public init(registerBuiltIns: Bool = true) {
        if registerBuiltIns {
            for s in BuiltInSchemes.all { register(s) }
        }
    }

    /// Adds (or replaces) a scheme under its name.
    public func register(_ scheme: any KVScheme) {
        lock.lock(); defer { lock.unlock() }
        if schemes[scheme.name] == nil { order.append(scheme.name) }
        schemes[scheme.name] = scheme
    }

    /// Registered names in registration order.
    public var names: [String] {
        lock.lock(); defer { lock.unlock() }
        return order
    }

    /// All schemes in registration order.
    public var all: [any KVScheme] {
        lock.lock(); defer { lock.unlock() }
        return order.map { schemes[$0]! }
    }

    /// The scheme called `name`; the error lists the known names.
    public func scheme(named name: String) throws(KVCacheError) -> any KVScheme {
        lock.lock(); defer { lock.unlock() }
        guard let s = schemes[name.lowercased()] ?? schemes[name] else { throw .unknownScheme(name, known: order) }
        return s
    }
}
