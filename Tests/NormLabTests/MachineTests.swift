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
}
