/// A convolution's window: a square kernel, its stride and its zero padding.
public struct ConvolutionGeometry: Equatable, Sendable, CustomStringConvertible {
    public var kernel: Int
    public var stride: Int
    public var padding: Int

    public init(kernel: Int, stride: Int = 1, padding: Int) {
        precondition(kernel > 0 && stride > 0 && padding >= 0 && padding < kernel, "kernel \(kernel), stride \(stride), padding \(padding)")
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
    }

    /// 3×3, stride 1, padding 1: the output keeps H and W (the lab's most common convolution,
    /// which has kernels of its own, `Im2Col.unfold` and `Im2Col.fold`).
    public static let same3x3 = ConvolutionGeometry(kernel: 3, stride: 1, padding: 1)

    /// K / Cin: the entries of one input channel's window.
    var windowSize: Int { kernel * kernel }

    /// The output size along an axis of `size` inputs.
    func outputSize(_ size: Int) -> Int { (size + 2 * padding - kernel) / stride + 1 }

    public var description: String { "\(kernel)×\(kernel), stride \(stride), padding \(padding)" }
}

/// Rearrangements between NCHW tensors and the column matrices of a convolution of any
/// geometry. The lab's common 3×3, stride-1 convolution uses `Im2Col.unfold` and `Im2Col.fold`
/// instead.
enum GeneralIm2Col {
    /// The outputs `ox` whose input `ox·s + offset - pad` lies in `0..<size`, for a window offset.
    @inline(__always)
    static func validOutputs(offset: Int, size: Int, outputSize: Int, _ g: ConvolutionGeometry) -> Range<Int> {
        // ox·s ≥ pad - offset, and ox·s ≤ size - 1 + pad - offset.
        let low = max(0, (g.padding - offset + g.stride - 1) / g.stride)
        let high = min(outputSize, g.padding - offset + size - 1 >= 0 ? (g.padding - offset + size - 1) / g.stride + 1 : 0)
        return low..<max(low, high)
    }

    /// columns[(c·k² + ky·k + kx)][n·Po + oy·Wo + ox] = x[n, c, oy·s + ky - pad, ox·s + kx - pad],
    /// or 0 outside the plane.
    static func unfold(
        _ input: UnsafePointer<Float>, into columns: UnsafeMutablePointer<Float>,
        batch: Int, channels: Int, height: Int, width: Int, geometry g: ConvolutionGeometry
    ) {
        let (oh, ow) = (g.outputSize(height), g.outputSize(width))
        let po = oh * ow, columnCount = batch * po, window = g.windowSize
        Parallelism.forEach(channels * window, cost: columnCount) { rows in
            for row in rows {
                let channel = row / window, ky = row % window / g.kernel, kx = row % g.kernel
                let rowsInside = validOutputs(offset: ky, size: height, outputSize: oh, g)
                let columnsInside = validOutputs(offset: kx, size: width, outputSize: ow, g)
                for sample in 0..<batch {
                    let plane = input + (sample * channels + channel) * height * width
                    let out = columns + row * columnCount + sample * po
                    out.update(repeating: 0, count: po)
                    for oy in rowsInside {
                        let source = plane + (oy * g.stride + ky - g.padding) * width + kx - g.padding
                        let target = out + oy * ow
                        for ox in columnsInside { target[ox] = source[ox * g.stride] }
                    }
                }
            }
        }
    }

    /// The adjoint of `unfold`: dx[n, c, y, x] = Σ of the column entries that read it, added in
    /// a fixed order (window offsets in row-major order, from zero), whatever the thread count.
    static func fold(
        _ columns: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>,
        batch: Int, channels: Int, height: Int, width: Int, geometry g: ConvolutionGeometry
    ) {
        let (oh, ow) = (g.outputSize(height), g.outputSize(width))
        let p = height * width, po = oh * ow, columnCount = batch * po, window = g.windowSize
        Parallelism.forEach(batch * channels, cost: window * po) { planes in
            for planeIndex in planes {
                let sample = planeIndex / channels, channel = planeIndex % channels
                let plane = output + planeIndex * p
                plane.update(repeating: 0, count: p)
                // Each offset adds at most one term to each input, so the terms of an input are
                // added in offset order.
                for offset in 0..<window {
                    let ky = offset / g.kernel, kx = offset % g.kernel
                    let rowStart = columns + (channel * window + offset) * columnCount + sample * po
                    let columnsInside = validOutputs(offset: kx, size: width, outputSize: ow, g)
                    for oy in validOutputs(offset: ky, size: height, outputSize: oh, g) {
                        let target = plane + (oy * g.stride + ky - g.padding) * width + kx - g.padding
                        let source = rowStart + oy * ow
                        for ox in columnsInside { target[ox * g.stride] += source[ox] }
                    }
                }
            }
        }
    }
}
