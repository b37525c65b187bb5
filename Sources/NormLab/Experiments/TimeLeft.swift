/// A parallel sweep's time left (`normlab sweep --jobs`), from the runs that finished: the images a
/// job trains per second, applied to the images left, with the runs in progress counted as far
/// along as that rate puts them. Counting only finished runs would leave out the work the other
/// jobs have done meanwhile, and overstate the time left while few runs have finished.
public struct TimeLeft: Sendable {
    private var imagesLeft: Double
    private var imagesFinished = 0.0
    private var secondsFinished = 0.0

    /// - Parameter images: the images the sweep's pending runs train, in all.
    public init(images: Double) { imagesLeft = images }

    /// A run of `images` images finished, `seconds` after it started.
    public mutating func finished(images: Double, seconds: Double) {
        imagesLeft -= images
        imagesFinished += images
        secondsFinished += seconds
    }

    /// - Parameters:
    ///   - inProgress: each running run's images and the seconds it has run.
    ///   - jobs: the runs that can run at once from now on.
    public func seconds(inProgress: [(images: Double, seconds: Double)], jobs: Int) -> Double? {
        guard imagesFinished > 0, secondsFinished > 0, jobs > 0 else { return nil }
        let rate = imagesFinished / secondsFinished
        let alreadyTrained = inProgress.reduce(0) { $0 + min($1.images, rate * $1.seconds) }
        return max(0, imagesLeft - alreadyTrained) / (rate * Double(jobs))
    }
}
