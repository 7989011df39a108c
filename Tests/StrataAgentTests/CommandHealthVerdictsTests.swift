import StrataAgent
import StrataCompute
import StrataCore
import Testing

/// The agent's verdicts on a command health check, on given instants (Mesos' health checker:
/// delay, interval, grace period that ends at the first pass, kill at the count of failures).
struct CommandHealthVerdictsTests {
    static func at(_ milliseconds: Int64) -> MonotonicInstant { MonotonicInstant.zero.advanced(byMilliseconds: milliseconds) }

    static func check(grace: Int64 = 10_000, interval: Int64 = 1_000, delay: Int64 = 500, failures: Int = 3) -> CommandHealthCheck {
        CommandHealthCheck(command: "true", gracePeriodMs: grace, intervalMs: interval, timeoutMs: 100, delayMs: delay, maxConsecutiveFailures: failures)
    }

    @Test func checksStartAfterTheDelayAndFollowTheInterval() {
        var verdicts = CommandHealthVerdicts(check: Self.check(), runningSince: Self.at(0))
        #expect(verdicts.nextCheck == Self.at(500))
        _ = verdicts.record(passed: true, startedAt: Self.at(500))
        #expect(verdicts.nextCheck == Self.at(1_500))
        // A check that started late moves the next one with it.
        _ = verdicts.record(passed: true, startedAt: Self.at(1_800))
        #expect(verdicts.nextCheck == Self.at(2_800))
    }

    @Test func failuresWithinTheGracePeriodAreIgnoredUntilTheFirstPass() {
        var verdicts = CommandHealthVerdicts(check: Self.check(), runningSince: Self.at(0))
        for second in 1...9 {
            #expect(verdicts.record(passed: false, startedAt: Self.at(Int64(second) * 1_000)).isEmpty)
        }
        #expect(verdicts.healthy == nil && verdicts.consecutiveFailures == 0)
        #expect(verdicts.record(passed: true, startedAt: Self.at(9_500)) == [.report(healthy: true)])
        // After the first pass the grace period is over: a failure counts at once.
        #expect(verdicts.record(passed: false, startedAt: Self.at(9_800)) == [.report(healthy: false)])
        #expect(verdicts.consecutiveFailures == 1)
    }

    @Test func failuresPastTheGracePeriodCountAndKillAtTheMaximum() {
        var verdicts = CommandHealthVerdicts(check: Self.check(grace: 1_000, failures: 3), runningSince: Self.at(0))
        #expect(verdicts.record(passed: false, startedAt: Self.at(1_000)) == [.report(healthy: false)])
        #expect(verdicts.record(passed: false, startedAt: Self.at(2_000)).isEmpty)
        #expect(verdicts.record(passed: false, startedAt: Self.at(3_000)) == [.kill(failures: 3)])
    }

    @Test func aPassResetsTheCountAndOnlyChangesAreReported() {
        var verdicts = CommandHealthVerdicts(check: Self.check(grace: 0, failures: 2), runningSince: Self.at(0))
        #expect(verdicts.record(passed: true, startedAt: Self.at(500)) == [.report(healthy: true)])
        #expect(verdicts.record(passed: true, startedAt: Self.at(1_500)).isEmpty)
        #expect(verdicts.record(passed: false, startedAt: Self.at(2_500)) == [.report(healthy: false)])
        #expect(verdicts.record(passed: true, startedAt: Self.at(3_500)) == [.report(healthy: true)])
        #expect(verdicts.consecutiveFailures == 0)
        #expect(verdicts.record(passed: false, startedAt: Self.at(4_500)) == [.report(healthy: false)])
        #expect(verdicts.record(passed: false, startedAt: Self.at(5_500)) == [.kill(failures: 2)])
    }

    @Test func zeroFailuresAllowedKillsAtTheFirstCountedFailure() {
        var verdicts = CommandHealthVerdicts(check: Self.check(grace: 0, failures: 0), runningSince: Self.at(0))
        #expect(verdicts.record(passed: false, startedAt: Self.at(500)) == [.report(healthy: false), .kill(failures: 1)])
    }
}
