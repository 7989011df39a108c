import StrataApps
import StrataCompute
import StrataCore
import Testing

/// Launch backoff after failures, and health checks' grace period and threshold, on explicit
/// instants.
struct BackoffAndHealthTests {
    let webId = PathId("/shop/web")
    let start = MonotonicInstant.milliseconds(1_000)

    @Test func theDelayGrowsByTheFactorUpToItsCap() {
        var app = AppDefinition.web()
        app.backoffSeconds = 1
        app.backoffFactor = 2
        app.maxLaunchDelaySeconds = 10
        let version = AppVersion(millisecondsSinceEpoch: 1)
        var delay = LaunchDelay.first(for: app, configVersion: version, now: start)
        var delays = [delay.delayMs]
        for _ in 0..<6 {
            delay = delay.increased(for: app, now: start)
            delays.append(delay.delayMs)
        }
        #expect(delays == [1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000])
        #expect(delay.failures == 7)
        // Marathon's defaults: 1 s × 1.15 per failure, at most 300 s.
        var defaults = LaunchDelay.first(for: .web(), configVersion: version, now: start)
        for _ in 0..<50 { defaults = defaults.increased(for: .web(), now: start) }
        #expect(defaults.delayMs == 300_000)
        #expect(LaunchDelay.first(for: .web(), configVersion: version, now: start).increased(for: .web(), now: start).delayMs == 1_150)
        // Reset once the maximum passes without a failure.
        #expect(!delay.isOverdue(now: start.advanced(byMilliseconds: 10_000)))
        #expect(delay.isOverdue(now: start.advanced(byMilliseconds: 10_001)))
    }

    @Test func aFailingInstanceIsReplacedAfterAGrowingDelay() throws {
        var app = AppDefinition.web(instances: 1, healthChecks: false)
        app.backoffSeconds = 2
        app.backoffFactor = 2
        app.maxLaunchDelaySeconds = 5
        var harness = LauncherHarness()
        try harness.absorb(harness.state.deploy([app], deploymentId: "d", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        var waits: [Int64] = []
        for _ in 0..<4 {
            let instance = try #require(harness.active(webId).first)
            harness.events.removeAll()
            let failed = harness.state.instanceUpdate(
                InstanceChange(instanceId: instance.id, state: .failed, atMs: harness.wallTimeMs), now: harness.now, wallTimeMs: harness.wallTimeMs)
            harness.absorb(failed)
            #expect(harness.active(webId).isEmpty, "no relaunch before the delay")
            // Tick every 100 ms until the replacement is launched.
            let failedAt = harness.now
            while harness.active(webId).isEmpty {
                harness.advance(bySeconds: 0.1)
                harness.absorb(harness.state.tick(now: harness.now, wallTimeMs: harness.wallTimeMs))
            }
            waits.append(harness.now.milliseconds(since: failedAt))
        }
        #expect(waits == [2_000, 4_000, 5_000, 5_000])
        // Killed (not failed) instances are replaced at once.
        let instance = try #require(harness.active(webId).first)
        harness.advance(bySeconds: 100)
        harness.absorb(harness.state.tick(now: harness.now, wallTimeMs: harness.wallTimeMs))
        #expect(harness.state.launchDelays[webId] == nil, "reset after the maximum delay passed without failures")
        harness.absorb(harness.state.instanceUpdate(
            InstanceChange(instanceId: instance.id, state: .killed, atMs: harness.wallTimeMs), now: harness.now, wallTimeMs: harness.wallTimeMs))
        #expect(harness.active(webId).count == 1)
        #expect(harness.state.launchDelays[webId] == nil)
    }

    @Test func aNewVersionStartsWithoutTheOldBackoff() throws {
        var harness = LauncherHarness()
        try harness.absorb(harness.state.deploy([.web(instances: 1, healthChecks: false)], deploymentId: "d", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        let instance = try #require(harness.active(webId).first)
        harness.absorb(harness.state.instanceUpdate(
            InstanceChange(instanceId: instance.id, state: .failed, atMs: harness.wallTimeMs), now: harness.now, wallTimeMs: harness.wallTimeMs))
        #expect(harness.state.launchDelays[webId] != nil)
        var fixed = harness.state.apps[webId]!
        fixed.cmd = "serve --fixed $PORT0"
        try harness.absorb(harness.state.deploy([fixed], deploymentId: "fix", force: true, now: harness.now, wallTimeMs: harness.wallTimeMs))
        #expect(harness.state.launchDelays[webId] == nil)
        #expect(harness.active(webId).count == 1)
    }

    @Test func failuresWithinTheGracePeriodBeforeAFirstPassDoNotCount() {
        var tracker = HealthTracker()
        var check = HealthCheck(protocol: .http)
        check.gracePeriodSeconds = 30
        check.maxConsecutiveFailures = 2
        let checks = [check]
        func result(_ passed: Bool, atSecond second: Int64) -> HealthTracker.Verdict {
            tracker.record(
                instanceId: "i", checkIndex: 0, of: checks, passed: passed, runningSince: start, now: start.advanced(byMilliseconds: second * 1000))
        }
        // Within the grace period: ignored, however many.
        for second in [1, 10, 20, 29] as [Int64] { #expect(result(false, atSecond: second) == .unchanged) }
        #expect(tracker.health(of: "i", check: 0) == nil)
        #expect(tracker.isHealthy("i", checkCount: 1) == nil)
        // After it: counted; Marathon kills on the failure after `maxConsecutiveFailures`.
        #expect(result(false, atSecond: 31) == .healthChanged(isHealthy: false))
        #expect(result(false, atSecond: 32) == .unchanged)
        #expect(tracker.health(of: "i", check: 0)?.consecutiveFailures == 2)
        #expect(result(false, atSecond: 33) == .kill(cause: "3 consecutive health check failures"))
    }

    @Test func aFirstPassEndsTheGracePeriodAndAPassResetsTheCount() {
        var tracker = HealthTracker()
        var check = HealthCheck(protocol: .tcp)
        check.maxConsecutiveFailures = 1
        let checks = [check]
        #expect(tracker.record(instanceId: "i", checkIndex: 0, of: checks, passed: true, runningSince: start, now: start) == .healthChanged(isHealthy: true))
        #expect(tracker.record(instanceId: "i", checkIndex: 0, of: checks, passed: false, runningSince: start, now: start.advanced(byMilliseconds: 1000))
            == .healthChanged(isHealthy: false))
        #expect(tracker.record(instanceId: "i", checkIndex: 0, of: checks, passed: true, runningSince: start, now: start.advanced(byMilliseconds: 2000))
            == .healthChanged(isHealthy: true))
        #expect(tracker.health(of: "i", check: 0)?.consecutiveFailures == 0)
        #expect(tracker.record(instanceId: "i", checkIndex: 0, of: checks, passed: false, runningSince: start, now: start.advanced(byMilliseconds: 3000))
            == .healthChanged(isHealthy: false))
        #expect(tracker.record(instanceId: "i", checkIndex: 0, of: checks, passed: false, runningSince: start, now: start.advanced(byMilliseconds: 4000))
            == .kill(cause: "2 consecutive health check failures"))
        // A task that is not running yet cannot fail a check.
        #expect(tracker.record(instanceId: "j", checkIndex: 0, of: checks, passed: false, runningSince: nil, now: start) == .unchanged)
    }

    @Test func mesosLevelChecksKillWhenTheCountReachesTheMaximum() {
        var tracker = HealthTracker()
        var check = HealthCheck(protocol: .mesosHTTP)
        check.gracePeriodSeconds = 0
        check.maxConsecutiveFailures = 0
        #expect(tracker.record(instanceId: "i", checkIndex: 0, of: [check], passed: false, runningSince: start, now: start.advanced(byMilliseconds: 1))
            == .kill(cause: "1 consecutive health check failures"))
        check.protocol = .http
        #expect(tracker.record(instanceId: "k", checkIndex: 0, of: [check], passed: false, runningSince: start, now: start.advanced(byMilliseconds: 1))
            == .healthChanged(isHealthy: false))
        for second in 2...20 as ClosedRange<Int64> {
            #expect(tracker.record(instanceId: "k", checkIndex: 0, of: [check], passed: false, runningSince: start, now: start.advanced(byMilliseconds: second))
                == .unchanged, "HTTP with 0 never kills")
        }
    }

    @Test func anInstanceFailingItsChecksIsKilledAndReplacedAfterBackoff() throws {
        var app = AppDefinition.web(instances: 1)
        app.healthChecks[0].gracePeriodSeconds = 10
        app.healthChecks[0].maxConsecutiveFailures = 2
        var harness = LauncherHarness()
        try harness.absorb(harness.state.deploy([app], deploymentId: "d", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        while harness.step() {}
        #expect(harness.state.deployments.isEmpty)
        let instance = try #require(harness.active(webId).first)
        #expect(instance.isHealthy == true)
        harness.advance(bySeconds: 60)
        var killedAt: Int?
        for attempt in 1...3 {
            harness.advance(bySeconds: 1)
            let outcome = harness.state.healthResult(instanceId: instance.id, checkIndex: 0, passed: false, now: harness.now, wallTimeMs: harness.wallTimeMs)
            harness.absorb(outcome)
            if outcome.actions.contains(.kill(instanceId: instance.id, agentId: "agent-1", reason: .failedHealthChecks)) {
                killedAt = attempt
                break
            }
        }
        #expect(killedAt == 3)
        #expect(harness.state.instances[instance.id]?.isHealthy == false)
        #expect(harness.state.instances[instance.id]?.isBeingKilled == true)
        // The kill counts against the app's backoff, so the replacement waits a second.
        harness.step()
        #expect(harness.active(webId).isEmpty)
        harness.advance(bySeconds: 1.1)
        harness.absorb(harness.state.tick(now: harness.now, wallTimeMs: harness.wallTimeMs))
        #expect(harness.active(webId).count == 1)
    }

    @Test func aCommandCheckReportedByTheAgentChangesHealthButAsksForNoKill() throws {
        var app = AppDefinition.web(instances: 1)
        app.healthChecks[0].protocol = .command
        app.healthChecks[0].command = "test -e ok"
        app.healthChecks[0].gracePeriodSeconds = 0
        app.healthChecks[0].maxConsecutiveFailures = 1
        var harness = LauncherHarness()
        try harness.absorb(harness.state.deploy([app], deploymentId: "d", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        let instance = try #require(harness.state.instances.values.first)
        harness.absorb(harness.state.instanceUpdate(
            InstanceChange(instanceId: instance.id, state: .running, agentId: "agent-1", host: "h", ports: [31000], atMs: harness.wallTimeMs),
            now: harness.now, wallTimeMs: harness.wallTimeMs))
        harness.absorb(harness.state.healthResult(instanceId: instance.id, checkIndex: 0, passed: true, byAgent: true, now: harness.now, wallTimeMs: harness.wallTimeMs))
        #expect(harness.state.instances[instance.id]?.isHealthy == true)
        harness.advance(bySeconds: 1)
        // A failure at the count that would kill: the agent kills it; the launcher records it.
        let failed = harness.state.healthResult(
            instanceId: instance.id, checkIndex: 0, passed: false, cause: "exit 1", byAgent: true, now: harness.now, wallTimeMs: harness.wallTimeMs)
        #expect(!failed.actions.contains { if case .kill = $0 { true } else { false } })
        harness.absorb(failed)
        #expect(harness.state.instances[instance.id]?.isHealthy == false)
        #expect(harness.state.instances[instance.id]?.isBeingKilled == false)
    }
}
