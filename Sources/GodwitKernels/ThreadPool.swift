// A persistent worker pool for the many short parallel sections of a decode step.
//
// Design (see docs/performance.md, "Threads"): one thread per core including the caller, which
// runs tasks too. Between sections the workers spin on a generation counter for a short while
// (sections arrive every few microseconds while decoding), then park on a condition variable so an
// idle session costs no CPU. Tasks are handed out dynamically from an atomic counter, so a core that
// is busy with something else simply takes fewer tasks. Issuing a section allocates nothing.
// The caller waits only for the tasks that were claimed, not for every worker to show up: a worker
// descheduled by another process (a busy machine) no longer stalls each section for a scheduler
// time slice. A worker enters a section only while it is open (`open`, `inside`), so one that wakes
// late never runs a finished section's closure.
import Atomics
import CGodwit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class ThreadPool: @unchecked Sendable {
    /// Threads that execute tasks, including the calling thread.
    public let threadCount: Int
    /// How many spin iterations a worker waits for the next section before parking.
    public var spinIterations: Int

    private let generation = ManagedAtomic<Int>(0)
    private let nextTask = ManagedAtomic<Int>(0)
    /// Tasks of the current section that have finished.
    private let completed = ManagedAtomic<Int>(0)
    /// Whether workers may still enter the current section, and how many are inside it.
    private let open = ManagedAtomic<Bool>(false)
    private let inside = ManagedAtomic<Int>(0)
    private let sleepers = ManagedAtomic<Int>(0)
    private let stopping = ManagedAtomic<Bool>(false)
    private var taskCount = 0
    private var job: ((Int, Int) -> Void)?
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var threads: [pthread_t] = []

    /// A pool with `threads` threads in total (the caller plus `threads - 1` workers).
    public init(threads: Int, spinIterations: Int = 200_000) {
        threadCount = max(1, threads)
        self.spinIterations = spinIterations
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
        for w in 1..<threadCount {
            let box = Unmanaged.passRetained(WorkerStart(pool: self, index: w))
            var tid = pthread_t()
            #if canImport(Glibc)
            let rc = pthread_create(&tid, nil, { raw in
                let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
                start.pool.workerLoop(index: start.index)
                return nil
            }, box.toOpaque())
            #else
            let rc = pthread_create(&tid, nil, { raw in
                let start = Unmanaged<WorkerStart>.fromOpaque(raw).takeRetainedValue()
                start.pool.workerLoop(index: start.index)
                return nil
            }, box.toOpaque())
            #endif
            if rc == 0 { self.threads.append(tid) } else { box.release() }
        }
    }

    /// Number of cores the OS reports.
    public static var coreCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    deinit {
        stopping.store(true, ordering: .sequentiallyConsistent)
        pthread_mutex_lock(&mutex)
        generation.wrappingIncrement(ordering: .sequentiallyConsistent)
        pthread_cond_broadcast(&cond)
        pthread_mutex_unlock(&mutex)
        for t in threads { pthread_join(t, nil) }
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    /// Runs `body(task, thread)` for every task in 0..<count, spread over the pool's threads, and
    /// returns when all have finished. `thread` is in 0..<threadCount (0 = the caller) so a task can
    /// use per-thread scratch. Sections must not be issued concurrently from several threads.
    public func parallelFor(_ count: Int, _ body: (_ task: Int, _ thread: Int) -> Void) {
        if count <= 0 { return }
        if count == 1 || threads.isEmpty {
            for i in 0..<count { body(i, 0) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            job = escapable
            taskCount = count
            nextTask.store(0, ordering: .relaxed)
            completed.store(0, ordering: .relaxed)
            open.store(true, ordering: .sequentiallyConsistent)
            generation.wrappingIncrement(ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(&mutex)
                pthread_cond_broadcast(&cond)
                pthread_mutex_unlock(&mutex)
            }
            runTasks(thread: 0)
            // Every task was claimed; wait for the ones workers are still running.
            while completed.load(ordering: .acquiring) < count { godwit_spin_pause() }
            // Close the section, then wait for workers that entered it to leave (they find no task).
            open.store(false, ordering: .sequentiallyConsistent)
            while inside.load(ordering: .sequentiallyConsistent) > 0 { godwit_spin_pause() }
            job = nil
        }
    }

    /// Splits 0..<total into `parts` nearly equal contiguous ranges; returns range `i`.
    @inline(__always)
    public static func split(_ total: Int, parts: Int, index i: Int, alignment: Int = 1) -> Range<Int> {
        let units = (total + alignment - 1) / alignment
        let lo = units * i / parts, hi = units * (i + 1) / parts
        return min(total, lo * alignment)..<min(total, hi * alignment)
    }

    private func runTasks(thread: Int) {
        let n = taskCount
        guard let body = job else { return }
        while true {
            let i = nextTask.loadThenWrappingIncrement(ordering: .relaxed)
            if i >= n { break }
            body(i, thread)
            completed.wrappingIncrement(ordering: .releasing)
        }
    }

    private func workerLoop(index: Int) {
        // Generation 0 is "no section yet": a section issued before this thread got here must still
        // be run, so do not start from the current value.
        var seen = 0
        while true {
            var spins = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen && spins < spinIterations {
                godwit_spin_pause()
                spins += 1
                current = generation.load(ordering: .acquiring)
            }
            if current == seen {
                pthread_mutex_lock(&mutex)
                sleepers.wrappingIncrement(ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen {
                    pthread_cond_wait(&cond, &mutex)
                }
                sleepers.wrappingDecrement(ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(&mutex)
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if stopping.load(ordering: .acquiring) { return }
            // Enter only a section that is still open and still the one this worker was woken for;
            // the caller closes a section before waiting for `inside` to drop to zero.
            inside.wrappingIncrement(ordering: .sequentiallyConsistent)
            if open.load(ordering: .sequentiallyConsistent) && generation.load(ordering: .sequentiallyConsistent) == seen {
                runTasks(thread: index)
            }
            inside.wrappingDecrement(ordering: .sequentiallyConsistent)
        }
    }
}

/// What a worker thread starts with. The pool is held unowned: `deinit` joins the workers before
/// the pool's memory goes away, and a strong reference here would keep the pool alive forever.
private final class WorkerStart {
    unowned(unsafe) let pool: ThreadPool
    let index: Int
    init(pool: ThreadPool, index: Int) { self.pool = pool; self.index = index }
}
