/// A 3×3 convolution with stride 1 and padding 1 (the output keeps H and W), optionally with a
/// bias, computed as a matrix product over an im2col matrix.
///
/// Forward: `columns` (K × N·P, K = Cin·9, P = H·W) holds the input's 3×3 neighbourhoods, and the
/// output is W (Cout × K) · columns. Backward: dW = dY · columnsᵀ, dcolumns = Wᵀ · dY, folded
/// back into dX.
public final class Conv2D {
    public let inputChannels: Int
    public let outputChannels: Int
    /// [Cout, Cin, 3, 3], row-major.
    public let weight: Parameter
    /// [Cout], or nil for a convolution followed by a normalizer.
    public let bias: Parameter?

    private var inputShape: [Int] = []
    private var columns: [Float] = []
    /// The output or its gradient as a Cout × N·P matrix.
    private var channelMajor: [Float] = []
    private var columnGradient: [Float] = []
    private let workspace = MatrixWorkspace()
    private let noBias: [Float]

    /// A convolution with Kaiming-normal weights (fan-in, ReLU gain: std = sqrt(2 / (Cin·9)))
    /// and a zero bias.
    public init(inputChannels: Int, outputChannels: Int, bias: Bool, generator: inout SeededGenerator) {
        precondition(inputChannels > 0 && outputChannels > 0)
        self.inputChannels = inputChannels
        self.outputChannels = outputChannels
        let std = Float((2.0 / Double(inputChannels * 9)).squareRoot())
        weight = Parameter(generator.normals(outputChannels * inputChannels * 9, std: std))
        self.bias = bias ? Parameter([Float](repeating: 0, count: outputChannels)) : nil
        noBias = [Float](repeating: 0, count: outputChannels)
    }

    /// y = conv(x) (+ bias), x: [N, Cin, H, W] → y: [N, Cout, H, W].
    public func forward(_ x: Tensor, into y: inout Tensor) {
        precondition(x.shape.count == 4 && x.shape[1] == inputChannels, "conv input \(x.shape)")
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let p = h * w, k = inputChannels * 9, columnCount = n * p
        inputShape = x.shape
        resize(&columns, k * columnCount)
        resize(&channelMajor, outputChannels * columnCount)
        y.reshape(to: [n, outputChannels, h, w])
        x.scalars.withUnsafeBufferPointer { x in
            columns.withUnsafeMutableBufferPointer { columns in
                Im2Col.unfold(x.baseAddress!, into: columns.baseAddress!, batch: n, channels: inputChannels, height: h, width: w)
            }
        }
        columns.withUnsafeBufferPointer { columns in
            weight.value.withUnsafeBufferPointer { weight in
                channelMajor.withUnsafeMutableBufferPointer { product in
                    MatrixMultiply.multiply(
                        MatrixView(weight.baseAddress!, columns: k), MatrixView(columns.baseAddress!, columns: columnCount),
                        into: product.baseAddress!, cRowStride: columnCount,
                        m: outputChannels, n: columnCount, k: k, accumulate: false, workspace: workspace)
                }
            }
        }
        let shift = bias?.value ?? noBias
        channelMajor.withUnsafeBufferPointer { product in
            y.scalars.withUnsafeMutableBufferPointer { y in
                Im2Col.channelMajorToNCHW(product.baseAddress!, y.baseAddress!, batch: n, channels: outputChannels, positions: p, add: shift)
            }
        }
    }

    /// Sets the weight (and bias) gradients from dL/dy and writes dL/dx.
    public func backward(_ dy: Tensor, into dx: inout Tensor) {
        parameterGradients(dy)
        let (n, h, w) = (inputShape[0], inputShape[2], inputShape[3])
        let k = inputChannels * 9, columnCount = n * h * w
        resize(&columnGradient, k * columnCount)
        channelMajor.withUnsafeBufferPointer { dyMatrix in
            weight.value.withUnsafeBufferPointer { weight in
                columnGradient.withUnsafeMutableBufferPointer { columnGradient in
                    // dcolumns (K × NP) = Wᵀ (K × Cout) · dY (Cout × NP)
                    MatrixMultiply.multiply(
                        MatrixView(weight.baseAddress!, columns: k).transposed,
                        MatrixView(dyMatrix.baseAddress!, columns: columnCount),
                        into: columnGradient.baseAddress!, cRowStride: columnCount,
                        m: k, n: columnCount, k: outputChannels, accumulate: false, workspace: workspace)
                }
            }
        }
        dx.reshape(to: inputShape)
        columnGradient.withUnsafeBufferPointer { columnGradient in
            dx.scalars.withUnsafeMutableBufferPointer { dx in
                Im2Col.fold(columnGradient.baseAddress!, into: dx.baseAddress!, batch: n, channels: inputChannels, height: h, width: w)
            }
        }
    }

    /// Sets the weight (and bias) gradients from dL/dy, for a first layer whose input needs no
    /// gradient.
    public func parameterGradients(_ dy: Tensor) {
        precondition(inputShape.count == 4 && dy.shape == [inputShape[0], outputChannels, inputShape[2], inputShape[3]])
        let (n, h, w) = (inputShape[0], inputShape[2], inputShape[3])
        let p = h * w, k = inputChannels * 9, columnCount = n * p
        dy.scalars.withUnsafeBufferPointer { dy in
            channelMajor.withUnsafeMutableBufferPointer { product in
                Im2Col.nchwToChannelMajor(dy.baseAddress!, product.baseAddress!, batch: n, channels: outputChannels, positions: p)
            }
        }
        channelMajor.withUnsafeBufferPointer { dyMatrix in
            columns.withUnsafeBufferPointer { columns in
                weight.gradient.withUnsafeMutableBufferPointer { gradient in
                    // dW (Cout × K) = dY (Cout × NP) · columnsᵀ (NP × K)
                    MatrixMultiply.multiply(
                        MatrixView(dyMatrix.baseAddress!, columns: columnCount),
                        MatrixView(columns.baseAddress!, columns: columnCount).transposed,
                        into: gradient.baseAddress!, cRowStride: k,
                        m: outputChannels, n: k, k: columnCount, accumulate: false, workspace: workspace)
                }
            }
            if let bias {
                for channel in 0..<outputChannels {
                    bias.gradient[channel] = Float(VectorKernels.sum(dyMatrix.baseAddress! + channel * columnCount, columnCount))
                }
            }
        }
    }
}

/// Resizes a scratch buffer only when its size changes.
@inline(__always)
func resize(_ buffer: inout [Float], _ count: Int) {
    if buffer.count != count { buffer = [Float](repeating: 0, count: count) }
}
