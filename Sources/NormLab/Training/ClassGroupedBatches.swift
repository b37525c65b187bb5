/// Non-i.i.d. batches: each batch holds few classes (`classes_per_batch` k), as when data arrive
/// sorted or are sharded by class. Batch renorm was designed for them (Ioffe 2017).
///
/// An epoch's order: its seeded permutation, stably sorted by label, cut into chunks of B/k
/// samples (the samples after the last whole chunk are left out that epoch); the chunks are
/// shuffled with a generator of their own, and each k consecutive chunks make a batch. k = 1
/// gives batches of one class (two at a class boundary); k = B is a shuffled order again.
enum ClassGroupedBatches {
    /// Reorders `order` (the epoch's permutation) as above; the trainer takes its batches from
    /// the front as usual, and drops the last incomplete one.
    static func reorder(
        _ order: inout [Int], labels: [UInt8], batchSize: Int, classesPerBatch: Int, using generator: inout SeededGenerator
    ) {
        let chunkSize = batchSize / classesPerBatch
        // Stable: samples of one class keep the permutation's order.
        let sorted = order.enumerated().sorted { (labels[$0.element], $0.offset) < (labels[$1.element], $1.offset) }.map(\.element)
        var chunks = Array(0..<sorted.count / chunkSize)
        Trainer.shuffle(&chunks, using: &generator)
        order = chunks.flatMap { sorted[$0 * chunkSize..<($0 + 1) * chunkSize] }
    }
}
