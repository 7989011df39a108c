#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where Strata's services get the time, passed in rather than read directly, so that every
/// timeout, lease, heartbeat and retry decision can be tested on a manual clock without sleeping.
///
/// Two time lines, never mixed:
/// - `now` is monotonic: it never steps, whatever NTP or a resumed VM do to the wall clock. Every
///   duration and deadline (lease limits, heartbeat timeouts, retry windows, schedules) is measured
///   on it.
/// - `wallTimeMs` is the wall clock, for what users read: modification and access times, dates in
///   reports. No decision is ever made on it.
///
/// (The name shadows the standard library's `Clock` protocol in modules that import StrataCore;
/// Strata's services use this one.)
public protocol Clock: Sendable {
    /// The current instant on the monotonic time line.
    var now: MonotonicInstant { get }
    /// Milliseconds since the Unix epoch, for times shown to users.
    var wallTimeMs: Int64 { get }
    /// Suspends until `deadline` on this clock's monotonic time line. Throws `CancellationError`
    /// if the task is cancelled first.
    func sleep(until deadline: MonotonicInstant) async throws
}

extension Clock {
    /// Suspends for `duration` on this clock.
    public func sleep(for duration: Duration) async throws {
        try await sleep(until: now + duration)
    }

    /// Suspends for `milliseconds` on this clock.
    public func sleep(milliseconds: Int64) async throws {
        try await sleep(until: now.advanced(byMilliseconds: milliseconds))
    }
}

/// A point on a monotonic time line: nanoseconds since an arbitrary origin (for the system clock,
/// the machine's boot). Only differences between instants of one clock mean anything.
public struct MonotonicInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) {
        self.nanoseconds = nanoseconds
    }

    /// The instant `milliseconds` after the clock's origin (tests use small ones).
    public static func milliseconds(_ milliseconds: Int64) -> MonotonicInstant {
        MonotonicInstant(nanoseconds: milliseconds * 1_000_000)
    }

    /// The clock's origin.
    public static let zero = MonotonicInstant(nanoseconds: 0)

    public func advanced(byMilliseconds milliseconds: Int64) -> MonotonicInstant {
        MonotonicInstant(nanoseconds: nanoseconds + milliseconds * 1_000_000)
    }

    /// Whole milliseconds from `earlier` to this instant (negative if `earlier` is later).
    public func milliseconds(since earlier: MonotonicInstant) -> Int64 {
        (nanoseconds - earlier.nanoseconds) / 1_000_000
    }

    public static func < (lhs: MonotonicInstant, rhs: MonotonicInstant) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }

    public static func + (lhs: MonotonicInstant, rhs: Duration) -> MonotonicInstant {
        let (seconds, attoseconds) = rhs.components
        return MonotonicInstant(nanoseconds: lhs.nanoseconds + seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    public static func - (lhs: MonotonicInstant, rhs: MonotonicInstant) -> Duration {
        .nanoseconds(lhs.nanoseconds - rhs.nanoseconds)
    }

    public var description: String { "\(Double(nanoseconds) / 1e9)s" }
}

/// The machine's clocks: `CLOCK_MONOTONIC` for `now`, `CLOCK_REALTIME` for `wallTimeMs`, and
/// `Task.sleep` for waits.
public struct SystemClock: Clock {
    public init() {}

    public var now: MonotonicInstant {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return MonotonicInstant(nanoseconds: Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
    }

    public var wallTimeMs: Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }

    public func sleep(until deadline: MonotonicInstant) async throws {
        let remaining = deadline.nanoseconds - now.nanoseconds
        if remaining > 0 {
            try await Task.sleep(nanoseconds: UInt64(remaining))
        } else {
            try Task.checkCancellation()
        }
    }
}
