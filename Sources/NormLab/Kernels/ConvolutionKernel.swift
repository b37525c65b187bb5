/// A convolution's computation (`Conv2D`), with the buffers it reuses from pass to pass.
///
/// Forward: `columns` (K × n·P, K = Cin·k², P = the output's Ho·Wo) holds the windows of n samples,
/// and their output is W (Cout × K) · columns. Backward: dWᵀ = columns · dYᵀ, dcolumns = Wᵀ · dY,
/// folded back into dX. The batch goes through in chunks of a few samples whose matrices stay
/// in cache (a whole batch of 128 would need 14 MB for the second convolution's columns alone);
/// the backward pass unfolds its chunk again, and the weight gradient's sum over the batch
/// carries across chunks, and across the pieces of a training step (`DepthPiece`,
/// `SamplePiece`), so every number is the same as one whole-batch product. The forward product
/// writes y's NCHW planes and dcolumns reads dY's in place: their n·P columns are the samples'
/// planes side by side (`ColumnSegments`).
final class ConvolutionKernel {
    /// The most column-matrix entries a chunk may hold: 1 MiB, so that each of two threads'
    /// halves of a product is about one core's 512 KiB L2 cache. Chunks of 256 KiB to 2 MiB timed
    /// alike; batch 8 fits in one chunk, which was faster there than two. Training at batch 128
    /// runs 1.4-1.6× faster than with whole-batch matrices (`Execution.chunksColumns` off, as
    /// `normlab bench train --whole-batch-columns` does, to time it).
    static let defaultChunkEntries = 1 << 18

    let inputChannels: Int
    let outputChannels: Int
    let geometry: ConvolutionGeometry
    /// This kernel's chunk limit (tests make it small, to check chunked passes).
    var chunkEntries = ConvolutionKernel.defaultChunkEntries
    /// A copy of the last forward's input, when the backward pass must unfold it again (more than
    /// one chunk). A copy, not a shared reference: the layer that produced the input overwrites
    /// it at the next forward, evaluation forwards have no backward to let go of a reference, and
    /// a shared buffer would then be copied on write with a fresh allocation each time. The copy
    /// reuses its buffer and moves a ninth of what the chunk's columns do.
    var input = Tensor(shape: [0])
    var inputShape: [Int] = []
    /// The columns of one chunk (of the whole batch when it fits in one).
    var columns: [Float] = []
    /// The batch's output gradient as an N·P × Cout matrix, in 16-channel panels
    /// (`Im2Col.nchwToPanels`), which the weight-gradient product reads in place.
    var gradientPanels: [Float] = []
    /// The weight gradient as K × Cout, before it is transposed into `weight.gradient`.
    var transposedWeightGradient: [Float] = []
    var columnGradient: [Float] = []
    /// `Im2Col.foldKeeps` for planes of `foldShape` (the last input's height and width), for the
    /// 3×3, stride-1 geometry.
    var foldKeeps: [UInt32] = []
    var foldShape = (height: 0, width: 0)
    /// Partial sums of the weight gradient between chunks and between a batch's pieces.
    var carry: [Float] = []
    /// The bias gradient's sums between a batch's pieces, one per output channel.
    var biasSums: [VectorKernels.RunningSum] = []
    let workspace = MatrixWorkspace()

    init(inputChannels: Int, outputChannels: Int, geometry: ConvolutionGeometry) {
        (self.inputChannels, self.outputChannels, self.geometry) = (inputChannels, outputChannels, geometry)
    }

    /// The output's shape for an input of `shape` [N, Cin, H, W].
    func outputShape(_ shape: [Int]) -> [Int] {
        [shape[0], outputChannels, geometry.outputSize(shape[2]), geometry.outputSize(shape[3])]
    }

    /// Splits a batch into chunks of at most `chunkEntries` column entries (at least one sample).
    func chunks(batch n: Int, positions p: Int) -> BatchChunks {
        let limit = Execution.current.chunksColumns ? chunkEntries : .max
        let most = max(1, limit / (inputChannels * geometry.windowSize * p))
        return BatchChunks(batch: n, chunkCount: max(1, (n + most - 1) / most))
    }

    /// Fills `columns` with the windows of the samples `chunk` of x.
    func unfold(_ x: Tensor, _ chunk: Range<Int>, height h: Int, width w: Int) {
        x.scalars.withUnsafeBufferPointer { x in
            columns.withUnsafeMutableBufferPointer { columns in
                let (x, columns) = (x.baseAddress! + chunk.lowerBound * inputChannels * h * w, columns.baseAddress!)
                if geometry == .same3x3 {
                    Im2Col.unfold(x, into: columns, batch: chunk.count, channels: inputChannels, height: h, width: w)
                } else {
                    GeneralIm2Col.unfold(
                        x, into: columns, batch: chunk.count, channels: inputChannels, height: h, width: w, geometry: geometry)
                }
            }
        }
    }

    /// y = conv(x) (+ bias), x: [N, Cin, H, W] → y: [N, Cout, Ho, Wo]; with `rectifying`,
    /// max(y, 0): the ReLU after a convolution with no normalizer. Bias and ReLU are applied as
    /// the product stores each tile, not in a pass of their own. Without `keepingInput` (an
    /// inference pass, which no backward follows) a batch of several chunks is not copied for
    /// the backward pass.
    func forward(
        _ x: Tensor, weight: Parameter, bias: Parameter?, into y: inout Tensor, rectifying: Bool, keepingInput: Bool
    ) {
        precondition(x.shape.count == 4 && x.shape[1] == inputChannels, "conv input \(x.shape)")
        let (n, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let outputShape = outputShape(x.shape)
        precondition(outputShape[2] > 0 && outputShape[3] > 0, "a \(geometry) convolution of a \(h)×\(w) plane")
        let p = outputShape[2] * outputShape[3], k = inputChannels * geometry.windowSize
        let chunks = chunks(batch: n, positions: p), largest = chunks.last!.count
        inputShape = x.shape
        // One chunk's columns are still here for the backward pass; more must be unfolded again.
        if chunks.count > 1 && keepingInput { input.copyValues(of: x) }
        resize(&columns, k * largest * p)
        y.reshape(to: outputShape)
        for chunk in chunks {
            let columnCount = chunk.count * p
            unfold(x, chunk, height: h, width: w)
            columns.withUnsafeBufferPointer { columns in
                weight.value.withUnsafeBufferPointer { weight in
                    (bias?.value ?? []).withUnsafeBufferPointer { biasValues in
                        y.scalars.withUnsafeMutableBufferPointer { y in
                            // The product's Cout × n·P columns are the chunk's NCHW planes; the bias
                            // and ReLU, if any, are applied to each tile as it is stored.
                            let epilogue = bias != nil || rectifying
                                ? RowEpilogue(bias: bias == nil ? nil : biasValues.baseAddress, rectifying: rectifying) : nil
                            MatrixMultiply.multiply(
                                MatrixView(weight.baseAddress!, columns: k), MatrixView(columns.baseAddress!, columns: columnCount),
                                into: y.baseAddress! + chunk.lowerBound * outputChannels * p, cRowStride: p,
                                m: outputChannels, n: columnCount, k: k, accumulate: false, workspace: workspace,
                                cSegments: ColumnSegments(length: p, stride: outputChannels * p), epilogue: epilogue)
                        }
                    }
                }
            }
        }
    }

    /// Sets the weight (and bias) gradients from dL/dy for the last forward's whole batch.
    func parameterGradients(_ dy: Tensor, weight: Parameter, bias: Parameter?) {
        parameterGradients(dy, piece: .whole(inputShape.first ?? 0), weight: weight, bias: bias)
    }

    /// `parameterGradients(_:weight:bias:)` for one piece of a batch, whose forward pass ran
    /// through `source`: this kernel (the default), or another convolution's with the same
    /// weights (a lane's). The sums go on from where the pieces before left them, and are final
    /// after the last.
    func parameterGradients(
        _ dy: Tensor, piece: SamplePiece, source: ConvolutionKernel? = nil, weight: Parameter, bias: Parameter?
    ) {
        let source = source ?? self
        let shape = source.inputShape
        precondition(shape.count == 4 && dy.shape == outputShape(shape))
        let (n, h, w) = (shape[0], shape[2], shape[3])
        precondition(piece.count == n, "a piece of \(piece.count) samples, an input of \(n)")
        let p = dy.shape[2] * dy.shape[3], k = inputChannels * geometry.windowSize, columnCount = n * p
        let chunks = source.chunks(batch: n, positions: p)
        if let bias {
            // Σ dY per channel, over the channel's N planes as one row of Cout × N·P, which a
            // batch's pieces continue.
            let segments = ColumnSegments(length: p, stride: outputChannels * p)
            if piece.isFirst {
                if biasSums.count != outputChannels { biasSums = Array(repeating: .init(), count: outputChannels) }
                for channel in 0..<outputChannels { biasSums[channel] = .init() }
            }
            dy.scalars.withUnsafeBufferPointer { dy in
                bias.gradient.withUnsafeMutableBufferPointer { gradient in
                    biasSums.withUnsafeMutableBufferPointer { sums in
                        let (dy, gradient, sums) = (dy.baseAddress!, gradient.baseAddress!, sums.baseAddress!)
                        Parallelism.forEach(outputChannels, cost: columnCount) { channels in
                            for channel in channels {
                                let total = VectorKernels.sum(
                                    dy + channel * p, columnCount, segments: segments, continuing: &sums[channel],
                                    finishing: piece.isLast)
                                if piece.isLast { gradient[channel] = Float(total) }
                            }
                        }
                    }
                }
            }
        }
        // dY as N·P × Cout panels for dW. (dX reads the NCHW planes.)
        let lanes = MatrixMultiply.panelWidth, panelStride = columnCount * lanes
        resize(&gradientPanels, (outputChannels + lanes - 1) / lanes * panelStride)
        dy.scalars.withUnsafeBufferPointer { dy in
            gradientPanels.withUnsafeMutableBufferPointer { panels in
                Im2Col.nchwToPanels(dy.baseAddress!, panels.baseAddress!, batch: n, channels: outputChannels, positions: p)
            }
        }
        resize(&carry, k * outputChannels)
        resize(&transposedWeightGradient, k * outputChannels)
        for chunk in chunks {
            let first = chunk.lowerBound * p, chunkColumns = chunk.count * p
            // One chunk's columns are still there from the forward pass; more must be unfolded again.
            if chunks.count > 1 { source.unfold(source.input, chunk, height: h, width: w) }
            source.columns.withUnsafeBufferPointer { columns in
                gradientPanels.withUnsafeBufferPointer { dyRows in
                    transposedWeightGradient.withUnsafeMutableBufferPointer { gradient in
                        carry.withUnsafeMutableBufferPointer { carry in
                            // dWᵀ (K × Cout) = columns (K × NP) · dYᵀ (NP × Cout), this chunk's part of NP.
                            // The same products and sums as dW = dY · columnsᵀ, with the operand
                            // that needs transposing while packed (columns) split between the
                            // threads instead of dY duplicated, and full-width panels when K < 16.
                            MatrixMultiply.multiply(
                                MatrixView(columns.baseAddress!, columns: chunkColumns),
                                MatrixView(dyRows.baseAddress! + first * lanes, panelStride: panelStride),
                                into: gradient.baseAddress!, cRowStride: outputChannels,
                                m: k, n: outputChannels, k: chunkColumns, accumulate: false, workspace: workspace,
                                piece: DepthPiece(
                                    offset: piece.first * p + first, total: piece.batch * p, carry: carry.baseAddress!))
                        }
                    }
                }
            }
        }
        guard piece.isLast else { return }
        transposedWeightGradient.withUnsafeBufferPointer { source in
            weight.gradient.withUnsafeMutableBufferPointer { target in
                VectorKernels.transpose(
                    source.baseAddress!, rows: k, columns: outputChannels, sourceStride: outputChannels,
                    into: target.baseAddress!, targetStride: k)
            }
        }
    }

    /// Writes dL/dx for the last forward pass from dL/dy, leaving the parameters' gradients alone.
    func inputGradient(_ dy: Tensor, weight: Parameter, into dx: inout Tensor) {
        precondition(inputShape.count == 4 && dy.shape == outputShape(inputShape))
        let (n, h, w) = (inputShape[0], inputShape[2], inputShape[3])
        let p = dy.shape[2] * dy.shape[3], k = inputChannels * geometry.windowSize, inputPositions = h * w
        let chunks = chunks(batch: n, positions: p), largest = chunks.last!.count
        dx.reshape(to: inputShape)
        resize(&columnGradient, k * largest * p)
        if geometry == .same3x3, foldShape != (h, w) {
            foldShape = (h, w)
            foldKeeps = Im2Col.foldKeeps(height: h, width: w)
        }
        for chunk in chunks {
            let chunkColumns = chunk.count * p
            dy.scalars.withUnsafeBufferPointer { dy in
                // dY's Cout × n·P columns, read from the chunk's NCHW planes.
                let dyChunk = MatrixView(
                    dy.baseAddress! + chunk.lowerBound * outputChannels * p, rowStride: p,
                    segments: ColumnSegments(length: p, stride: outputChannels * p))
                weight.value.withUnsafeBufferPointer { weight in
                    columnGradient.withUnsafeMutableBufferPointer { columnGradient in
                        dx.scalars.withUnsafeMutableBufferPointer { dx in
                            // dcolumns (K × nP) = Wᵀ (K × Cout) · dY (Cout × nP)
                            MatrixMultiply.multiply(
                                MatrixView(weight.baseAddress!, columns: k).transposed, dyChunk,
                                into: columnGradient.baseAddress!, cRowStride: chunkColumns,
                                m: k, n: chunkColumns, k: outputChannels, accumulate: false, workspace: workspace)
                            let dxChunk = dx.baseAddress! + chunk.lowerBound * inputChannels * inputPositions
                            if geometry == .same3x3 {
                                Im2Col.fold(
                                    columnGradient.baseAddress!, into: dxChunk,
                                    batch: chunk.count, channels: inputChannels, height: h, width: w, keeps: foldKeeps)
                            } else {
                                GeneralIm2Col.fold(
                                    columnGradient.baseAddress!, into: dxChunk,
                                    batch: chunk.count, channels: inputChannels, height: h, width: w, geometry: geometry)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A batch of `batch` samples split into `chunkCount` runs of consecutive samples of nearly
/// equal size, the largest last; computed on demand, so a training step allocates nothing.
struct BatchChunks: RandomAccessCollection {
    let batch: Int
    let chunkCount: Int
    var startIndex: Int { 0 }
    var endIndex: Int { chunkCount }
    subscript(index: Int) -> Range<Int> { batch * index / chunkCount..<batch * (index + 1) / chunkCount }
}

/// Resizes a scratch buffer only when its size changes.
@inline(__always)
func resize(_ buffer: inout [Float], _ count: Int) {
    if buffer.count != count { buffer = [Float](repeating: 0, count: count) }
}
