import Atomics
import GodwitKernels
import Testing

@Suite struct ThreadPoolTests {
    @Test("Every task runs exactly once, including sections issued before the workers started")
    func tasksRunOnce() {
        for _ in 0..<200 {
            let pool = ThreadPool(threads: 3)
            let hits = UnsafeMutablePointer<ManagedAtomic<Int>>.allocate(capacity: 1)
            hits.initialize(to: ManagedAtomic(0))
            for count in [1, 2, 7, 64] {
                hits.pointee.store(0, ordering: .relaxed)
                pool.parallelFor(count) { _, thread in
                    precondition(thread < 3)
                    hits.pointee.wrappingIncrement(ordering: .relaxed)
                }
                #expect(hits.pointee.load(ordering: .relaxed) == count)
            }
            hits.deinitialize(count: 1)
            hits.deallocate()
        }
    }

    @Test("Workers park when idle and wake for the next section")
    func parkAndWake() {
        let pool = ThreadPool(threads: 2, spinIterations: 10)
        var sum = [Int](repeating: 0, count: 16)
        for round in 0..<50 {
            sum.withUnsafeMutableBufferPointer { buf in
                pool.parallelFor(16) { i, _ in buf[i] += round }
            }
        }
        #expect(sum.allSatisfy { $0 == (0..<50).reduce(0, +) })
    }

    @Test("split covers the range without overlap")
    func split() {
        for total in [0, 1, 5, 64, 1000] {
            for parts in 1...7 {
                var covered = 0
                var last = 0
                for i in 0..<parts {
                    let r = ThreadPool.split(total, parts: parts, index: i, alignment: 4)
                    #expect(r.lowerBound == last)
                    last = r.upperBound
                    covered += r.count
                }
                #expect(covered == total)
            }
        }
    }
}
