/// Softmax cross-entropy, averaged over the batch.
public enum SoftmaxCrossEntropy {
    /// The mean loss, the number of correct arg-max predictions, and dL/dlogits.
    /// - Parameters:
    ///   - logits: [N, classes].
    ///   - labels: N class indices.
    public static func evaluate(
        logits: Tensor, labels: ArraySlice<UInt8>, gradient: inout Tensor
    ) -> (loss: Double, correct: Int) {
        let n = logits.shape[0]
        var loss = 0.0
        var correct = 0
        accumulate(logits: logits, labels: labels, batchSize: n, gradient: &gradient) { sampleLoss, isCorrect in
            loss += sampleLoss
            if isCorrect { correct += 1 }
        }
        return (loss / Double(n), correct)
    }

    /// `evaluate` for some of the samples of a batch of `batchSize` (`logits` and `labels` hold
    /// theirs): hands each sample's loss, and whether it was predicted right, to `record` in
    /// order, and writes their dL/dlogits for the batch's mean loss. Adding the losses of all
    /// the batch's samples in order gives the same sum as one pass.
    static func accumulate(
        logits: Tensor, labels: ArraySlice<UInt8>, batchSize: Int, gradient: inout Tensor,
        _ record: (_ loss: Double, _ correct: Bool) -> Void
    ) {
        let (n, classes) = (logits.shape[0], logits.shape[1])
        precondition(labels.count == n && n <= batchSize)
        gradient.reshape(to: logits.shape)
        for (sample, label) in zip(0..<n, labels) {
            let row = logits.scalars[(sample * classes)..<((sample + 1) * classes)]
            // The first largest logit. NaN compares false, so NaN logits give a NaN loss (which
            // the trainer reports as divergence) rather than a trap.
            var predicted = 0
            for j in 1..<classes where row[row.startIndex + j] > row[row.startIndex + predicted] { predicted = j }
            let largest = row[row.startIndex + predicted]
            var denominator = 0.0
            for value in row { denominator += exp(Double(value - largest)) }
            let label = Int(label)
            record(log(denominator) - Double(row[row.startIndex + label] - largest), predicted == label)
            for j in 0..<classes {
                let probability = exp(Double(row[row.startIndex + j] - largest)) / denominator
                gradient.scalars[sample * classes + j] = Float((probability - (j == label ? 1 : 0)) / Double(batchSize))
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
