import Foundation
import NormLab

/// `normlab`: the lab's command-line program. Each subcommand is a thin shell over the library.
let usage = """
    usage: normlab <command> [options]

    commands:
      verify FILE_OR_DIR...     check the normalizers against reference fixtures
      train [options]           train a model once (normlab train --help lists the models and normalizers)
      sweep EXPERIMENT.json [--out DIR] [--jobs J] [--threads N]
                                run an experiment's grid of trainings (resumable), write tables;
                                J trainings at once of N threads each (default: every processor)
      sweep EXPERIMENT.json --list
                                the grid's runs, numbered in the order tasks use
      sweep EXPERIMENT.json [--out DIR] (--task I | --tasks I,J,...) [--threads N]
                                run only these runs, each record to DIR/tasks/ (in a Slurm array
                                task, SLURM_ARRAY_TASK_ID names the run when --task is absent)
      merge OUT [EXPERIMENT.json] [--partial]
                                gather OUT/tasks into the results file in grid order, write tables
      slurm EXPERIMENT.json [--out DIR] [--max-parallel K] [--cpus-per-task C] [--time T] [--partition P]
                                write Slurm scripts: a job array of the grid's runs, then a merge
      report RESULTS.jsonl [--out DIR]
                                write the markdown table, CSV and SVG chart for a results file
      compare A.jsonl B.jsonl [--names A,B] [--notes FILE] [--out PAGE.md]
                                two results files cell by cell: means, difference, within the noise?
      bench kernels [--json] [--threads N] [--quick]
                                time each normalizer's forward, backward and inference passes
      bench train [--json] [--threads N] [--quick] [--model NAME] [--norm LIST] [--batch-sizes LIST]
                  [--whole-batch-columns] [--whole-batches] [--no-wide-tiles]
                                images/s of a model's training steps per normalizer and batch size
                                (LIST: comma-separated, e.g. --norm batch,group --batch-sizes 2,8;
                                --whole-batch-columns: convolutions without cache-sized chunks;
                                --whole-batches: steps without pieces and lanes;
                                --no-wide-tiles: 256-bit matrix tiles only)
      help                      show this text
    """

var arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first else {
    printError(usage)
    exit(2)
}
arguments.removeFirst()
// `train` has its own, longer help; the other commands' options are all in `usage`.
if command != "train" && (arguments.contains("--help") || arguments.contains("-h")) {
    print(usage)
    exit(0)
}

do {
    switch command {
    case "verify":
        exit(try VerifyCommand.run(arguments))
    case "train":
        exit(try TrainCommand.run(arguments))
    case "sweep":
        exit(try SweepCommand.run(arguments))
    case "merge":
        exit(try MergeCommand.run(arguments))
    case "slurm":
        exit(try SlurmCommand.run(arguments))
    case "compare":
        exit(try CompareCommand.run(arguments))
    case "report":
        exit(try ReportCommand.run(arguments))
    case "bench":
        exit(try BenchCommand.run(arguments))
    case "help", "--help", "-h":
        print(usage)
    default:
        printError("normlab: unknown command '\(command)'\n\n\(usage)")
        exit(2)
    }
} catch let error as UsageError {
    printError("normlab \(command): \(error.message)")
    exit(2)
} catch {
    printError("normlab \(command): \(error)")
    exit(1)
}
