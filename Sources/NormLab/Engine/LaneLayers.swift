/// How each layer runs in the lanes of a training step (`LaneLayer`, `NetworkLanes`).

/// A layer with no trainable values runs in lanes as a fresh copy of itself.
protocol StatelessLaneLayer: LaneLayer {
    init()
}

extension StatelessLaneLayer {
    func makeLane(_ context: LaneContext) throws -> (any Layer)? { Self() }
    func prepare(_ lane: any Layer) {}
    func inputGradient(_ outputGradient: Tensor) throws -> Tensor { try backward(outputGradient) }
    func addParameterGradients(from lane: any Layer, piece: SamplePiece) {}
}

extension MaxPool2D: StatelessLaneLayer {}
extension GlobalAveragePool: StatelessLaneLayer {}

extension ReLU: LaneLayer {
    func makeLane(_ context: LaneContext) throws -> (any Layer)? {
        let lane = ReLU()
        lane.inputIsRectified = inputIsRectified
        return lane
    }
    func prepare(_ lane: any Layer) {}
    func inputGradient(_ outputGradient: Tensor) throws -> Tensor { try backward(outputGradient) }
    func addParameterGradients(from lane: any Layer, piece: SamplePiece) {}
}

/// Each layer in turn; the copy is made only when every layer can run in lanes.
extension Sequential: LaneLayer {
    func makeLane(_ context: LaneContext) throws -> (any Layer)? {
        var lanes: [any Layer] = []
        for layer in layers {
            guard let layer = layer as? any LaneLayer, let lane = try layer.makeLane(context) else { return nil }
            lanes.append(lane)
        }
        return Sequential(lanes)
    }

    func prepare(_ lane: any Layer) {
        for (layer, laneLayer) in zip(layers, (lane as! Sequential).layers) { (layer as! any LaneLayer).prepare(laneLayer) }
    }

    func inputGradient(_ outputGradient: Tensor) throws -> Tensor {
        var gradient = outputGradient
        for layer in layers.reversed() { gradient = try (layer as! any LaneLayer).inputGradient(gradient) }
        return gradient
    }

    func addParameterGradients(from lane: any Layer, piece: SamplePiece) {
        for (layer, laneLayer) in zip(layers, (lane as! Sequential).layers) {
            (layer as! any LaneLayer).addParameterGradients(from: laneLayer, piece: piece)
        }
    }
}

extension Conv2D: LaneLayer {
    func makeLane(_ context: LaneContext) throws -> (any Layer)? {
        let lane = Conv2D(sharingParametersOf: self)
        lane.rectifiesOutput = rectifiesOutput
        lane.computesInputGradient = computesInputGradient
        return lane
    }

    func prepare(_ lane: any Layer) {}

    func inputGradient(_ outputGradient: Tensor) throws -> Tensor {
        keptOutputGradient = outputGradient
        guard computesInputGradient else { return Tensor(shape: [0]) }
        kernel.inputGradient(outputGradient, weight: computedWeight, into: &layerInputGradient)
        return layerInputGradient
    }

    func addParameterGradients(from lane: any Layer, piece: SamplePiece) {
        let lane = lane as! Conv2D
        kernel.parameterGradients(lane.keptOutputGradient, piece: piece, source: lane.kernel, weight: computedWeight, bias: bias)
        if piece.isLast { finishWeightGradient() }
    }

    /// The weight gradient's product: K · Cout · (the share's output positions).
    func parameterGradientCost(from lane: any Layer) -> Int {
        weight.value.count * (lane as! Conv2D).keptOutputGradient.count / outputChannels
    }
}

extension Linear: LaneLayer {
    func makeLane(_ context: LaneContext) throws -> (any Layer)? { Linear(sharingParametersOf: self) }

    func prepare(_ lane: any Layer) {}

    func inputGradient(_ outputGradient: Tensor) throws -> Tensor {
        keptOutputGradient = outputGradient
        inputGradient(outputGradient, into: &layerInputGradient)
        return layerInputGradient
    }

    func addParameterGradients(from lane: any Layer, piece: SamplePiece) {
        let lane = lane as! Linear
        LinearGradients.add(
            lane.keptOutputGradient, lane.input, weightGradient: &weight.gradient, biasGradient: &bias.gradient,
            startingFromZero: piece.isFirst)
    }

    func parameterGradientCost(from lane: any Layer) -> Int {
        weight.value.count * max(1, (lane as! Linear).keptOutputGradient.shape[0])
    }
}

extension Scale: LaneLayer {
    func makeLane(_ context: LaneContext) throws -> (any Layer)? { Scale(sharingParametersOf: self) }
    func prepare(_ lane: any Layer) {}

    /// The shares' Σ dy·x go on in sample order, in one Double: the same sum as one pass.
    func addParameterGradients(from lane: any Layer, piece: SamplePiece) {
        let lane = lane as! Scale
        if piece.isFirst { gradientTotal = 0 }
        lane.addProducts(lane.keptOutputGradient!, to: &gradientTotal)
        lane.input = Tensor(shape: [0])
        if piece.isLast { scale.gradient[0] = Float(gradientTotal) }
    }
}

extension Residual: LaneLayer {
    func makeLane(_ context: LaneContext) throws -> (any Layer)? {
        guard let body = try body.makeLane(context) as? Sequential else { return nil }
        guard let shortcut else { return Residual(body: body) }
        guard let laneShortcut = try shortcut.makeLane(context) as? Sequential else { return nil }
        return Residual(body: body, shortcut: laneShortcut)
    }

    func prepare(_ lane: any Layer) {
        let lane = lane as! Residual
        body.prepare(lane.body)
        if let shortcut, let laneShortcut = lane.shortcut { shortcut.prepare(laneShortcut) }
    }

    /// `backward` through `inputGradient` of the branches.
    func inputGradient(_ outputGradient: Tensor) throws -> Tensor {
        try backward(outputGradient, through: { try $0.inputGradient($1) })
    }

    func addParameterGradients(from lane: any Layer, piece: SamplePiece) {
        let lane = lane as! Residual
        body.addParameterGradients(from: lane.body, piece: piece)
        if let shortcut, let laneShortcut = lane.shortcut { shortcut.addParameterGradients(from: laneShortcut, piece: piece) }
    }
}

extension NormalizerLayer: LaneLayer {
    /// A slot whose normalizer's statistics are each sample's own runs in lanes with a copy of
    /// it that shares its parameters; one whose statistics are the whole batch's, in lanes that
    /// share them (`BatchStatisticsLane`). A normalizer with only the plain protocol keeps the
    /// whole batch together.
    func makeLane(_ context: LaneContext) throws -> (any Layer)? {
        if let batchStatistics = normalizer as? any BatchStatisticsNormalizer {
            let lane = BatchStatisticsLane(sharing: context.sharedStatistics(of: batchStatistics), context: context)
            lane.rectifiesOutput = rectifiesOutput
            return lane
        }
        guard let perSample = normalizer as? any PerSampleNormalizer else { return nil }
        let lane = NormalizerLayer(perSample.sharingParameters())
        lane.rectifiesOutput = rectifiesOutput
        return lane
    }

    /// Nothing to copy: lanes share the parameters themselves.
    func prepare(_ lane: any Layer) {}

    /// A per-sample lane leaves the shared parameters' gradients to `addParameterGradients`.
    func inputGradient(_ outputGradient: Tensor) throws -> Tensor {
        guard let perSample = normalizer as? any PerSampleNormalizer else { return try backward(outputGradient) }
        try perSample.inputGradient(outputGradient, into: &inputGradient)
        return inputGradient
    }

    /// Per-sample lanes' terms add up here, from zero at a batch's first piece; lanes with shared
    /// statistics set the normalizer's gradients as they meet.
    func addParameterGradients(from lane: any Layer, piece: SamplePiece) {
        guard normalizer is any PerSampleNormalizer,
              let lane = (lane as? NormalizerLayer)?.normalizer as? any PerSampleNormalizer else { return }
        let parameters = normalizer.parameters
        if piece.isFirst {
            for parameter in parameters { parameter.gradient.withUnsafeMutableBufferPointer { $0.update(repeating: 0) } }
        }
        lane.addParameterGradients(to: parameters)
    }
}
