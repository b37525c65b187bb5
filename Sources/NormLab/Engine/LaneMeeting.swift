import Foundation
import Synchronization

/// What the layers of one lane know of the training step they run in (`NetworkLanes`): the
/// lane's share of the batch, and where the lanes meet when a layer needs all of them.
final class LaneContext {
    /// The lane's samples in the current step.
    var share = SamplePiece(first: 0, count: 0, batch: 0)
    /// Where the lanes of a step meet; the same for every lane.
    let meeting: LaneMeeting
    /// Whether a layer of the lane needs the whole batch's statistics (`BatchStatisticsLane`): the
    /// step then takes the batch as one piece, and the lanes run at the same time and meet.
    var meets = false

    /// Each batch-statistics slot's statistics, one object for all the lanes of a network.
    private let statistics: SharedStatisticsTable

    init(meeting: LaneMeeting, statistics: SharedStatisticsTable) {
        self.meeting = meeting
        self.statistics = statistics
    }

    /// The statistics that every lane's copy of `normalizer`'s slot shares.
    func sharedStatistics(of normalizer: any BatchStatisticsNormalizer) -> BatchStatisticsLane.Shared {
        statistics.shared(of: normalizer)
    }
}

/// The statistics of a network's batch-statistics slots, by normalizer, for its lanes; filled
/// as the lanes are made, on one thread.
final class SharedStatisticsTable {
    private var table: [ObjectIdentifier: BatchStatisticsLane.Shared] = [:]

    func shared(of normalizer: any BatchStatisticsNormalizer) -> BatchStatisticsLane.Shared {
        if let shared = table[ObjectIdentifier(normalizer)] { return shared }
        let shared = BatchStatisticsLane.Shared(normalizer)
        table[ObjectIdentifier(normalizer)] = shared
        return shared
    }
}

/// Where the lanes of a training step wait for each other. A layer that needs the whole batch
/// (batch norm's statistics) has each lane add up its share and then `meet`: the last lane to
/// arrive finishes the whole batch's part on its own thread, and then all of them go on.
///
/// Lanes that meet must run at the same time, each on its own thread
/// (`Parallelism.together`). A lane that fails abandons the meeting: every lane waiting at it, or
/// arriving later, throws `LaneMeeting.Abandoned` instead of waiting forever.
final class LaneMeeting: @unchecked Sendable {
    struct Abandoned: Error {}

    private let arrived = Atomic<Int>(0)
    /// Bumped each time the lanes may go on.
    private let generation = Atomic<Int>(0)
    private let abandoned = Atomic<Bool>(false)
    /// The lanes that take part in the current step.
    private var participants = 1
    /// Spins of a waiting lane before it starts yielding its core to the lanes it waits for.
    private let spinsBeforeYield = 10_000

    /// Before a step, on the step's thread.
    func begin(participants: Int) {
        self.participants = participants
        arrived.store(0, ordering: .relaxed)
        abandoned.store(false, ordering: .relaxed)
    }

    /// Waits for every lane; the last to arrive runs `finish` first. What each lane wrote before
    /// arriving is visible to `finish`, and what `finish` wrote to every lane after it.
    func meet(_ finish: () throws -> Void) throws {
        let seen = generation.load(ordering: .acquiring)
        if arrived.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == participants {
            arrived.store(0, ordering: .relaxed)
            do {
                try finish()
            } catch {
                abandon()
                throw error
            }
            generation.store(seen &+ 1, ordering: .releasing)
            return
        }
        var spins = 0
        while generation.load(ordering: .acquiring) == seen {
            if abandoned.load(ordering: .acquiring) { throw Abandoned() }
            spins += 1
            if spins >= spinsBeforeYield { sched_yield() }
        }
    }

    /// Called by a lane that failed, so that the others stop waiting for it.
    func abandon() {
        abandoned.store(true, ordering: .releasing)
    }
}
