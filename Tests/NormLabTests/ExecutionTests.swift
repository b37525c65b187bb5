import Dispatch
import XCTest
@testable import NormLab

/// Execution settings hold inside `run` only, on the threads it hands work to too, and two
/// threads can each have their own at once.
final class ExecutionTests: XCTestCase {
    func testSettingsHoldInsideRunAndTravelToWorkerThreads() {
        let outside = Execution.current
        let chosen = Execution(threads: 2, splitsBatches: false, chunksColumns: false, wideTiles: false)
        XCTAssertNotEqual(chosen, Execution())
        var seen = [Execution?](repeating: nil, count: 64)
        chosen.run {
            seen.withUnsafeMutableBufferPointer { buffer in
                let buffer = UncheckedSendable(buffer)
                // Costly enough to be split between the caller and the workers (which of them
                // runs a part depends on timing; every part must see the same settings).
                Parallelism.forEach(64, cost: 1_000_000) { range in
                    for index in range { buffer.value[index] = Execution.current }
                }
            }
        }
        XCTAssertEqual(seen, Array(repeating: chosen, count: 64))
        XCTAssertEqual(Execution.current, outside, "the settings do not outlive run")
    }

    func testTwoThreadsEachKeepTheirOwn() {
        let mismatches = UncheckedSendable(NSLock())
        nonisolated(unsafe) var wrong = 0
        DispatchQueue.concurrentPerform(iterations: 4) { index in
            Execution(threads: index + 1).run {
                for _ in 0..<10_000 where Execution.current.threads != index + 1 {
                    mismatches.value.withLock { wrong += 1 }
                }
            }
        }
        XCTAssertEqual(wrong, 0)
    }
}
