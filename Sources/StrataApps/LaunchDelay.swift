import StrataCore

/// An app's launch backoff, as Marathon's `RateLimiter` keeps it (docs/backoff.md): the first
/// failure delays launches by `backoffSeconds`, each further failure multiplies the delay by
/// `backoffFactor`, never past `maxLaunchDelaySeconds`. So after `n` failures the delay is
/// `min(maxLaunchDelaySeconds, backoffSeconds × backoffFactor^(n-1))`.
///
/// It belongs to one configuration of the app (a new version starts without delay); a launch
/// moves its reference time forward, and once `maxLaunchDelaySeconds` pass after the reference
/// time with no new failure, the delay is dropped.
public struct LaunchDelay: Sendable, Hashable {
    public var configVersion: AppVersion
    /// The last failure (or launch) the delay counts from.
    public var referenceTime: MonotonicInstant
    public var delayMs: Int64
    public var maximumDelayMs: Int64
    /// Failures counted since the delay began.
    public var failures: Int

    /// Launches may resume at this instant.
    public var deadline: MonotonicInstant { referenceTime.advanced(byMilliseconds: delayMs) }

    /// The delay after a first failure.
    public static func first(for app: AppDefinition, configVersion: AppVersion, now: MonotonicInstant) -> LaunchDelay {
        let maximum = Int64(app.maxLaunchDelaySeconds) * 1000
        return LaunchDelay(
            configVersion: configVersion, referenceTime: now, delayMs: min(Int64(app.backoffSeconds) * 1000, maximum),
            maximumDelayMs: maximum, failures: 1)
    }

    /// The delay after one more failure.
    public func increased(for app: AppDefinition, now: MonotonicInstant) -> LaunchDelay {
        var next = self
        next.referenceTime = now
        next.delayMs = min(maximumDelayMs, Int64((Double(delayMs) * app.backoffFactor).rounded(.down)))
        next.failures += 1
        return next
    }

    /// Whether the delay has run out its reset time (`RateLimiter.cleanUpOverdueDelays`).
    public func isOverdue(now: MonotonicInstant) -> Bool {
        now > referenceTime.advanced(byMilliseconds: maximumDelayMs)
    }
}
