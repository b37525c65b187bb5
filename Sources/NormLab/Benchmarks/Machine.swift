import CPUFeatures
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

    /// The first "model name" line's value, its runs of spaces collapsed. arm64 Linux has no
    /// model name: then the "Hardware" line, or the "CPU implementer" and "CPU part" codes
    /// ("CPU implementer 0x41, part 0xd0c"). Nil if there is none of these.
    static func processorName(cpuinfo: String) -> String? {
        var fields: [String: String] = [:]
        for line in cpuinfo.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let key = parts[0].trimmingCharacters(in: .whitespaces)
            let value = parts[1].split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            if fields[key] == nil && !value.isEmpty { fields[key] = value }
        }
        if let name = fields["model name"] ?? fields["Hardware"] { return name }
        if let implementer = fields["CPU implementer"], let part = fields["CPU part"] {
            return "CPU implementer \(implementer), part \(part)"
        }
        return nil
    }

    /// The processors this process may run on (`Parallelism.availableProcessors`).
    public static var availableProcessors: Int { Parallelism.availableProcessors }

    /// "Intel(R) Xeon(R) Processor, 2 processors".
    public var summary: String {
        "\(processor), \(processorCount) processor\(processorCount == 1 ? "" : "s")"
    }
}
