import WideKernels

/// How the lab's kernels run: the thread count, and the switches an A/B benchmark flips to time
/// what a technique gains. None of them changes a bit of any result, only the speed.
///
/// A value is in force inside `run(_:)`, for the code it calls and for the work that code hands to
/// other threads (`Parallelism.forEach`), and nowhere else: it is a task-local value, not
/// process-wide state, so two tests or two trainings in one process can each use their own.
/// Outside any `run`, the defaults hold.
public struct Execution: Equatable, Sendable {
    /// The threads kernels may use (at least 1): by default, as many as the processors this
    /// process may run on.
    public var threads: Int
    /// Whether training steps take a batch through the network in pieces and lanes where the
    /// layers allow it (`normlab bench train --whole-batches` turns it off).
    public var splitsBatches: Bool
    /// Whether convolutions unfold their input in cache-sized chunks (`ConvolutionKernel.defaultChunkEntries`)
    /// rather than the whole batch at once (`--whole-batch-columns` turns it off).
    public var chunksColumns: Bool
    /// Whether matrix products use the 512-bit tiles where the processor has AVX-512
    /// (`--no-wide-tiles` turns them off).
    public var wideTiles: Bool

    public init(
        threads: Int = Parallelism.availableProcessors, splitsBatches: Bool = true, chunksColumns: Bool = true,
        wideTiles: Bool = WideTiles.available
    ) {
        self.threads = max(1, threads)
        self.splitsBatches = splitsBatches
        self.chunksColumns = chunksColumns
        self.wideTiles = wideTiles && WideTiles.available
    }

    /// The settings in force here.
    @TaskLocal public static var current = Execution()

    /// Runs `body` with these settings in force.
    public func run<Result>(_ body: () throws -> Result) rethrows -> Result {
        try Execution.$current.withValue(self, operation: body)
    }
}
