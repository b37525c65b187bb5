/// A layer that a training step can run in lanes: copies of the layer that share its trainable
/// values, one per thread, each taking a share of the batch (`NetworkEngine`).
///
/// A lane runs forward and then `inputGradient` back to its input, keeping what the parameters'
/// gradients need; the layer then adds each lane's share to its own gradients with
/// `addParameterGradients`, the lanes in sample order, each sum going on from where the share
/// before left it (`SamplePiece`): the same bits as one backward pass over the whole batch.
protocol LaneLayer: Layer {
    /// A copy sharing this layer's trainable values, with buffers of its own, for the lane that
    /// `context` describes; nil when the layer cannot run in lanes (a normalizer that offers only
    /// the plain protocol).
    func makeLane(_ context: LaneContext) throws -> (any Layer)?

    /// Before a step: copies into `lane` the trainable values it does not share by reference.
    func prepare(_ lane: any Layer)

    /// `backward`, but leaving the parameters' gradients to `addParameterGradients`.
    func inputGradient(_ outputGradient: Tensor) throws -> Tensor

    /// Adds the gradients of `lane`'s share `piece` of the batch, which it ran forward and back
    /// through `inputGradient`, to this layer's parameters' gradients.
    func addParameterGradients(from lane: any Layer, piece: SamplePiece)

    /// About how many multiply-adds `addParameterGradients(from: lane, …)` costs, to share the
    /// layers out between threads.
    func parameterGradientCost(from lane: any Layer) -> Int
}

extension LaneLayer {
    func parameterGradientCost(from lane: any Layer) -> Int { 0 }
}

/// The lanes of a `Network`'s training step: copies of its layers that share their trainable
/// values, one per thread.
///
/// A batch of more than `NetworkEngine.pieceSize` samples goes through a piece at a time, forward and
/// backward, so that what one piece's layers write and read stays in the processor's caches;
/// each piece is shared out between the lanes, and each lane runs its samples forward and back
/// to the input gradients on its own thread, with no hand-offs between threads. Then each
/// parameter's gradient adds the lanes' shares in sample order, going on from the pieces before:
/// the same bits as one pass over the whole batch, on any number of threads.
///
/// With batch norm or batch renorm (`BatchStatisticsLane`), a step takes the whole batch as one
/// piece, and the lanes run at the same time and meet where a normalizer needs the whole batch's
/// statistics, and once after the loss: a loss that is not finite makes no backward pass.
final class NetworkLanes {
    /// One lane: a copy of the network and its share of the step.
    final class Lane {
        let body: Sequential
        let context: LaneContext
        var images = Tensor(shape: [0])
        var logits = Tensor(shape: [0])
        var logitsGradient = Tensor(shape: [0])
        /// Each sample's loss in the lane's share of the last piece.
        var sampleLosses: [Double] = []
        var error: (any Error)?

        init(body: Sequential, context: LaneContext) {
            self.body = body
            self.context = context
        }

        /// Its `share` of a step's images forward: the logits, each sample's loss and the
        /// logits' gradient.
        func forward(_ images: Tensor, labels: ArraySlice<UInt8>, share: SamplePiece) throws {
            copySamples(share.samples, of: images, into: &self.images)
            logits = try body.forward(self.images, mode: .training)
            sampleLosses.removeAll(keepingCapacity: true)
            SoftmaxCrossEntropy.accumulate(
                logits: logits, labels: labels.dropFirst(share.first).prefix(share.count), batchSize: share.batch,
                gradient: &logitsGradient
            ) { sampleLoss, _ in self.sampleLosses.append(sampleLoss) }
        }
    }

    let lanes: [Lane]
    /// Whether the lanes meet (`LaneContext.meets`): whole batches, lanes run together.
    let meets: Bool
    private let meeting = LaneMeeting()
    private let statistics = SharedStatisticsTable()
    /// The network's layers with trainable values, each with its copies in the lanes.
    private let parameterLayers: [(layer: any LaneLayer, lanes: [any Layer])]

    /// Lanes for `body`, one per thread (for lanes that meet, no more than can run at the same
    /// time); nil when a layer cannot run in lanes.
    init?(_ body: Sequential, count: Int) throws {
        var lanes: [Lane] = []
        for _ in 0..<count {
            let context = LaneContext(meeting: meeting, statistics: statistics)
            guard let lane = try body.makeLane(context) as? Sequential else { return nil }
            lanes.append(Lane(body: lane, context: context))
            if context.meets && lanes.count == Parallelism.togetherLimit { break }
        }
        self.lanes = lanes
        meets = lanes.contains { $0.context.meets }
        let laneLayers = lanes.map(\.body.allLayers)
        parameterLayers = body.allLayers.enumerated().compactMap { index, layer in
            guard !layer.parameters.isEmpty, let layer = layer as? any LaneLayer else { return nil }
            return (layer, laneLayers.map { $0[index] })
        }
    }

    /// Forward, softmax cross-entropy and backward over `images` in pieces and lanes: sets every
    /// parameter's gradient of `body` (whose lanes these are), unless the loss is not finite,
    /// and returns the batch's mean loss; nil, having done nothing, when lanes that meet cannot
    /// run at the same time (fewer than two, or the threads are busy).
    func trainingGradients(_ body: Sequential, images: Tensor, labels: ArraySlice<UInt8>, pieceSize: Int) throws -> Double? {
        let n = images.shape[0]
        precondition(labels.count == n, "\(labels.count) labels for \(n) images")
        if meets { return try trainingGradientsMeeting(body, images: images, labels: labels) }
        for lane in lanes { body.prepare(lane.body) }
        var loss = 0.0
        var piece = SamplePiece(first: 0, count: 0, batch: n)
        while !piece.isLast {
            let first = piece.first + piece.count
            piece = SamplePiece(first: first, count: min(pieceSize, n - first), batch: n)
            try inLanes(piece) { lane, share in
                try lane.forward(images, labels: labels, share: share)
                _ = try lane.body.inputGradient(lane.logitsGradient)
            }
            addLosses(ofLanes: laneCount(piece), to: &loss)
            // A loss that is no longer finite makes no update: the later pieces only finish it.
            if loss.isFinite { addParameterGradients(piece) }
        }
        return loss / Double(n)
    }

    /// The whole batch in lanes that meet (see the type's description).
    private func trainingGradientsMeeting(_ body: Sequential, images: Tensor, labels: ArraySlice<UInt8>) throws -> Double? {
        let batch = SamplePiece.whole(images.shape[0])
        let count = laneCount(batch)
        guard count > 1 else { return nil }
        for lane in lanes { body.prepare(lane.body) }
        meeting.begin(participants: count)
        var loss = 0.0
        let ran = Parallelism.together(count) { index in
            let lane = self.lanes[index], share = self.share(index, of: batch)
            do {
                lane.context.share = share
                try lane.forward(images, labels: labels, share: share)
                try self.meeting.meet { self.addLosses(ofLanes: count, to: &loss) }
                guard loss.isFinite else { return }
                _ = try lane.body.inputGradient(lane.logitsGradient)
            } catch {
                lane.error = error
                self.meeting.abandon()
            }
        }
        guard ran else { return nil }
        try rethrowLaneError()
        // A loss that is not finite makes no update: the parameters' gradients are left alone.
        if loss.isFinite { addParameterGradients(batch) }
        return loss / Double(batch.batch)
    }

    /// Adds the first `count` lanes' sample losses to `loss` in sample order, as one pass adds
    /// them.
    private func addLosses(ofLanes count: Int, to loss: inout Double) {
        for lane in lanes.prefix(count) {
            for sampleLoss in lane.sampleLosses { loss += sampleLoss }
        }
    }

    /// How many lanes share `piece`: one per thread, but no more than its samples.
    private func laneCount(_ piece: SamplePiece) -> Int { min(lanes.count, piece.count) }

    /// Lane `lane`'s share of `piece`.
    private func share(_ lane: Int, of piece: SamplePiece) -> SamplePiece {
        let laneCount = laneCount(piece)
        let first = piece.first + piece.count * lane / laneCount
        return SamplePiece(first: first, count: piece.first + piece.count * (lane + 1) / laneCount - first, batch: piece.batch)
    }

    /// Runs `body` for each lane with its share of `piece`, each lane on its own thread (work a
    /// lane hands to `Parallelism` runs on that thread, because the pool is busy); rethrows the
    /// first lane's error.
    private func inLanes(_ piece: SamplePiece, _ body: (Lane, SamplePiece) throws -> Void) throws {
        Parallelism.forEach(laneCount(piece), cost: Parallelism.minimumParallelCost) { lanes in
            for index in lanes {
                do {
                    try body(self.lanes[index], self.share(index, of: piece))
                } catch {
                    self.lanes[index].error = error
                }
            }
        }
        try rethrowLaneError()
    }

    /// Throws the first lane's error, if any (a lane that failed first, rather than one that
    /// stopped waiting for it), and clears them all.
    private func rethrowLaneError() throws {
        guard lanes.contains(where: { $0.error != nil }) else { return }
        let errors = lanes.compactMap(\.error)
        for lane in lanes { lane.error = nil }
        if let error = errors.first(where: { !($0 is LaneMeeting.Abandoned) }) ?? errors.first { throw error }
    }

    /// Adds the lanes' shares of `piece` to each parameter's gradient, in sample order. Each
    /// layer's sums go on one thread with no hand-offs inside (so the split does not change a
    /// bit); the layers are split between the threads in order, at about equal multiply-adds.
    private func addParameterGradients(_ piece: SamplePiece) {
        let costs = parameterLayers.map { $0.layer.parameterGradientCost(from: $0.lanes[0]) }
        let total = costs.reduce(0, +), parts = min(Execution.current.threads, parameterLayers.count)
        // Part p starts at the first layer whose running cost reaches p/parts of the total.
        var starts = [0], running = 0
        for (index, cost) in costs.enumerated() {
            if starts.count < parts, index > 0, running * parts >= total * starts.count { starts.append(index) }
            running += cost
        }
        while starts.count <= parts { starts.append(parameterLayers.count) }
        Parallelism.forEach(parts, cost: Parallelism.minimumParallelCost) { parts in
            for part in parts {
                for index in starts[part]..<starts[part + 1] {
                    let entry = self.parameterLayers[index]
                    for lane in 0..<self.laneCount(piece) {
                        entry.layer.addParameterGradients(from: entry.lanes[lane], piece: self.share(lane, of: piece))
                    }
                }
            }
        }
    }
}
