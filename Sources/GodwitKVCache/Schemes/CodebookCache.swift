// A process-wide cache of computed codebooks keyed by (dim, bits), built once per key behind a lock
// (TurboCodebook's Lloyd–Max solutions, TrellisCodebook's trained tables). Source: this project.
import Foundation

final class CodebookCache<Book: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var books: [Int: Book] = [:]

    /// The book for (dim, bits), made by `make` the first time (under the lock: each is built once).
    func codebook(dim: Int, bits: Int, make: () -> Book) -> Book {
        let key = dim << 8 | bits
        lock.lock(); defer { lock.unlock() }
        if let b = books[key] { return b }
        let b = make()
        books[key] = b
        return b
    }
}
