import XCTest
@testable import NormLab

/// A tensor's shape and its values must agree.
final class TensorTests: XCTestCase {
    func testShapeErrors() {
        XCTAssertThrowsError(try Tensor(shape: [2, 2], scalars: [1, 2, 3]))
        XCTAssertThrowsError(try Tensor(shape: [-1, 2], scalars: []))
        XCTAssertThrowsError(try Tensor(shape: [], scalars: []))
        // A shape whose product passes Int.max is refused, not an overflow trap.
        XCTAssertThrowsError(try Tensor(shape: [1 << 40, 1 << 40, 1 << 40], scalars: [])) { error in
            XCTAssertEqual(error as? TensorError, .invalidShape([1 << 40, 1 << 40, 1 << 40]))
        }
    }
}
