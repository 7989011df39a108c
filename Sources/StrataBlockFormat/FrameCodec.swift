/// How a frame's payload is stored.
public enum FrameCodec: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// The payload is the raw bytes themselves (used when compression would not save enough).
    case raw = 0
    /// The payload is one zstd frame holding the raw bytes.
    case zstd = 1

    public var description: String {
        switch self {
        case .raw: "raw"
        case .zstd: "zstd"
        }
    }
}
