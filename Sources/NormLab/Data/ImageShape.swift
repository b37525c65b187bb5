/// The size of one image: channels × height × width.
public struct ImageShape: Equatable, Sendable, CustomStringConvertible {
    public var channels: Int
    public var height: Int
    public var width: Int

    public init(channels: Int, height: Int, width: Int) {
        self.channels = channels
        self.height = height
        self.width = width
    }

    public var description: String { "\(channels)×\(height)×\(width)" }
}
