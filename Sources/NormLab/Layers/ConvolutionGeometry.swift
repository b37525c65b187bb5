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
/// geometry. Simple loops: the lab's common 3×3, stride-1 convolution uses `Im2Col.unfold`
/// and `Im2Col.fold` instead.
enum GeneralIm2Col {
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
                for sample in 0..<batch {
                    let plane = input + (sample * channels + channel) * height * width
                    let out = columns + row * columnCount + sample * po
                    for oy in 0..<oh {
                        let y = oy * g.stride + ky - g.padding
                        let outRow = out + oy * ow
                        guard y >= 0 && y < height else {
                            outRow.update(repeating: 0, count: ow)
                            continue
                        }
                        for ox in 0..<ow {
                            let x = ox * g.stride + kx - g.padding
                            outRow[ox] = x >= 0 && x < width ? plane[y * width + x] : 0
                        }
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
                for offset in 0..<window {
                    let ky = offset / g.kernel, kx = offset % g.kernel
                    let rowStart = columns + (channel * window + offset) * columnCount + sample * po
                    for oy in 0..<oh {
                        let y = oy * g.stride + ky - g.padding
                        guard y >= 0 && y < height else { continue }
                        for ox in 0..<ow {
                            let x = ox * g.stride + kx - g.padding
                            if x >= 0 && x < width { plane[y * width + x] += rowStart[oy * ow + ox] }
                        }
                    }
                }
            }
        }
    }
}
