import Foundation
import Synchronization

/// Persistent worker threads that spin briefly between jobs, so that handing work to the other
/// core costs about a microsecond instead of a Dispatch wake-up (tens of microseconds on these
/// virtual machines). Idle workers sleep after `spinLimit` and are woken by the next job.
///
/// One job at a time: a job started while another runs (a nested call, or a second thread) runs
/// inline on its caller, which gives the same results because work is split the same way.
final class WorkerPool: @unchecked Sendable {
    /// The shared pool, with one worker per extra thread `Parallelism.threadCount` allows.
    static let shared = WorkerPool(workers: max(1, ProcessInfo.processInfo.activeProcessorCount - 1))

    let workerCount: Int
    /// Bumped once per job; workers run each new generation's job once.
    private let generation = Atomic<Int>(0)
    /// Workers still running the current job.
    private let pending = Atomic<Int>(0)
    /// Whether a job is in progress (guards against nested or concurrent jobs).
    private let busy = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private let condition = NSCondition()
    /// The current job and its part count; written before `generation` is released.
    private var job: ((Int) -> Void)?
    private var parts = 0
    /// About 250 µs of spinning before a worker sleeps: longer than the gaps between the parallel
    /// parts of a small-batch training step, so a step rarely pays for a wake-up.
    private let spinLimit = 100_000

    private init(workers: Int) {
        workerCount = workers
        for index in 0..<workers {
            let thread = Thread { [unowned self] in self.workerLoop(index: index + 1) }
            thread.name = "normlab-worker-\(index + 1)"
            thread.start()
        }
    }

    /// Runs `body(part)` for every part in `0..<parts` (at most `workerCount + 1`), part 0 on the
    /// caller, and returns when all are done.
    func run(parts: Int, _ body: (Int) -> Void) {
        precondition(parts <= workerCount + 1)
        guard parts > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for part in 0..<parts { body(part) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            job = escapable
            self.parts = parts
            pending.store(workerCount, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            // Sequentially consistent with the worker's sleepers/generation pair, so a worker going to
            // sleep either sees the new generation or is seen here and woken.
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                condition.lock()
                condition.broadcast()
                condition.unlock()
            }
            escapable(0)
            while pending.load(ordering: .acquiring) > 0 { spinPause() }
            job = nil
        }
        busy.store(false, ordering: .releasing)
    }

    private func workerLoop(index: Int) {
        var seen = 0
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                if spins < spinLimit {
                    spinPause()
                    continue
                }
                condition.lock()
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while generation.load(ordering: .sequentiallyConsistent) == seen { condition.wait() }
                sleepers.subtract(1, ordering: .releasing)
                condition.unlock()
            }
            seen = generation.load(ordering: .acquiring)
            if index < parts, let job { job(index) }
            pending.subtract(1, ordering: .releasing)
        }
    }

    @inline(__always)
    private func spinPause() {
        #if arch(x86_64) || arch(i386)
        _mm_pause_shim()
        #endif
    }
}

#if arch(x86_64) || arch(i386)
/// The x86 PAUSE hint, without importing intrinsics: a short, constant-time spin.
@inline(__always)
private func _mm_pause_shim() {
    // An atomic fence keeps the loop from being optimized into a tight load; cheap on x86.
    atomicMemoryFence(ordering: .sequentiallyConsistent)
}
#endif
