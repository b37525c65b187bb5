import CPUFeatures
import Foundation

/// The CPU time a Linux control group may use, in processors' worth: a container started with
/// `--cpus 4` on a 64-core host sees 64 processors but may use 4. The lab's default thread and
/// job counts take the smaller of the two, so they do not start 64 threads that the kernel then
/// throttles.
///
/// Read as the kernel reports it: cgroup v2's `cpu.max` ("400000 100000": quota and period in
/// microseconds; "max 100000": no quota) or cgroup v1's `cpu.cfs_quota_us` and
/// `cpu.cfs_period_us` (a quota of -1: none), for the process's group and each group above it;
/// the tightest applies.
enum CPUQuota {
    /// This process's quota in whole processors (rounded up, at least 1), nil if it has none or
    /// none can be read.
    static func ofThisProcess() -> Int? {
        guard let membership = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return nil }
        return limit(cgroupFile: membership, root: "/sys/fs/cgroup") { path in
            try? String(contentsOfFile: path, encoding: .utf8)
        }
    }

    /// The tightest quota along the process's groups, given `/proc/self/cgroup`'s text and a
    /// way to read files under `root` (the cgroup file systems' mount point).
    static func limit(cgroupFile: String, root: String, read: (String) -> String?) -> Int? {
        var limits: [Double] = []
        for line in cgroupFile.split(separator: "\n") {
            // "0::/path" (v2) or "4:cpu,cpuacct:/path" (v1).
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let controllers = fields[1].split(separator: ",")
            for directory in ancestors(of: String(fields[2])) {
                if fields[0] == "0" && controllers.isEmpty {
                    if let text = read("\(root)\(directory)/cpu.max"), let value = processors(cpuMax: text) {
                        limits.append(value)
                    }
                } else if controllers.contains("cpu") {
                    let mount = "\(root)/\(fields[1])"
                    if let quota = read("\(mount)\(directory)/cpu.cfs_quota_us"),
                       let period = read("\(mount)\(directory)/cpu.cfs_period_us"),
                       let value = processors(quota: quota, period: period) {
                        limits.append(value)
                    }
                }
            }
        }
        return limits.min().map { max(1, Int($0.rounded(.up))) }
    }

    /// cgroup v2's `cpu.max` as processors; nil for "max" (no quota) or unreadable text.
    static func processors(cpuMax text: String) -> Double? {
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 2, fields[0] != "max" else { return nil }
        return processors(quota: String(fields[0]), period: String(fields[1]))
    }

    /// A quota and period in microseconds as processors; nil for a quota of -1 (none) or
    /// values that are not positive whole numbers.
    static func processors(quota: String, period: String) -> Double? {
        guard let quota = Int(quota.trimmingCharacters(in: .whitespacesAndNewlines)),
              let period = Int(period.trimmingCharacters(in: .whitespacesAndNewlines)),
              quota > 0, period > 0 else { return nil }
        return Double(quota) / Double(period)
    }

    /// "/a/b" → ["/a/b", "/a", ""]: the group and every group above it, as paths to append to
    /// the mount point ("" is the root group).
    private static func ancestors(of path: String) -> [String] {
        var parts = path.split(separator: "/").map(String.init)
        var result: [String] = []
        while true {
            result.append(parts.isEmpty ? "" : "/" + parts.joined(separator: "/"))
            guard !parts.isEmpty else { return result }
            parts.removeLast()
        }
    }
}

extension Parallelism {
    /// The processors this process may run on: its CPU affinity (`taskset`, a batch system's
    /// binding) where the system reports one, else every online processor; no more than its
    /// control group's CPU quota allows (a container's `--cpus`), rounded up.
    public static var availableProcessors: Int {
        let affinity = max(1, Int(normlab_available_processors()))
        return min(affinity, CPUQuota.ofThisProcess() ?? affinity)
    }
}
