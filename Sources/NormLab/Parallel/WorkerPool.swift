import Foundation
import Synchronization

/// Persistent worker threads that spin briefly between jobs, so that handing work to the other
/// core costs about a microsecond instead of a Dispatch wake-up (tens of microseconds on these
/// virtual machines). Idle workers spin, then poll while yielding their core, then sleep until
/// the next job wakes them.
///
/// A job's parts are claimed, not assigned: the caller and the workers take the next unclaimed
/// part until none is left, so when a worker is late — asleep, or its core busy with another
/// program — the caller runs its parts instead of waiting for it. Which thread runs a part never
/// changes what the part computes, so results stay bit-identical.
///
/// One job at a time: a job started while another runs (a nested call, or a second thread) runs
/// inline on its caller, which gives the same results because work is split the same way.
final class WorkerPool: @unchecked Sendable {
    /// The shared pool, with one worker per processor beyond the first.
    static let shared = WorkerPool(workers: max(1, Parallelism.availableProcessors - 1))

    let workerCount: Int
    /// The current job's claims in one word: generation (bumped once per job) in the high bits,
    /// then its part count, then the next unclaimed part (`Claims`).
    private let claims = Atomic<UInt64>(0)
    /// Parts of the current job that have finished.
    private let finished = Atomic<Int>(0)
    /// Whether a job is in progress (guards against nested or concurrent jobs).
    private let busy = Atomic<Bool>(false)
    private let sleepers = Atomic<Int>(0)
    private let condition = NSCondition()
    /// The current job; written before its generation is published, cleared after its last part.
    private var job: ((Int) -> Void)?
    /// An idle worker first spins on the CPU (about 10 µs), then keeps polling but yields its core
    /// to any other runnable thread between polls (about 250 µs in all on an idle machine), then
    /// sleeps. The polling outlasts the gaps between the parallel parts of a small-batch training
    /// step, so a step rarely pays for a wake-up; the yielding keeps a waiting worker from taking
    /// CPU time from the caller, or from another program, when the machine is busy.
    private let spinLimit = 4_000
    private let yieldLimit = 400
    /// Spins of a caller waiting for a part in progress elsewhere before it starts yielding its
    /// core (to the worker it waits for, should the system have put both on one core).
    private let waitSpinsBeforeYield = 10_000

    private init(workers: Int) {
        workerCount = workers
        for index in 0..<workers {
            let thread = Thread { [unowned self] in self.workerLoop() }
            thread.name = "normlab-worker-\(index + 1)"
            thread.start()
        }
    }

    /// Runs `body(part)` for every part in `0..<parts` (at most 65,535) on the caller and the
    /// workers, and returns when all are done.
    func run(parts: Int, _ body: (Int) -> Void) {
        precondition(parts <= Claims.maximumParts)
        guard parts > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for part in 0..<parts { body(part) }
            return
        }
        runJob(parts: parts, body)
    }

    /// Runs `body(part)` for every part in `0..<parts` at the same time, each part on a thread of
    /// its own (the caller's or a worker's), for parts that wait for each other. Returns false,
    /// having run nothing, when that cannot be promised: more parts than threads, or another job
    /// running (a nested call, or a second thread).
    func runTogether(parts: Int, _ body: (Int) -> Void) -> Bool {
        guard parts <= workerCount + 1 else { return false }
        if parts <= 1 {
            for part in 0..<parts { body(part) }
            return true
        }
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        // Every thread that claims a part keeps it until all parts have been claimed (they
        // wait for each other), so no thread claims two.
        runJob(parts: parts, body)
        return true
    }

    /// Publishes a job, runs parts of it on the caller, waits for the rest; `busy` is held.
    private func runJob(parts: Int, _ body: (Int) -> Void) {
        withoutActuallyEscaping(body) { escapable in
            job = escapable
            finished.store(0, ordering: .relaxed)
            let generation = (Claims(claims.load(ordering: .relaxed)).generation + 1) & Claims.generationMask
            // Sequentially consistent with the worker's sleepers/claims pair, so a worker going to
            // sleep either sees the new generation or is seen here and woken.
            claims.store(Claims(generation: generation, parts: parts, next: 0).word, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                condition.lock()
                condition.broadcast()
                condition.unlock()
            }
            runParts(of: generation)
            var spins = 0
            while finished.load(ordering: .acquiring) < parts {
                spins += 1
                if spins < waitSpinsBeforeYield { spinPause() } else { sched_yield() }
            }
            job = nil
        }
        busy.store(false, ordering: .releasing)
    }

    /// Claims and runs parts of job `generation` until none is left or a newer job replaced it.
    private func runParts(of generation: Int) {
        var state = Claims(claims.load(ordering: .acquiring))
        while state.generation == generation && state.next < state.parts {
            let (exchanged, original) = claims.compareExchange(
                expected: state.word, desired: state.claimingNext.word, ordering: .acquiringAndReleasing)
            if exchanged {
                // The job cannot change before this claimed part reports back.
                job!(state.next)
                finished.add(1, ordering: .releasing)
                state = Claims(claims.load(ordering: .acquiring))
            } else {
                state = Claims(original)
            }
        }
    }

    private func workerLoop() {
        var seen = 0
        while true {
            var spins = 0
            while Claims(claims.load(ordering: .acquiring)).generation == seen {
                spins += 1
                if spins < spinLimit {
                    spinPause()
                    continue
                }
                if spins < spinLimit + yieldLimit {
                    sched_yield()
                    continue
                }
                condition.lock()
                sleepers.add(1, ordering: .sequentiallyConsistent)
                while Claims(claims.load(ordering: .sequentiallyConsistent)).generation == seen { condition.wait() }
                sleepers.subtract(1, ordering: .releasing)
                condition.unlock()
            }
            seen = Claims(claims.load(ordering: .acquiring)).generation
            runParts(of: seen)
        }
    }

    @inline(__always)
    private func spinPause() {
        #if arch(x86_64) || arch(i386)
        _mm_pause_shim()
        #endif
    }
}

/// A job's generation, part count and next unclaimed part, packed in one 64-bit atomic word (on
/// 32-bit platforms too) so that a claim can never take a part of a job other than the one it saw.
private struct Claims {
    static let maximumParts = 0xFFFF
    /// Generations wrap at 2³¹, so that every one packs into the word and unpacks unchanged.
    static let generationMask = 0x7FFF_FFFF
    let generation: Int
    let parts: Int
    let next: Int

    init(generation: Int, parts: Int, next: Int) {
        self.generation = generation
        self.parts = parts
        self.next = next
    }

    init(_ word: UInt64) {
        generation = Int(word >> 32)
        parts = Int((word >> 16) & 0xFFFF)
        next = Int(word & 0xFFFF)
    }

    var word: UInt64 { UInt64(generation) << 32 | UInt64(parts) << 16 | UInt64(next) }
    var claimingNext: Claims { Claims(generation: generation, parts: parts, next: next + 1) }
}

#if arch(x86_64) || arch(i386)
/// The x86 PAUSE hint, without importing intrinsics: a short, constant-time spin.
@inline(__always)
private func _mm_pause_shim() {
    // An atomic fence keeps the loop from being optimized into a tight load; cheap on x86.
    atomicMemoryFence(ordering: .sequentiallyConsistent)
}
#endif
