/// A dense, row-major Float32 array with a shape: the one value type that flows between layers.
///
/// Image batches are NCHW (`[N, C, H, W]`); features are `[N, C]`.
public struct Tensor: Equatable, Sendable {
    /// The size of each axis, outermost first.
    public private(set) var shape: [Int]
    /// The elements in row-major order; `scalars.count` is the product of `shape`.
    public var scalars: [Float]

    /// Creates a tensor from a shape and its row-major elements.
    /// - Throws: `TensorError` when an axis is negative or the element count does not match.
    public init(shape: [Int], scalars: [Float]) throws {
        guard !shape.isEmpty, shape.allSatisfy({ $0 >= 0 }), let count = Self.elementCount(shape) else {
            throw TensorError.invalidShape(shape)
        }
        guard count == scalars.count else {
            throw TensorError.elementCountMismatch(shape: shape, count: scalars.count)
        }
        self.shape = shape
        self.scalars = scalars
    }

    /// Creates a tensor of the given shape filled with `value`.
    public init(shape: [Int], repeating value: Float = 0) {
        precondition(!shape.isEmpty && shape.allSatisfy { $0 >= 0 }, "invalid shape \(shape)")
        self.shape = shape
        self.scalars = [Float](repeating: value, count: shape.reduce(1, *))
    }

    /// The number of elements.
    public var count: Int { scalars.count }

    /// The product of `shape`, or nil when it passes `Int.max` (a shape no memory holds).
    static func elementCount(_ shape: [Int]) -> Int? {
        var count = 1
        for size in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: size)
            if overflow { return nil }
            count = product
        }
        return count
    }

    /// Makes this tensor a copy of `other` in its own storage (reused when the size allows), so
    /// that the two never share a buffer that a later in-place write would have to copy.
    public mutating func copyValues(of other: Tensor) {
        reshape(to: other.shape)
        scalars.withUnsafeMutableBufferPointer { target in
            other.scalars.withUnsafeBufferPointer { source in
                guard let to = target.baseAddress, let from = source.baseAddress else { return }  // empty
                to.update(from: from, count: source.count)
            }
        }
    }

    /// Gives this tensor a new shape, reusing its storage when the element count allows.
    ///
    /// Used by layers that write into preallocated outputs: a buffer of the right size is kept,
    /// one of another size is replaced (its old contents are not preserved).
    public mutating func reshape(to newShape: [Int]) {
        precondition(!newShape.isEmpty && newShape.allSatisfy { $0 >= 0 }, "invalid shape \(newShape)")
        let newCount = newShape.reduce(1, *)
        if newCount != scalars.count {
            scalars = [Float](repeating: 0, count: newCount)
        }
        shape = newShape
    }
}

/// A tensor whose shape or element count is impossible.
public enum TensorError: Error, Equatable, CustomStringConvertible {
    case invalidShape([Int])
    case elementCountMismatch(shape: [Int], count: Int)

    public var description: String {
        switch self {
        case .invalidShape(let shape):
            return "invalid tensor shape \(shape): it needs at least one axis, no negative sizes, and an element count an Int can hold"
        case .elementCountMismatch(let shape, let count):
            return "shape \(shape) holds \(shape.reduce(1, *)) elements, but \(count) were given"
        }
    }
}
