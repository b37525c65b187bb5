import Dispatch
import Foundation

/// The one place that splits work across threads (`Execution.threads` of them).
///
/// Work is always split into the same items whatever the thread count, and every item is
/// computed by exactly one thread in a fixed order, so results are bit-identical with 1 thread or
/// many.
public enum Parallelism {
    /// Jobs smaller than this many scalar operations run on the calling thread. With the spinning
    /// `WorkerPool` a hand-off costs about a microsecond, so splitting pays from a few
    /// microseconds of work. The value was picked by A/B runs of `normlab bench train` and
    /// `normlab bench kernels` (git history of `results/BENCHMARKS.md`): against 60,000, 15,000 made batch-2
    /// training 1.10-1.14× faster and batch 8 1.02-1.04×, with no change at batch 32 and at
    /// kernel level; 8,000 measured the same as 15,000.
    public static let minimumParallelCost = 15_000

    /// Runs `body` once for every index in `0..<count`, split into contiguous ranges over the
    /// threads in force (`Execution`). Small jobs run inline (see `minimumParallelCost`).
    ///
    /// - Parameters:
    ///   - count: the number of independent work items.
    ///   - cost: the approximate number of scalar operations per item, to decide whether
    ///     splitting is worth a thread hand-off.
    ///   - body: computes one contiguous range of items; it must not touch another range's data.
    static func forEach(_ count: Int, cost: Int, _ body: (Range<Int>) -> Void) {
        let execution = Execution.current
        let threads = min(execution.threads, count)
        if threads <= 1 || count &* cost < minimumParallelCost {
            body(0..<count)
            return
        }
        let split = { (part: Int) in
            carrying(execution) { body((count * part / threads)..<(count * (part + 1) / threads)) }
        }
        if threads <= WorkerPool.shared.workerCount + 1 {
            WorkerPool.shared.run(parts: threads, split)
            return
        }
        withoutActuallyEscaping(split) { escapable in
            let work = UncheckedSendable(escapable)
            DispatchQueue.concurrentPerform(iterations: threads) { part in work.value(part) }
        }
    }

    /// Runs `body(index)` for every index in `0..<count` at the same time, each on a thread of its
    /// own, for work whose parts wait for each other (`LaneMeeting`). Returns false, having run
    /// nothing, when the threads are not free for it (`WorkerPool.runTogether`).
    static func together(_ count: Int, _ body: (Int) -> Void) -> Bool {
        let execution = Execution.current
        return WorkerPool.shared.runTogether(parts: count) { part in carrying(execution) { body(part) } }
    }

    /// Runs `body` with `execution` in force: the settings travel with the parts of a job that
    /// run on other threads.
    @inline(__always)
    private static func carrying(_ execution: Execution, _ body: () -> Void) {
        if Execution.current == execution { body() } else { execution.run(body) }
    }

    /// The most parts `together` can run: the caller and each worker thread.
    static var togetherLimit: Int { WorkerPool.shared.workerCount + 1 }
}

/// Carries a value the compiler cannot prove Sendable into a concurrent region whose caller
/// guarantees the threads touch disjoint memory.
struct UncheckedSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
