import Foundation

/// What a benchmark ran on: the processor's name and how many processors the system offers.
/// Timings from two kinds of machine are not comparable (the lab's figures were measured on an
/// AMD EPYC and on an Intel Xeon, where PyTorch and the lab rank differently), so every timing
/// the lab prints says where it came from.
public struct Machine: Equatable, Sendable {
    public var processor: String
    public var processorCount: Int

    public init(processor: String, processorCount: Int) {
        self.processor = processor
        self.processorCount = processorCount
    }

    /// This machine, from `/proc/cpuinfo` on Linux ("unknown processor" where it cannot be read).
    public static var current: Machine {
        let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        return Machine(
            processor: text.flatMap(processorName(cpuinfo:)) ?? "unknown processor",
            processorCount: ProcessInfo.processInfo.activeProcessorCount)
    }

    /// The first "model name" line's value, its runs of spaces collapsed; nil if there is none.
    static func processorName(cpuinfo: String) -> String? {
        for line in cpuinfo.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == "model name" else { continue }
            let name = parts[1].split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            return name.isEmpty ? nil : name
        }
        return nil
    }

    /// "Intel(R) Xeon(R) Processor, 2 processors".
    public var summary: String {
        "\(processor), \(processorCount) processor\(processorCount == 1 ? "" : "s")"
    }
}
