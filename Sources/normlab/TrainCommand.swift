import Foundation
import NormLab

/// `normlab train`: one training run, with progress and a final report.
enum TrainCommand {
    /// The normalizers' own options (`--groups`), from their registrations.
    static var settingOptions: [(registration: NormalizerRegistration, setting: NormalizerSetting)] {
        NormalizerRegistry.all.flatMap { registration in
            registration.settings(in: .commandLine).map { (registration, $0) }
        }
    }

    static var usage: String {
        let options = settingOptions.map { "[\($0.setting.option) VALUE]" }.joined(separator: " ")
        var text = """
            usage: normlab train [--model NAME] [--norm NAME] [--batch-size N] [--epochs N] [--lr RATE]
                                 [--seed N] [--placement before|after] [--zero-init-residual]
                                 [--weight-standardization] [--init-scale S] [--classes-per-batch K]
                                 [--record LIST]
                                 [--weight-decay W] [--data DIR] [--train-size N] [--threads N] [--json]
                                 \(options)
              --model       the network (default smallcnn):

            """
        for registration in ModelRegistry.all {
            text += "                  \(registration.name.padding(toLength: 12, withPad: " ", startingAt: 0)) \(registration.summary)\n"
        }
        text += "  --norm        the normalizer (default batch):\n"
        for registration in NormalizerRegistry.all {
            text += "                  \(registration.kind.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)) \(registration.summary)\n"
            // Its settings in experiment files, with their defaults.
            for setting in registration.settings(in: .experiment) {
                let value = setting.defaultValue.map { " (default \(jsonText($0)))" } ?? ""
                text += "                               \"\(setting.key)\"\(value): \(setting.help)\n"
            }
        }
        for (registration, setting) in settingOptions {
            text += "  \(setting.option.padding(toLength: 13, withPad: " ", startingAt: 0)) \(registration.kind.rawValue): \(setting.help)\n"
        }
        text += """
              --lr          base learning rate at batch 32, scaled by batch/32 (default 0.05)
              --data        a folder of Fashion-MNIST IDX files or of CIFAR-10's binary files
                            (default: the embedded Fashion-MNIST subset)
              --zero-init-residual  resnet-D: each residual branch starts at zero (SkipInit with --norm none)
              --weight-standardization  every convolution standardizes its weights over its fan-in (Qiao et al. 2019)
              --init-scale  a factor on the Kaiming standard deviation of every initial weight (default 1)
              --classes-per-batch  non-i.i.d. batches of about K classes each: the epoch's permutation sorted by
                            label, cut into chunks of batch/K samples, the chunks shuffled (K divides the batch size)
              --record      what to record beyond the accuracy, comma-separated (with --json, as record keys):
                            curve (per epoch: training loss, accuracy on 2,000 training images and the test set),
                            train_accuracy (final_train_accuracy, generalization_gap),
                            gradient_norms (first_step_gradient_norms, per-epoch gradient_norms of each convolution),
                            inference_speed (inference_images_per_second of the final test evaluation),
                            activation_drift (each norm slot's per-channel mean and variance on 500 training images
                            before training and after each epoch, and their change in units of the channel's std),
                            shifted_accuracy (accuracy on shifted test sets: contrast 0.5, 0.25, brightness 0.2, 0.4,
                            noise 0.1, 0.2; with running statistics also re-estimated on each shifted set),
                            batch_dependence (the spread of 10 test images' training-mode logits over 100 random
                            sets of batch mates, at batch 8 and 32)
            """
        return text
    }

    static func run(_ arguments: [String]) throws -> Int32 {
        var options = Options(arguments)
        if options.flag("--help") {
            print(usage)
            return 0
        }
        let json = options.flag("--json")
        var model = try ModelSettings(
            name: options.value("--model") ?? ModelSettings.smallCNN.name, zeroInitResidual: options.flag("--zero-init-residual"),
            weightStandardization: options.flag("--weight-standardization"))
        model.initScale = try options.float("--init-scale") ?? 1
        let kind = try normalizerKind(named: options.value("--norm") ?? "batch")
        var normalizer = NormalizerSettings(kind: kind)
        var seen = Set<String>()
        for (_, setting) in settingOptions where seen.insert(setting.option).inserted {
            guard let text = try options.value(setting.option) else { continue }
            guard let setting = kind.registration.settings(in: .commandLine).first(where: { $0.option == setting.option }) else {
                let owners = settingOptions.filter { $0.setting.option == setting.option }.map(\.registration.kind.rawValue)
                throw UsageError("\(setting.option) is a setting of \(owners.joined(separator: ", ")), not of \(kind.rawValue)")
            }
            do {
                try normalizer.set(setting.key, try setting.parse(text))
            } catch NormalizerError.invalidSetting(_, let reason) {
                throw UsageError("\(setting.option): \(reason)")
            }
        }
        let placementName = try options.value("--placement") ?? "before"
        guard let placement = NormalizerPlacement(rawValue: placementName) else {
            throw UsageError("--placement is 'before' or 'after', got '\(placementName)'")
        }
        let batchSize = try options.integer("--batch-size", in: 1...65_536) ?? 32
        let epochs = try options.integer("--epochs", in: 1...10_000) ?? 3
        let rate = try options.float("--lr") ?? 0.05
        let weightDecay = try options.float("--weight-decay") ?? 5e-4
        let seed = try options.integer("--seed", in: 0...Int.max) ?? 0
        let dataDirectory = try options.value("--data")
        let trainSize = try options.integer("--train-size", in: 1...10_000_000)
        let recordings: Set<Recording>
        do {
            recordings = try Recording.parse(try options.value("--record") ?? "")
        } catch {
            throw UsageError("--record: \(error)")
        }
        let classesPerBatch = try options.integer("--classes-per-batch", in: 1...65_536)
        let execution = Execution(threads: try options.integer("--threads", in: 1...256) ?? Machine.availableProcessors)
        let extra = try options.positionals()
        guard extra.isEmpty else { throw UsageError("unexpected argument '\(extra[0])'\n\(usage)") }

        var settings = TrainingSettings(
            model: model, normalizer: normalizer, placement: placement, batchSize: batchSize, epochs: epochs,
            baseLearningRate: rate, weightDecay: weightDecay, seed: UInt64(seed))
        settings.recordings = recordings
        settings.classesPerBatch = classesPerBatch
        let directory = try dataDirectory ?? FashionMNIST.embeddedDirectory()
        let data = try Dataset.load(directory: directory, trainSize: trainSize)
        try settings.validate(trainSize: data.train.count)
        let display = ProgressDisplay()
        if !json {
            print("training \(model.name) on \(data.train.imageShape) images with \(kind.rawValue) norm (\(placement.rawValue) ReLU), batch \(batchSize), \(epochs) epochs, lr \(rate) × \(batchSize)/32 = \(settings.learningRate), seed \(seed), \(data.train.count) training images, \(execution.threads) threads")
        }
        let outcome = try execution.run {
            try Trainer.train(settings, train: data.train, test: data.test) { progress in
                guard !json else { return }
                display.show(String(
                    format: "epoch %d/%d  step %d/%d  loss %.4f  %.0f images/s  %@ left",
                    progress.epoch, progress.epochs, progress.step, progress.totalSteps, progress.loss,
                    progress.imagesPerSecond, formatClock(progress.secondsRemaining)))
            }
        }
        display.finish()
        if json {
            var object: [String: Any] = [
                "model": model.name, "normalizer": kind.rawValue, "placement": placement.rawValue, "batch_size": batchSize,
                "epochs": epochs, "base_lr": decimal(rate), "lr": decimal(settings.learningRate),
                "weight_decay": decimal(weightDecay), "momentum": decimal(settings.momentum), "seed": seed,
                "train_size": data.train.count, "test_size": data.test.count, "data": directory,
                "threads": execution.threads, "epsilon": decimal(normalizer.epsilon),
                "final_loss": outcome.finalLoss.isFinite ? outcome.finalLoss : NSNull(),
                "diverged": outcome.diverged, "seconds": outcome.seconds,
                "images_per_second": outcome.imagesPerSecond, "steps": outcome.steps,
                "test_accuracy": outcome.testAccuracy.map { $0 as Any } ?? NSNull(),
            ]
            for setting in kind.registration.settings(in: .record) {
                let value = normalizer[setting.key] ?? setting.layerDefault?(model.normalizedWidths[0])
                if let value, let json = setting.jsonObject(value) { object[setting.recordKey] = json }
            }
            if model.hasShortcuts { object["zero_init_residual"] = model.zeroInitResidual }
            if model.weightStandardization { object["weight_standardization"] = true }
            if model.initScale != 1 { object["init_scale"] = decimal(model.initScale) }
            if let classesPerBatch { object["classes_per_batch"] = classesPerBatch }
            if let step = outcome.divergedAtStep { object["diverged_at_step"] = step }
            if !recordings.isEmpty {
                object["record"] = recordings.sorted().map(\.rawValue)
                let recorded = try JSONSerialization.jsonObject(with: JSONEncoder().encode(outcome.recordings)) as? [String: Any]
                object.merge(recorded ?? [:]) { current, _ in current }
            }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else if outcome.diverged {
            print("diverged: the loss became NaN or infinite at step \(outcome.divergedAtStep ?? 0) of \(outcome.steps); try a lower --lr")
            print(String(format: "training time %.1f s", outcome.seconds))
        } else {
            print(String(format: "test accuracy %.2f%%  (final training loss %.4f)", 100 * (outcome.testAccuracy ?? 0), outcome.finalLoss))
            print(String(format: "training time %.1f s, %.0f images/s", outcome.seconds, outcome.imagesPerSecond))
        }
        if !json { printRecordings(outcome.recordings) }
        return outcome.diverged ? 3 : 0
    }
}

/// What the run recorded on request, as lines of text.
private func printRecordings(_ recorded: TrainingRecordings) {
    for point in recorded.curve ?? [] {
        print(String(
            format: "epoch %d: training loss %.4f, accuracy %.2f%% on %d training images, %.2f%% on the test set", point.epoch,
            point.trainLoss, 100 * point.trainAccuracy, Recording.curveTrainingImages, 100 * point.testAccuracy))
    }
    if let train = recorded.finalTrainAccuracy, let gap = recorded.generalizationGap {
        print(String(format: "training accuracy %.2f%%, generalization gap %.2f points", 100 * train, 100 * gap))
    }
    func norms(_ values: [Double?]) -> String {
        values.map { $0.map { String(format: "%.3g", $0) } ?? "—" }.joined(separator: " ")
    }
    if let speed = recorded.inferenceImagesPerSecond { print(String(format: "inference %.0f images/s on the test set", speed)) }
    if let first = recorded.firstStepGradientNorms { print("gradient norms per convolution, first step: \(norms(first))") }
    for (epoch, values) in (recorded.gradientNorms ?? []).enumerated() {
        print("gradient norms per convolution, epoch \(epoch + 1) mean: \(norms(values))")
    }
    if let drift = recorded.activationDrift {
        for (epoch, (means, stds)) in zip(drift.meanChange, drift.stdChange).enumerated() {
            print("activation drift per norm slot, epoch \(epoch + 1): mean \(norms(means)); std \(norms(stds)) (channel stds)")
        }
    }
    for (batch, dependence) in (recorded.batchDependence ?? [:]).sorted(by: { Int($0.key) ?? 0 < Int($1.key) ?? 0 }) {
        print(String(
            format: "batch mates, batch %@: logit std %.4g, prediction changed in %.1f%% of draws", batch, dependence.logitStd,
            100 * dependence.predictionChanges))
    }
    for (name, table) in [("", recorded.shiftedAccuracy), (" (statistics re-estimated)", recorded.shiftedAccuracyReestimated)] {
        guard let table else { continue }
        let cells = InputShift.defaultsOrder(of: table).map { String(format: "%@ %@ %.2f%%", $0, $1, 100 * $2) }
        print("shifted test sets\(name): " + cells.joined(separator: ", "))
    }
}

/// A setting's value as JSON text: `0.1`, `{"dmax":5,…}`.
private func jsonText(_ value: any SettingValue) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
}

/// One updating status line on a terminal; nothing when output goes elsewhere (the caller
/// prints its own plain lines).
final class ProgressDisplay {
    let isTerminal = isatty(STDERR_FILENO) != 0
    private var shown = false

    func show(_ line: String) {
        guard isTerminal else { return }
        FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        shown = true
    }

    func finish() {
        if shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        shown = false
    }
}

/// 75 → "1:15", 4000 → "1:06:40".
func formatClock(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "?" }
    let total = Int(seconds.rounded())
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60)
    return h > 0 ? String(format: "%d:%02d:%02d", h, m, s) : String(format: "%d:%02d", m, s)
}
