/// Why a tar archive could not be read: the message names the entry after which (or inside
/// which) it went wrong.
public struct TarError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// Damaged or cut short: a bad checksum, a field that is not a number, a malformed pax record.
        case corrupt
        /// Well formed, but not something Strata reads: a sparse file, a name that is not UTF-8.
        case unsupported
        /// An extended header over `TarReader.maximumExtendedHeaderBytes`.
        case tooLarge
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
