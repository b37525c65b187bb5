import Foundation
import XCTest

@testable import NormLab

final class VectorKernelsTests: XCTestCase {
    /// The 8-lane e^t against Foundation's (double precision, rounded) over its whole range and
    /// beyond: within 2 ulp inside, the end's value outside, and finite everywhere.
    func testExpWithinTwoUnitsInTheLastPlace() {
        var worst: Float = 0
        var t: Float = -87.3
        while t <= 88.3 {
            let lanes = VectorKernels.exp(VectorKernels.Vector((0..<8).map { t + Float($0) * 1e-3 }))
            for lane in 0..<8 {
                let exact = Float(Foundation.exp(Double(t + Float(lane) * 1e-3)))
                guard exact.isFinite, exact >= Float.leastNormalMagnitude else { continue }
                worst = max(worst, abs(lanes[lane] - exact) / exact.ulp)
            }
            t += 0.0173
        }
        XCTAssertLessThanOrEqual(worst, 2, "worst error in ulp")
        let ends = VectorKernels.exp(VectorKernels.Vector([-1000, -88, 89, 1000, 0, 1, -1, .infinity]))
        XCTAssertEqual(ends[0], ends[1])
        XCTAssertEqual(ends[2], ends[3])
        XCTAssertEqual(ends[4], 1)
        XCTAssertTrue((0..<8).allSatisfy { ends[$0].isFinite && ends[$0] > 0 })
    }

    /// A value's gate and output are the same bits at the start of a run and in its last few.
    func testGatedScaleDoesNotDependOnPosition() {
        let values: [Float] = [-3.5, -0.25, 0, 0.5, 2, 7.75, -12, 40, 0.125, -0.5, 1.5]
        var (gates, y) = ([Float](repeating: 0, count: values.count), [Float](repeating: 0, count: values.count))
        values.withUnsafeBufferPointer { x in
            VectorKernels.gatedScale(x.baseAddress!, gates: &gates, &y, values.count, slope: 0.75, scale: 1.5, shift: -0.25)
        }
        for (index, value) in values.enumerated() {
            var (gate, out): (Float, Float) = (0, 0)
            withUnsafePointer(to: value) { VectorKernels.gatedScale($0, gates: &gate, &out, 1, slope: 0.75, scale: 1.5, shift: -0.25) }
            XCTAssertEqual(gate.bitPattern, gates[index].bitPattern)
            XCTAssertEqual(out.bitPattern, y[index].bitPattern)
            let exact = 1 / (1 + Foundation.exp(-0.75 * Double(value)))
            XCTAssertEqual(Double(gate), exact, accuracy: 4e-7 * max(exact, 1e-30) + 1e-37)
        }
    }
}
