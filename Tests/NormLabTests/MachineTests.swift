import XCTest
@testable import NormLab

/// The processor name that benchmark output carries, read from `/proc/cpuinfo` text.
final class MachineTests: XCTestCase {
    func testProcessorNameIsTheFirstModelNameLine() {
        let intel = """
            processor\t: 0
            vendor_id\t: GenuineIntel
            cpu family\t: 6
            model\t\t: 207
            model name\t: Intel(R) Xeon(R) Processor
            flags\t\t: fpu vme: de

            processor\t: 1
            model name\t: Something Else
            """
        XCTAssertEqual(Machine.processorName(cpuinfo: intel), "Intel(R) Xeon(R) Processor")
        // Runs of spaces, as some processors pad their names, collapse to one.
        let amd = "processor\t: 0\nmodel name\t: AMD EPYC 7B13  64-Core   Processor \n"
        XCTAssertEqual(Machine.processorName(cpuinfo: amd), "AMD EPYC 7B13 64-Core Processor")
    }

    func testArmNamesFromHardwareOrPartCodes() {
        let graviton = """
            processor	: 0
            BogoMIPS	: 243.75
            Features	: fp asimd evtstrm
            CPU implementer	: 0x41
            CPU architecture: 8
            CPU part	: 0xd0c

            processor	: 1
            CPU implementer	: 0x42
            """
        XCTAssertEqual(Machine.processorName(cpuinfo: graviton), "CPU implementer 0x41, part 0xd0c")
        XCTAssertEqual(Machine.processorName(cpuinfo: graviton + "\nHardware\t: BCM2835\n"), "BCM2835")
    }

    func testNoModelNameGivesNil() {
        XCTAssertNil(Machine.processorName(cpuinfo: "processor\t: 0\nBogoMIPS\t: 50.00\n"))
        XCTAssertNil(Machine.processorName(cpuinfo: "model name\t:   \n"))
        XCTAssertNil(Machine.processorName(cpuinfo: ""))
    }

    func testSummary() {
        XCTAssertEqual(Machine(processor: "AMD EPYC", processorCount: 2).summary, "AMD EPYC, 2 processors")
        XCTAssertEqual(Machine(processor: "AMD EPYC", processorCount: 1).summary, "AMD EPYC, 1 processor")
    }

    /// A control group's CPU quota caps the default thread count: cgroup v2's cpu.max, v1's
    /// cfs_quota_us / cfs_period_us, read along the group and the groups above it.
    func testCPUQuotaFromControlGroupFiles() {
        XCTAssertEqual(CPUQuota.processors(cpuMax: "400000 100000\n"), 4)
        XCTAssertEqual(CPUQuota.processors(cpuMax: "150000 100000"), 1.5)
        XCTAssertNil(CPUQuota.processors(cpuMax: "max 100000"))
        XCTAssertNil(CPUQuota.processors(cpuMax: "garbage"))
        XCTAssertNil(CPUQuota.processors(quota: "-1\n", period: "100000\n"))
        XCTAssertNil(CPUQuota.processors(quota: "100000", period: "0"))

        func limit(_ cgroup: String, _ files: [String: String]) -> Int? {
            CPUQuota.limit(cgroupFile: cgroup, root: "/cg") { files[$0] }
        }
        // v2: the group's own quota, rounded up; a tighter one above it wins.
        XCTAssertEqual(limit("0::/jobs/a\n", ["/cg/jobs/a/cpu.max": "150000 100000\n"]), 2)
        XCTAssertEqual(limit("0::/jobs/a\n", ["/cg/jobs/a/cpu.max": "max 100000", "/cg/jobs/cpu.max": "300000 100000"]), 3)
        XCTAssertEqual(limit("0::/\n", ["/cg/cpu.max": "50000 100000"]), 1)
        XCTAssertNil(limit("0::/jobs/a\n", ["/cg/jobs/a/cpu.max": "max 100000"]))
        // v1: the cpu controller's files, also where the group's path is the host's and only
        // the mount's root is visible (a container without a cgroup namespace).
        let v1 = "4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n0::/\n"
        XCTAssertEqual(limit(v1, ["/cg/cpu,cpuacct/cpu.cfs_quota_us": "200000", "/cg/cpu,cpuacct/cpu.cfs_period_us": "100000"]), 2)
        XCTAssertNil(limit(v1, ["/cg/cpu,cpuacct/cpu.cfs_quota_us": "-1", "/cg/cpu,cpuacct/cpu.cfs_period_us": "100000"]))
        XCTAssertNil(limit("", [:]))
        XCTAssertGreaterThanOrEqual(Machine.availableProcessors, 1)
    }
}
