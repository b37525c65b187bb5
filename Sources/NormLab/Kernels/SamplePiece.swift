/// Samples `first..<first + count` of a batch of `batch`, when a training step takes the batch
/// through the network a piece at a time, forward and backward (`NetworkEngine.pieceSize`), or
/// shares it out between lanes (`NetworkLanes`).
///
/// A parameter's gradient sums over the whole batch, so each layer's backward pass for a piece
/// adds the piece's terms to the partial sums the pieces before it left, in the same order as
/// one pass over the whole batch: the gradients have the same bits either way. Pieces come in
/// order; each starts where the last one ended.
struct SamplePiece: Equatable {
    var first: Int
    var count: Int
    var batch: Int

    /// The whole batch as one piece.
    static func whole(_ batch: Int) -> SamplePiece { SamplePiece(first: 0, count: batch, batch: batch) }

    /// Whether no piece came before this one: the sums start from zero.
    var isFirst: Bool { first == 0 }
    /// Whether this piece completes the batch: the sums are final.
    var isLast: Bool { first + count == batch }
    var samples: Range<Int> { first..<first + count }
}

/// Copies `samples` of `images` [N, ...] into `target`, shaped [samples.count, ...].
func copySamples(_ samples: Range<Int>, of images: Tensor, into target: inout Tensor) {
    var shape = images.shape
    let size = images.count / shape[0]
    shape[0] = samples.count
    target.reshape(to: shape)
    images.scalars.withUnsafeBufferPointer { source in
        target.scalars.withUnsafeMutableBufferPointer { target in
            target.baseAddress!.update(from: source.baseAddress! + samples.lowerBound * size, count: samples.count * size)
        }
    }
}
