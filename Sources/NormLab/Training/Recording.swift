/// What a run records beyond its final accuracy, on request (`"record"` in an experiment file,
/// `--record` for `train`). With nothing requested a run does no extra work and its record has
/// none of these keys.
public enum Recording: String, CaseIterable, Codable, Comparable, Sendable {
    /// `curve`: per epoch, the mean training loss, and the accuracy in inference mode on the
    /// first 2,000 training images and on the test set.
    case curve
    /// `final_train_accuracy` (inference mode, the whole training subset) and
    /// `generalization_gap` (that minus the test accuracy).
    case trainAccuracy = "train_accuracy"
    /// `first_step_gradient_norms` and, per epoch, `gradient_norms`: ‖dL/dW‖₂ of each
    /// convolution in the network's layer order (a residual block's branch before its
    /// shortcut), for the batch's mean cross-entropy, before weight decay and momentum.
    case gradientNorms = "gradient_norms"
    /// `inference_images_per_second`: the test set's images over the wall time of the final
    /// evaluation (inference mode, batches of 500, on the run's threads).
    case inferenceSpeed = "inference_speed"
    /// `activation_drift` (`ActivationDrift`): each norm slot's per-channel mean and variance on
    /// a probe of 500 training images before training and after each epoch, and their change.
    case activationDrift = "activation_drift"
    /// `shifted_accuracy`: the test accuracy on each shifted test set (`InputShift`); with
    /// running statistics, also `shifted_accuracy_reestimated`: after re-estimating them on
    /// the first 2,000 shifted test images (as PreciseBN, batches of 200, no labels).
    case shiftedAccuracy = "shifted_accuracy"
    /// `batch_dependence` (`BatchDependence`): how much the trained network's training-mode
    /// output for a test image varies with the batch mates beside it, at batch 8 and 32.
    case batchDependence = "batch_dependence"

    public static func < (a: Recording, b: Recording) -> Bool { a.rawValue < b.rawValue }

    /// The training images a curve's training accuracy is measured on.
    public static let curveTrainingImages = 2_000
    /// The shifted test images running statistics are re-estimated on, and the batch size.
    public static let reestimationImages = 2_000, reestimationBatchSize = 200

    /// The recordings named in a comma-separated list (`curve,gradient_norms`).
    /// - Throws: `TrainingError.invalidSetting` for a name the lab does not record.
    public static func parse(_ list: String) throws -> Set<Recording> {
        Set(try list.split(separator: ",").map { name in
            guard let recording = Recording(rawValue: String(name)) else {
                throw TrainingError.invalidSetting(
                    "\"\(name)\" is not a recording; the lab records \(allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return recording
        })
    }
}

/// One epoch's point of a learning curve.
public struct CurvePoint: Codable, Equatable, Sendable {
    /// 1 for the first epoch.
    public var epoch: Int
    /// The mean training loss over the epoch's steps.
    public var trainLoss: Double
    /// Inference mode, the first `Recording.curveTrainingImages` training images.
    public var trainAccuracy: Double
    public var testAccuracy: Double

    enum CodingKeys: String, CodingKey {
        case epoch, trainLoss = "train_loss", trainAccuracy = "train_accuracy", testAccuracy = "test_accuracy"
    }
}

/// What a run recorded on request; each is nil unless requested (and, for what needs a trained
/// network, unless the run finished without diverging).
public struct TrainingRecordings: Codable, Equatable, Sendable {
    public var curve: [CurvePoint]?
    public var finalTrainAccuracy: Double?
    public var generalizationGap: Double?
    /// Per convolution, at the first training step; nil where the norm is not a finite number.
    public var firstStepGradientNorms: [Double?]?
    /// Per epoch, per convolution: the mean over the epoch's steps.
    public var gradientNorms: [[Double?]]?
    public var inferenceImagesPerSecond: Double?
    public var activationDrift: ActivationDrift?
    /// Family → level → test accuracy: `{"contrast": {"0.5": …}, …}`.
    public var shiftedAccuracy: [String: [String: Double]]?
    /// The same, after re-estimating the running statistics on each shifted test set.
    public var shiftedAccuracyReestimated: [String: [String: Double]]?
    /// Batch size ("8") → the spread of a sample's training-mode output over its batch mates.
    public var batchDependence: [String: BatchDependence]?

    enum CodingKeys: String, CodingKey {
        case curve, finalTrainAccuracy = "final_train_accuracy", generalizationGap = "generalization_gap"
        case firstStepGradientNorms = "first_step_gradient_norms", gradientNorms = "gradient_norms"
        case inferenceImagesPerSecond = "inference_images_per_second", activationDrift = "activation_drift"
        case shiftedAccuracy = "shifted_accuracy", shiftedAccuracyReestimated = "shifted_accuracy_reestimated"
        case batchDependence = "batch_dependence"
    }

    public init() {}
}

/// Makes a run's recordings as the trainer calls it: after each step's gradients, at each
/// epoch's end, and once trained.
final class Recorder {
    private let requested: Set<Recording>
    private let model: any Model
    private let train: Dataset, curveImages: Dataset, probeImages: Dataset, test: Dataset
    private let shifts: [InputShift]
    private let convolutions: [Parameter]
    private var epochGradientNorms: [Double]
    private var epochSteps = 0
    private(set) var recordings = TrainingRecordings()
    /// The time spent recording during training.
    private(set) var seconds = 0.0
    private let clock = ContinuousClock()

    /// Before training: the activation probe's first look.
    init(
        _ requested: Set<Recording>, model: any Model, train: Dataset, test: Dataset, shifts: [InputShift] = InputShift.defaults
    ) throws {
        let start = clock.now
        self.requested = requested
        (self.model, self.train, self.test, self.shifts) = (model, train, test, shifts)
        curveImages = requested.contains(.curve) ? train.prefix(Recording.curveTrainingImages) : train.prefix(0)
        probeImages = requested.contains(.activationDrift) ? train.prefix(ActivationDrift.probeImages) : train.prefix(0)
        convolutions = requested.contains(.gradientNorms) ? model.convolutionWeights : []
        epochGradientNorms = [Double](repeating: 0, count: convolutions.count)
        if requested.contains(.curve) { recordings.curve = [] }
        if requested.contains(.gradientNorms) { recordings.gradientNorms = [] }
        if requested.contains(.activationDrift) {
            recordings.activationDrift = ActivationDrift()
            recordings.activationDrift?.append(try ActivationProbe.statistics(of: model, on: probeImages))
        }
        seconds += (clock.now - start).inSeconds
    }

    /// After a step's gradients are computed and before the update uses them.
    func gradientsComputed() {
        guard !convolutions.isEmpty else { return }
        let norms = convolutions.map { Self.norm($0.gradient) }
        if recordings.firstStepGradientNorms == nil { recordings.firstStepGradientNorms = norms.map(Self.finite) }
        for (index, norm) in norms.enumerated() { epochGradientNorms[index] += norm }
        epochSteps += 1
    }

    /// At the end of a completed epoch (1-based), with its mean training loss.
    func epochEnded(_ epoch: Int, meanLoss: Double) throws {
        let start = clock.now
        defer { seconds += (clock.now - start).inSeconds }
        if requested.contains(.curve) {
            recordings.curve?.append(CurvePoint(
                epoch: epoch, trainLoss: meanLoss, trainAccuracy: try Trainer.accuracy(of: model, on: curveImages),
                testAccuracy: try Trainer.accuracy(of: model, on: test)))
        }
        if requested.contains(.activationDrift) {
            recordings.activationDrift?.append(try ActivationProbe.statistics(of: model, on: probeImages))
        }
        if !convolutions.isEmpty {
            recordings.gradientNorms?.append(epochGradientNorms.map { Self.finite($0 / Double(max(1, epochSteps))) })
            epochGradientNorms = epochGradientNorms.map { _ in 0 }
            epochSteps = 0
        }
    }

    /// Once trained, with the test accuracy (nil when the run diverged) and the seconds its
    /// evaluation took.
    func trainingEnded(testAccuracy: Double?, evaluationSeconds: Double) throws {
        if requested.contains(.inferenceSpeed), testAccuracy != nil, evaluationSeconds > 0 {
            recordings.inferenceImagesPerSecond = Double(test.count) / evaluationSeconds
        }
        guard let testAccuracy else { return }
        if requested.contains(.trainAccuracy) {
            let trainAccuracy = try Trainer.accuracy(of: model, on: train)
            (recordings.finalTrainAccuracy, recordings.generalizationGap) = (trainAccuracy, trainAccuracy - testAccuracy)
        }
        if requested.contains(.shiftedAccuracy) { try evaluateShifts() }
        if requested.contains(.batchDependence) {
            recordings.batchDependence = try BatchDependence.measure(model, train: train, test: test)
        }
    }

    /// The accuracy on each shifted test set; with running statistics, also after re-estimating
    /// them on it, each time from the trained network's own (restored afterwards).
    private func evaluateShifts() throws {
        let shifted = shifts.map { ($0, $0.apply(to: test)) }
        recordings.shiftedAccuracy = InputShift.byFamily(try shifted.map { ($0, try Trainer.accuracy(of: model, on: $1)) })
        guard PreciseBN.applies(to: model) else { return }
        let stateful = model.normalizers.compactMap { $0 as? any StatefulNormalizer }
        let trained = stateful.map(\.state)
        defer {
            for (normalizer, state) in zip(stateful, trained) { try? normalizer.setState(state) }
        }
        recordings.shiftedAccuracyReestimated = InputShift.byFamily(try shifted.map { shift, images in
            try PreciseBN.recompute(
                model, onFirst: Recording.reestimationImages, of: images, batchSize: Recording.reestimationBatchSize)
            return (shift, try Trainer.accuracy(of: model, on: images))
        })
    }

    /// `value`, or nil for one that JSON cannot hold.
    static func finite(_ value: Double) -> Double? { value.isFinite ? value : nil }

    /// The L2 norm, summed in Double.
    static func norm(_ values: [Float]) -> Double {
        values.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    }
}
