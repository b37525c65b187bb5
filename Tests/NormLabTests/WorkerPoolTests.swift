import Synchronization
import XCTest
@testable import NormLab

/// The worker pool runs every part of every job exactly once, whoever claims it.
final class WorkerPoolTests: XCTestCase {
    func testEveryPartRunsExactlyOnceAcrossManyJobs() {
        let pool = WorkerPool.shared
        for job in 0..<2_000 {
            let parts = 2 + job % 40
            let runs = (0..<parts).map { _ in Counter() }
            pool.run(parts: parts) { part in runs[part].value.add(1, ordering: .relaxed) }
            let counts = runs.map { $0.value.load(ordering: .relaxed) }
            if counts != [Int](repeating: 1, count: parts) {
                XCTFail("job \(job) with \(parts) parts ran its parts \(counts) times")
                return
            }
        }
    }

    func testNestedJobRunsInlineAndCompletes() {
        let total = Counter()
        WorkerPool.shared.run(parts: 2) { _ in
            WorkerPool.shared.run(parts: 3) { part in total.value.add(part + 1, ordering: .relaxed) }
        }
        XCTAssertEqual(total.value.load(ordering: .relaxed), 2 * (1 + 2 + 3))
    }
}

private final class Counter: Sendable {
    let value = Atomic<Int>(0)
}
