import StrataCore

/// Why a journal or checkpoint operation failed. It names the file involved and, for SQLite
/// failures, carries SQLite's result code and message, so an operator reading the name node's log
/// knows which file to look at and what went wrong.
public struct JournalError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// SQLite returned an error (disk full, I/O error, a locked or damaged database).
        case sqlite = "SQLite error"
        /// A system call on a journal file failed.
        case io = "I/O error"
        /// The database or an image has a format version this build does not know.
        case unsupportedVersion = "unsupported format version"
        /// The database is not a Strata journal, or holds edits that cannot be right (a gap).
        case invalidDatabase = "invalid journal database"
        /// A checkpoint image failed verification.
        case corruptImage = "corrupt checkpoint image"
        /// The database says edits were folded into a checkpoint image that is not there.
        case missingImage = "missing checkpoint image"
        /// A record is larger than `JournalLimits.maximumRecordBytes`.
        case recordTooLarge = "record too large"
        /// The caller asked for something impossible (a checkpoint beyond the last edit, say).
        case invalidArgument = "invalid argument"
        /// Another journal (in this or another process) has the directory open.
        case directoryInUse = "journal directory in use"
        /// A commit failed earlier; the journal accepts nothing more until it is reopened.
        case failed = "journal failed"
        /// The journal was closed.
        case closed = "journal closed"
    }

    public var kind: Kind
    public var detail: String
    /// The file (database, image or directory) the error is about.
    public var path: String?
    /// SQLite's extended result code, for `.sqlite` errors.
    public var sqliteCode: Int32?

    public init(_ kind: Kind, _ detail: String, path: String? = nil, sqliteCode: Int32? = nil) {
        self.kind = kind
        self.detail = detail
        self.path = path
        self.sqliteCode = sqliteCode
    }

    init(_ error: SystemCallError) {
        self.init(.io, error.description, path: error.path)
    }

    public var description: String {
        var text = kind.rawValue
        if let path { text += " in \(path)" }
        text += ": " + detail
        if let sqliteCode { text += " (SQLite code \(sqliteCode))" }
        return text
    }
}
