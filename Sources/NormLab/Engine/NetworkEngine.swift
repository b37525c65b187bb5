/// How a `Network` takes a training step across threads. Its step runs in lanes
/// (`NetworkLanes`) when every layer can (`LaneLayer`): copies of the network that share its
/// weights, one per thread, each taking its share of the batch forward and back on its own
/// thread, which at small batches costs less than handing every layer's work between the
/// threads. Otherwise (one thread with batch norm, or a normalizer with only the plain protocol)
/// the network takes the whole batch through each layer in turn, each layer splitting its own
/// work across threads. Both give the same bits.
final class NetworkEngine {
    /// The samples a training step takes through the network at a time, forward and backward,
    /// when every normalizer's statistics are per sample: what one piece's layers write and read
    /// stays in the processor's caches. 16 ran 1.1-1.25× faster than whole batches of 64 and
    /// 128, and faster than 32 (A/B runs of `normlab bench train`, in the git history of
    /// results/BENCHMARKS.md).
    static let pieceSize = 16
    private var lanes: NetworkLanes?
    /// The thread count `lanes` were made for.
    private var laneThreads = 0
    /// Whether the layers cannot run in lanes (found when lanes were first asked for).
    private var lanesUnavailable = false
    /// Whether the last training step ran in lanes.
    private(set) var ranInLanes = false

    /// Forward, softmax cross-entropy and backward of `body` in lanes: sets every parameter's
    /// gradient, unless the loss is not finite, and returns the batch's mean loss; nil, having
    /// done nothing, when the step is better taken (or can only be taken) as a whole batch.
    func trainingGradients(_ body: Sequential, images: Tensor, labels: ArraySlice<UInt8>) throws -> Double? {
        let n = images.shape[0]
        let execution = Execution.current
        let threads = execution.threads
        ranInLanes = false
        guard execution.splitsBatches && ((threads > 1 && n > 1) || n > Self.pieceSize),
              let lanes = try lanes(body, count: threads),
              let loss = try lanes.trainingGradients(body, images: images, labels: labels, pieceSize: Self.pieceSize)
        else { return nil }
        ranInLanes = true
        return loss
    }

    /// One lane per thread, made on first use; nil when the layers cannot run in lanes.
    private func lanes(_ body: Sequential, count: Int) throws -> NetworkLanes? {
        if lanesUnavailable { return nil }
        if let lanes, laneThreads == count { return lanes }
        lanes = try NetworkLanes(body, count: count)
        laneThreads = count
        lanesUnavailable = lanes == nil
        return lanes
    }
}
