import Synchronization

/// A batch norm or batch renorm slot in one lane of a training step (`NetworkLanes`): it
/// normalizes the lane's samples with the whole batch's statistics, which the lanes add up
/// together (`SharedBatchStatistics`), meeting three times a step (`LaneMeeting`); the last lane
/// to arrive does the whole batch's part.
final class BatchStatisticsLane: RectifyingLayer {
    /// The slot's statistics, one object for all its lanes.
    final class Shared: @unchecked Sendable {
        let normalizer: any BatchStatisticsNormalizer
        private let statistics = Mutex<SharedBatchStatistics?>(nil)

        init(_ normalizer: any BatchStatisticsNormalizer) { self.normalizer = normalizer }

        /// The statistics for a batch of `batch` samples shaped like `share`'s, made when the
        /// shape changes.
        func statistics(batch: Int, sharedAs share: [Int]) throws -> SharedBatchStatistics {
            try statistics.withLock { statistics in
                if let statistics, statistics.shape.first == batch, statistics.shape.dropFirst().elementsEqual(share.dropFirst()) {
                    return statistics
                }
                let made = try SharedBatchStatistics(normalizer: normalizer, batchShape: [batch] + share.dropFirst())
                statistics = made
                return made
            }
        }
    }

    private let shared: Shared
    private let context: LaneContext
    var rectifiesOutput = false
    var canRectify: Bool { true }
    private var statistics: SharedBatchStatistics?
    /// The lane's input, kept from the forward pass to the backward pass, then let go (so that
    /// the layer before writes its next output in place).
    private var input = Tensor(shape: [0])
    private var output = Tensor(shape: [0])
    private var inputGradient = Tensor(shape: [0])

    init(sharing shared: Shared, context: LaneContext) {
        self.shared = shared
        self.context = context
        context.meets = true
    }

    /// Training only: lanes run training steps.
    func forward(_ x: Tensor, mode: NormalizationMode) throws -> Tensor {
        precondition(mode == .training, "a lane runs training steps only")
        let share = context.share
        let statistics = try shared.statistics(batch: share.batch, sharedAs: x.shape)
        self.statistics = statistics
        statistics.addPlaneSums(of: x, share: share)
        try context.meeting.meet { statistics.finishMeans() }
        statistics.addSquaredDeviations(of: x, share: share)
        try context.meeting.meet { statistics.finishVariances() }
        statistics.normalize(x, into: &output, rectifying: rectifiesOutput)
        input = x
        return output
    }

    func backward(_ outputGradient: Tensor) throws -> Tensor {
        guard let statistics else { preconditionFailure("backward before forward") }
        statistics.addGradientSums(outputGradient, of: input, share: context.share)
        try context.meeting.meet { statistics.finishGradientSums() }
        statistics.inputGradient(outputGradient, of: input, into: &inputGradient)
        input = Tensor(shape: [0])
        return inputGradient
    }

    func outputShape(for shape: [Int]) throws -> [Int] { shape }
}

extension BatchStatisticsLane: LaneLayer {
    func makeLane(_ context: LaneContext) throws -> (any Layer)? { nil }
    func prepare(_ lane: any Layer) {}
    func inputGradient(_ outputGradient: Tensor) throws -> Tensor { try backward(outputGradient) }
    /// Nothing to add: the normalizer's gradients were set as the lanes met.
    func addParameterGradients(from lane: any Layer, piece: SamplePiece) {}
}
