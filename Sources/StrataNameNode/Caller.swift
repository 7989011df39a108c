/// Who is making a call, as the permission checks see it.
public struct Caller: Sendable, Equatable {
    public var user: String
    public var groups: [String]

    public init(user: String, groups: [String]) {
        self.user = user
        self.groups = groups
    }
}

/// Read, write and execute bits, as in a POSIX mode.
public struct FileAccess: OptionSet, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let execute = FileAccess(rawValue: 1)
    public static let write = FileAccess(rawValue: 2)
    public static let read = FileAccess(rawValue: 4)
    public static let all: FileAccess = [.read, .write, .execute]
    public static let readExecute: FileAccess = [.read, .execute]
    public static let writeExecute: FileAccess = [.write, .execute]

    /// HDFS's names for the access in a permission-denied message.
    public var description: String {
        switch self {
        case .read: "READ"
        case .write: "WRITE"
        case .execute: "EXECUTE"
        case .readExecute: "READ_EXECUTE"
        case .writeExecute: "WRITE_EXECUTE"
        case .all: "ALL"
        default: "ACCESS(\(rawValue))"
        }
    }
}

/// `rwxr-xr-x` style text for a mode, with the file-type letter HDFS prints.
public func permissionString(_ mode: UInt16, isDirectory: Bool) -> String {
    var text = isDirectory ? "d" : "-"
    let letters: [Character] = ["r", "w", "x"]
    for shift in stride(from: 6, through: 0, by: -3) {
        for bit in 0..<3 {
            let mask = UInt16(4 >> bit) << UInt16(shift)
            text.append(mode & mask != 0 ? letters[bit] : "-")
        }
    }
    if mode & 0o1000 != 0 {
        let last = text.removeLast()
        text.append(last == "x" ? "t" : "T")
    }
    return text
}
