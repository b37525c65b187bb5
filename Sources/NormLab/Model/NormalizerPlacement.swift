/// Where a norm slot sits relative to the ReLU after a convolution.
public enum NormalizerPlacement: String, Codable, Sendable, CaseIterable {
    /// conv → norm → ReLU (the default, as in the batch norm and group norm papers).
    case before
    /// conv → ReLU → norm.
    case after
}
