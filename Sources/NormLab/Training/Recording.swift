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

    public static func < (a: Recording, b: Recording) -> Bool { a.rawValue < b.rawValue }

    /// The training images a curve's training accuracy is measured on.
    public static let curveTrainingImages = 2_000

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

    enum CodingKeys: String, CodingKey {
        case curve, finalTrainAccuracy = "final_train_accuracy", generalizationGap = "generalization_gap"
        case firstStepGradientNorms = "first_step_gradient_norms", gradientNorms = "gradient_norms"
        case inferenceImagesPerSecond = "inference_images_per_second"
    }

    public init() {}
}

/// Makes a run's recordings as the trainer calls it: after each step's gradients, at each
/// epoch's end, and once trained.
final class Recorder {
    private let requested: Set<Recording>
    private let model: any Model
    private let train: Dataset, curveImages: Dataset, test: Dataset
    private let convolutions: [Parameter]
    private var epochGradientNorms: [Double]
    private var epochSteps = 0
    private(set) var recordings = TrainingRecordings()
    /// The time spent recording during training.
    private(set) var seconds = 0.0
    private let clock = ContinuousClock()

    init(_ requested: Set<Recording>, model: any Model, train: Dataset, test: Dataset) {
        self.requested = requested
        (self.model, self.train, self.test) = (model, train, test)
        curveImages = requested.contains(.curve) ? train.prefix(Recording.curveTrainingImages) : train.prefix(0)
        convolutions = requested.contains(.gradientNorms) ? model.convolutionWeights : []
        epochGradientNorms = [Double](repeating: 0, count: convolutions.count)
        if requested.contains(.curve) { recordings.curve = [] }
        if requested.contains(.gradientNorms) { recordings.gradientNorms = [] }
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
        defer { seconds += Sweep.seconds(clock.now - start) }
        if requested.contains(.curve) {
            recordings.curve?.append(CurvePoint(
                epoch: epoch, trainLoss: meanLoss, trainAccuracy: try Trainer.accuracy(of: model, on: curveImages),
                testAccuracy: try Trainer.accuracy(of: model, on: test)))
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
        guard requested.contains(.trainAccuracy), let testAccuracy else { return }
        let trainAccuracy = try Trainer.accuracy(of: model, on: train)
        (recordings.finalTrainAccuracy, recordings.generalizationGap) = (trainAccuracy, trainAccuracy - testAccuracy)
    }

    /// `value`, or nil for one that JSON cannot hold.
    static func finite(_ value: Double) -> Double? { value.isFinite ? value : nil }

    /// The L2 norm, summed in Double.
    static func norm(_ values: [Float]) -> Double {
        values.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    }
}
