import Foundation
import NormLab

/// `normlab bench kernels`, `normlab bench train` and `normlab bench inference`: time the
/// normalizers, training steps or inference passes and print a table or JSON lines.
enum BenchCommand {
    static let usage = """
        usage: normlab bench kernels|train|inference [--json] [--threads N] [--quick] [--model NAME] [--norm LIST] [--batch-sizes LIST] [--rounds N] [--whole-batch-columns] [--whole-batches] [--no-wide-tiles] [--weight-standardization]
          kernels takes --json, --threads and --quick; train all but --rounds; inference all but the last four.
          inference: images/s of inference-mode forward passes, by default for smallcnn and resnet-8, every normalizer, batch 1 and 256, batch norm, batch renorm and ghost batch norm also folded into the convolutions; the variants timed in --rounds rounds (default 9) of alternating order, each variant's median
        """

    static func run(_ arguments: [String]) throws -> Int32 {
        var options = Options(arguments)
        let json = options.flag("--json")
        let quick = options.flag("--quick")
        var execution = Execution()
        if let threads = try options.integer("--threads", in: 1...256) { execution.threads = threads }
        let kinds = try options.value("--norm").map(normalizerList)
        var model = try options.value("--model").map { try ModelSettings(name: $0) }
        let weightStandardization = options.flag("--weight-standardization")
        if weightStandardization { model = model ?? .smallCNN; model?.weightStandardization = true }
        let batchSizes = try options.value("--batch-sizes").map(batchSizeList)
        let rounds = try options.integer("--rounds", in: 1...1000)
        // The convolutions' im2col matrices for the whole batch at once, as before they went
        // in cache-sized chunks: the same numbers, to time what the chunks gain.
        let wholeBatchColumns = options.flag("--whole-batch-columns")
        if wholeBatchColumns { execution.chunksColumns = false }
        // Training steps over whole batches, as before they went through the network in pieces
        // of 16 samples and lanes: the same numbers, to time what those gain.
        let wholeBatches = options.flag("--whole-batches")
        if wholeBatches { execution.splitsBatches = false }
        // The matrix product's 256-bit tiles on a processor with AVX-512, to time what the
        // 512-bit ones gain (the same numbers).
        let noWideTiles = options.flag("--no-wide-tiles")
        if noWideTiles { execution.wideTiles = false }
        let positionals = try options.positionals()
        switch positionals {
        case ["kernels"] where kinds == nil && batchSizes == nil && model == nil && !wholeBatchColumns && !wholeBatches && !noWideTiles
            && !weightStandardization:
            return try execution.run { try kernels(json: json, minimumSeconds: quick ? 0.02 : 0.3) }
        case ["inference"] where !wholeBatchColumns && !wholeBatches && !noWideTiles && !weightStandardization:
            return try execution.run {
                try inference(
                    json: json, models: model.map { [$0] } ?? InferenceBenchmark.defaultModels.map { try ModelSettings(name: $0) },
                    kinds: kinds ?? InferenceBenchmark.defaultKinds, batchSizes: batchSizes ?? InferenceBenchmark.defaultBatchSizes,
                    rounds: rounds ?? (quick ? 2 : 9), imagesPerBlock: quick ? 32 : 512)
            }
        case ["train"] where rounds == nil:
            return try execution.run {
                try train(
                    json: json, minimumSeconds: quick ? 0.05 : 0.5, model: model ?? .smallCNN, kinds: kinds ?? NormalizerRegistry.kinds,
                    batchSizes: batchSizes ?? TrainingBenchmark.defaultBatchSizes)
            }
        default:
            throw UsageError(usage)
        }
    }

    /// "batch,group" → [.batch, .group].
    private static func normalizerList(_ text: String) throws -> [NormalizerKind] {
        guard !text.split(separator: ",").isEmpty else { throw UsageError("--norm needs at least one normalizer") }
        return try text.split(separator: ",").map { try normalizerKind(named: String($0)) }
    }

    /// "2,8" → [2, 8].
    private static func batchSizeList(_ text: String) throws -> [Int] {
        guard !text.split(separator: ",").isEmpty else { throw UsageError("--batch-sizes needs at least one batch size") }
        return try text.split(separator: ",").map { item in
            guard let size = Int(item), (1...4096).contains(size) else {
                throw UsageError("--batch-sizes takes whole numbers from 1 to 4096, separated by commas; got '\(item)'")
            }
            return size
        }
    }

    private static func train(
        json: Bool, minimumSeconds: Double, model: ModelSettings, kinds: [NormalizerKind], batchSizes: [Int]
    ) throws -> Int32 {
        let data = try FashionMNIST.load(directory: FashionMNIST.embeddedDirectory()).train
        let machine = Machine.current
        let execution = Execution.current
        if !json {
            printNow("\(model.name) training steps (forward, backward, SGD update), \(execution.threads) threads, "
                + "\(execution.wideTiles ? "512" : "256")-bit matrix tiles")
            printNow("on \(machine.summary)")
            printNow(pad("normalizer", 14) + pad("batch", 8) + "images/s")
        }
        try TrainingBenchmark.run(
            data: data, model: model, kinds: kinds, batchSizes: batchSizes, minimumSeconds: minimumSeconds
        ) { m in
            if json {
                let object: [String: Any] = [
                    "model": model.name, "normalizer": m.normalizer.rawValue, "batch_size": m.batchSize,
                    "weight_standardization": model.weightStandardization,
                    "images_per_second": m.imagesPerSecond, "threads": execution.threads,
                    "columns": execution.chunksColumns ? "chunked" : "whole_batch",
                    "steps": execution.splitsBatches ? "in_pieces" : "whole_batch",
                    "tiles": execution.wideTiles ? "512-bit" : "256-bit",
                    "cpu": machine.processor, "processors": machine.processorCount,
                ]
                let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                printNow(String(decoding: data, as: UTF8.self))
            } else {
                printNow(pad(m.normalizer.rawValue, 14) + pad("\(m.batchSize)", 8) + String(format: "%.0f", m.imagesPerSecond))
            }
        }
        return 0
    }

    /// A markdown table, one row per model, normalizer and folding, a column per batch size; or
    /// JSON lines.
    private static func inference(
        json: Bool, models: [ModelSettings], kinds: [NormalizerKind], batchSizes: [Int], rounds: Int, imagesPerBlock: Int
    ) throws -> Int32 {
        let data = try FashionMNIST.load(directory: FashionMNIST.embeddedDirectory()).test
        let machine = Machine.current
        let threads = Execution.current.threads
        if !json {
            printNow("Inference-mode forward passes, images/s (median of \(rounds) rounds, \(imagesPerBlock) images per block), \(threads) thread\(threads == 1 ? "" : "s"), on \(machine.summary).")
            printNow("")
        }
        var measurements: [InferenceBenchmark.Measurement] = []
        try InferenceBenchmark.run(
            data: data, models: models, kinds: kinds, batchSizes: batchSizes, rounds: rounds, imagesPerBlock: imagesPerBlock
        ) { m in
            guard json else { return measurements.append(m) }
            let object: [String: Any] = [
                "model": m.variant.model, "normalizer": m.variant.normalizer.rawValue, "folded": m.variant.folded,
                "batch_size": m.variant.batchSize, "images_per_second": m.imagesPerSecond,
                "relative_to_none": m.relativeToNone, "relative_range": [m.relativeRange.lowerBound, m.relativeRange.upperBound],
                "rounds": rounds, "threads": threads, "cpu": machine.processor, "processors": machine.processorCount,
            ]
            let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            printNow(String(decoding: data, as: UTF8.self))
        }
        if json { return 0 }
        func measurement(_ model: String, _ kind: NormalizerKind, folded: Bool, _ batchSize: Int) -> InferenceBenchmark.Measurement? {
            measurements.first {
                $0.variant == InferenceBenchmark.Variant(model: model, normalizer: kind, folded: folded, batchSize: batchSize)
            }
        }
        printNow("| model | normalizer | " + batchSizes.map { "batch \($0): images/s | ÷ none (range over rounds)" }.joined(separator: " | ") + " |")
        printNow("|---|---|" + String(repeating: "---|", count: 2 * batchSizes.count))
        for model in models.map(\.name) {
            for kind in kinds {
                for folded in [false, true] where measurement(model, kind, folded: folded, batchSizes[0]) != nil {
                    let cells = batchSizes.map { size -> String in
                        guard let m = measurement(model, kind, folded: folded, size) else { return "– | –" }
                        let relative = kind == .none ? "1" : String(format: "%.2f (%.2f–%.2f)", m.relativeToNone, m.relativeRange.lowerBound, m.relativeRange.upperBound)
                        return String(format: "%.0f | ", m.imagesPerSecond) + relative
                    }
                    printNow("| \(model) | \(kind.displayName + (folded ? ", folded" : "")) | " + cells.joined(separator: " | ") + " |")
                }
            }
        }
        return 0
    }

    private static func kernels(json: Bool, minimumSeconds: Double) throws -> Int32 {
        let machine = Machine.current
        if !json {
            printNow("normalizer kernels, \(Execution.current.threads) threads, median time per call")
            printNow("on \(machine.summary)")
            printNow(pad("normalizer", 14) + pad("shape", 16) + pad("phase", 19) + "time")
        }
        try KernelBenchmark.run(minimumSeconds: minimumSeconds) { m in
            let shape = m.shape.map(String.init).joined(separator: "x")
            if json {
                let object: [String: Any] = [
                    "normalizer": m.normalizer.rawValue, "shape": m.shape, "phase": m.phase,
                    "seconds": m.seconds, "threads": Execution.current.threads,
                    "cpu": machine.processor, "processors": machine.processorCount,
                ]
                let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                printNow(String(decoding: data, as: UTF8.self))
            } else {
                printNow(pad(m.normalizer.rawValue, 14) + pad(shape, 16) + pad(m.phase, 19) + formatDuration(m.seconds))
            }
        }
        return 0
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}

/// 12.3 µs, 4.56 ms, 1.23 s.
func formatDuration(_ seconds: Double) -> String {
    if seconds < 1e-3 { return String(format: "%.1f µs", seconds * 1e6) }
    if seconds < 1 { return String(format: "%.2f ms", seconds * 1e3) }
    return String(format: "%.2f s", seconds)
}
