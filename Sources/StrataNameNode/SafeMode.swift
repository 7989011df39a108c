import Foundation
import StrataCore

/// Safe mode as decisions: whether the name node refuses changes, and when start-up safe mode
/// ends. The name node (the shell) counts reported blocks a chunk at a time and hands the counts
/// in; this type says when enough are reported (HDFS `dfs.namenode.safemode.threshold-pct`) and,
/// after the extension (HDFS `dfs.namenode.safemode.extension`), that safe mode ends.
public struct SafeMode {
    public enum Mode: Equatable, Sendable {
        case off
        /// Entered at start-up; ends when enough blocks are reported.
        case startup
        /// Entered by an administrator; ends only when one says so.
        case manual
    }

    public struct Settings: Sendable {
        /// Fraction of complete blocks that must have a reported replica.
        public var threshold: Double = 0.999
        /// How long the threshold must have been met before start-up safe mode ends.
        public var extensionMs: Int64 = 0
        public init() {}
    }

    public private(set) var mode: Mode
    public let settings: Settings
    /// The last finished count of complete blocks and of those with a reported replica.
    public private(set) var lastCount: (reported: Int, total: Int)?
    /// When a finished count first met the threshold (the extension runs from then).
    private var thresholdMetAt: MonotonicInstant?

    /// Starts in start-up safe mode when the namespace has blocks whose replicas must be reported.
    public init(hasBlocks: Bool, settings: Settings) {
        self.mode = hasBlocks ? .startup : .off
        self.settings = settings
    }

    public var isOn: Bool { mode != .off }

    /// Whether the name node still needs block counts to decide.
    public var needsCount: Bool { mode == .startup }

    /// An administrator turns safe mode on or off.
    public mutating func set(manual on: Bool) {
        mode = on ? .manual : .off
        thresholdMetAt = nil
    }

    /// A finished count of the namespace's complete blocks: returns true when start-up safe mode
    /// ends with it.
    public mutating func counted(reported: Int, total: Int, now: MonotonicInstant) -> Bool {
        lastCount = (reported, total)
        guard mode == .startup else { return false }
        guard total == 0 || Double(reported) >= Double(total) * settings.threshold else {
            thresholdMetAt = nil
            return false
        }
        let metAt = thresholdMetAt ?? now
        thresholdMetAt = metAt
        guard now.milliseconds(since: metAt) >= settings.extensionMs else { return false }
        mode = .off
        return true
    }

    /// Why changes are refused, for the `SafeModeException` message (as HDFS words it).
    public var report: String {
        switch mode {
        case .off: return ""
        case .manual: return "It was turned on manually. Use \"strata dfsadmin safemode leave\" to turn safe mode off."
        case .startup:
            guard let (reported, total) = lastCount else {
                return "The reported blocks are being counted against the threshold "
                    + "\(String(format: "%.4f", settings.threshold)) of total blocks."
            }
            let needed = Int((Double(total) * settings.threshold).rounded(.up)) - reported
            if needed <= 0 {
                return "The reported blocks \(reported) has reached the threshold \(String(format: "%.4f", settings.threshold)) "
                    + "of total blocks \(total). Safe mode will be turned off after the extension."
            }
            return "The reported blocks \(reported) needs additional \(needed) blocks to reach the threshold "
                + "\(String(format: "%.4f", settings.threshold)) of total blocks \(total)."
        }
    }
}
