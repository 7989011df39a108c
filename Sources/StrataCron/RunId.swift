/// The id of a scheduled run, derived only from the job's name and the run's scheduled time, so
/// that the service, however often it restarts, names a run the same way and can see it already
/// started it.
///
/// Text form: the job name with every byte outside `A-Z a-z 0-9 . _ -` percent-encoded, `@`, and
/// the scheduled time in UTC as `YYYYMMDDThhmmssZ` (`YYYYMMDDThhmmss.fffZ` when it has
/// milliseconds), e.g. `nightly%20compaction@20260309T073000Z`. It has no `/` or `:`, so it can
/// name a file on the DFS, and it parses back.
public struct RunId: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let jobName: String
    /// The scheduled time, milliseconds since the Unix epoch.
    public let scheduledMs: Int64

    public init(jobName: String, scheduledMs: Int64) {
        precondition(!jobName.isEmpty, "a job has a name")
        precondition((0...RepeatingInterval.lastInstantMs).contains(scheduledMs), "a scheduled time is between 1970 and the end of \(CronLimits.lastYear)")
        self.jobName = jobName
        self.scheduledMs = scheduledMs
    }

    public var description: String {
        var name = ""
        for byte in jobName.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                name.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                name.unicodeScalars.append("%")
                name.unicodeScalars.append(hex[Int(byte >> 4)])
                name.unicodeScalars.append(hex[Int(byte & 0x0F)])
            }
        }
        return name + "@" + formatWallTime(scheduledMs, dateSeparator: "", timeSeparator: "") + "Z"
    }

    /// Parses the text form back; `nil` if `text` is not one.
    public init?(_ text: String) {
        guard let at = text.lastIndex(of: "@") else { return nil }
        var nameBytes: [UInt8] = []
        var encoded = Array(text[..<at].utf8)[...]
        while let byte = encoded.popFirst() {
            if byte == UInt8(ascii: "%") {
                guard encoded.count >= 2, let value = UInt8(String(decoding: encoded.prefix(2), as: UTF8.self), radix: 16) else { return nil }
                nameBytes.append(value)
                encoded = encoded.dropFirst(2)
            } else {
                nameBytes.append(byte)
            }
        }
        guard let name = String(validating: nameBytes, as: UTF8.self), !name.isEmpty else { return nil }
        // The time: YYYYMMDDThhmmss[.fff]Z, read back through the ISO start parser.
        let time = Array(text[text.index(after: at)...])
        guard time.count == 16 || time.count == 20, time.last == "Z", time[8] == "T" else { return nil }
        let digits = time.map(String.init)
        var iso = digits[0..<4].joined() + "-" + digits[4..<6].joined() + "-" + digits[6..<8].joined() + "T"
        iso += digits[9..<11].joined() + ":" + digits[11..<13].joined() + ":" + digits[13..<15].joined()
        if time.count == 20 {
            guard time[15] == "." else { return nil }
            iso += digits[15..<19].joined()
        }
        guard let start = try? IsoStart.parse(iso + "Z"), (0...RepeatingInterval.lastInstantMs).contains(start.wallMs) else { return nil }
        self.init(jobName: name, scheduledMs: start.wallMs)
        // Only the canonical form is a run id (no `%41` for `A`, no `.000`).
        guard description == text else { return nil }
    }

    public static func < (lhs: RunId, rhs: RunId) -> Bool {
        (lhs.jobName, lhs.scheduledMs) < (rhs.jobName, rhs.scheduledMs)
    }
}
