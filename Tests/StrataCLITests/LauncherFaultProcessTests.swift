import Foundation
import Glibc
import Testing

/// Faults under the service launcher on real processes (issue 15): a name node, a data node,
/// `strata master` (agents lost after 3 s), three `strata agent`s, each on an address of its own,
/// and `strata launcher`, each a process of its own (`LauncherProcessCluster`). Apps run
/// Python's `http.server` on `$HOST:$PORT0` as `nobody` with an HTTP health check every second;
/// what the launcher says (`/v2/apps/{id}/tasks`, `/v2/deployments`) is checked against what the
/// master ran (`/api/v1/services`, by the launcher's labels).
@Suite(.serialized) struct LauncherFaultProcessTests {
    /// An instance killed with SIGKILL (its process, not its agent) fails; after the app's 1 s
    /// backoff the launcher replaces it with a new instance that becomes healthy, and leaves the
    /// app's other instance alone.
    @Test func anInstanceWhoseProcessIsKilledIsReplacedAndTheOtherIsLeftAlone() throws {
        let launcher = try LauncherProcessCluster()
        let app = "/killed"
        try launcher.createApp(Self.webApp(app, instances: 2))
        try launcher.waitUntilSettled(app, instances: 2)
        let before = try launcher.tasks(of: app)
        let victim = before[0]
        let survivor = before[1]
        let victimService = try #require(try launcher.services(of: app, activeOnly: true).first { $0.instanceId == victim.id })
        let processes = launcher.processes(of: victimService)
        try #require(!processes.isEmpty, "no process in the cgroups of \(victimService)")

        let killed = Date()
        for pid in processes { kill(pid, SIGKILL) }
        var mostTasks = 0
        var survivorUnhealthy = 0
        let replaced = try secondsUntil(since: killed, timeoutSeconds: 20) {
            let tasks = try launcher.tasks(of: app)
            mostTasks = max(mostTasks, tasks.count)
            if !tasks.contains(where: { $0.id == survivor.id && $0.isHealthy }) { survivorUnhealthy += 1 }
            return tasks.count == 2 && !tasks.contains { $0.id == victim.id } && tasks.allSatisfy(\.isHealthy)
        }
        let seconds = try #require(replaced, "the killed instance was not replaced by a healthy one: \(launcher.describe(app))")
        print("the killed instance's replacement was healthy \(String(format: "%.2f", seconds)) s after the kill")
        #expect(mostTasks <= 2, "the app had \(mostTasks) instances at once")
        #expect(survivorUnhealthy == 0, "the other instance was missing or unhealthy in \(survivorUnhealthy) samples")
        let after = try launcher.tasks(of: app)
        #expect(after.contains { $0.id == survivor.id }, "the other instance was replaced too: \(after)")

        // The master ran exactly one task more: the replacement, after the killed one failed.
        let services = try launcher.services(of: app)
        #expect(services.count == 3, "\(services)")
        let ended = try #require(services.first { $0.instanceId == victim.id })
        #expect(ended.jobState == "FAILED" && ended.taskState == "TASK_FAILED", "\(ended)")
        let replacement = try #require(services.first { $0.instanceId != victim.id && $0.instanceId != survivor.id })
        #expect(replacement.jobState == "RUNNING", "\(replacement)")
        // A failure counts for the backoff: the replacement waits the app's 1 s after it.
        let endedAtMs = try #require(ended.taskEndedAtMs, "\(ended)")
        #expect(replacement.submittedAtMs - endedAtMs >= 1000 - 20, "the replacement was submitted \(replacement.submittedAtMs - endedAtMs) ms after the failure: \(services)")
    }

    /// The agent of an instance killed with SIGKILL: the instance's process runs on, so its
    /// health checks still pass and the launcher keeps it until the master declares the agent
    /// lost (3 s); then its task is LOST and the launcher starts a replacement, which runs on
    /// another agent. At no time does the master run two tasks of the one-instance app.
    @Test func anInstanceOfAKilledAgentIsReplacedOnAnotherAgentOnceTheAgentIsLost() throws {
        let launcher = try LauncherProcessCluster(agents: 3, agentTimeoutSeconds: 3)
        let app = "/moved"
        try launcher.createApp(Self.webApp(app, instances: 1))
        try launcher.waitUntilSettled(app, instances: 1)
        let original = try #require(try launcher.tasks(of: app).first)
        let victimId = try #require(original.agentId)
        let victim = try launcher.agentIndex(ofId: victimId)

        let killed = Date()
        launcher.cluster.killAgent(victim)
        var mostActive = 0
        let replaced = try secondsUntil(since: killed, timeoutSeconds: 30) {
            mostActive = max(mostActive, try launcher.services(of: app, activeOnly: true).count)
            let tasks = try launcher.tasks(of: app)
            return tasks.count == 1 && tasks[0].id != original.id && tasks[0].isHealthy
        }
        let seconds = try #require(replaced, "the instance was not replaced: \(launcher.describe(app))")
        print("the lost agent's instance was replaced and healthy \(String(format: "%.2f", seconds)) s after the agent was killed")
        let replacement = try #require(try launcher.tasks(of: app).first)
        #expect(replacement.agentId != victimId, "the replacement runs on the killed agent: \(replacement)")
        #expect(replacement.host != original.host, "\(replacement) on the host of \(original)")
        #expect(mostActive <= 1, "the master ran \(mostActive) tasks of the app at once")

        let services = try launcher.services(of: app)
        #expect(services.count == 2, "\(services)")
        let lost = try #require(services.first { $0.instanceId == original.id })
        #expect(lost.taskState == "TASK_LOST", "\(lost)")
        let lostAtMs = try #require(lost.taskEndedAtMs ?? lost.jobEndedAtMs, "\(lost)")
        let started = try #require(services.first { $0.instanceId == replacement.id })
        #expect(started.submittedAtMs >= lostAtMs, "the replacement was submitted before the master declared the agent lost: \(services)")
    }

    /// An app whose command exits 1 at once, with `backoffSeconds` 1 and `backoffFactor` 2: each
    /// failure doubles the delay before the next launch, so the master sees submissions spaced
    /// by at least 1, 2 and 4 s (plus the time each run took to fail), the gaps growing.
    @Test func aFailingAppsLaunchesAreSpacedByItsBackoff() throws {
        let launcher = try LauncherProcessCluster()
        let app = "/failing"
        try launcher.createApp([
            "id": app, "cmd": "exit 1", "cpus": 0.1, "mem": 32, "instances": 1, "backoffSeconds": 1, "backoffFactor": 2,
            "maxLaunchDelaySeconds": 60,
        ])
        let launches = 4
        // Until the first `launches` have failed: the app is removed only after, so that none of
        // them is killed by the removal while it is still starting.
        let seen = try secondsUntil(timeoutSeconds: 40, intervalSeconds: 0.2) {
            try launcher.services(of: app).prefix(launches).filter { $0.jobState == "FAILED" }.count >= launches
        }
        try #require(seen != nil, "fewer than \(launches) failed launches: \(launcher.describe(app))")
        let removed = try launcher.callLauncher("DELETE", "/v2/apps\(app)")
        #expect(removed.status == 200, "\(removed.text)")

        let services = Array(try launcher.services(of: app).prefix(launches))
        #expect(services.allSatisfy { $0.jobState == "FAILED" && $0.taskState == "TASK_FAILED" }, "\(services)")
        let gapsMs = zip(services, services.dropFirst()).map { $1.submittedAtMs - $0.submittedAtMs }
        print("launches of the failing app, ms apart: \(gapsMs)")
        for (index, gap) in gapsMs.enumerated() {
            let delayMs = Int64(1000 << index)
            // At least the delay after the failure (which came after the launch), and not much
            // more: the run failing at once, its report reaching the launcher, one submission.
            #expect(gap >= delayMs - 20, "launch \(index + 2) came \(gap) ms after the one before, under the \(delayMs) ms delay")
            #expect(gap <= delayMs + 2000, "launch \(index + 2) came \(gap) ms after the one before, well over the \(delayMs) ms delay")
        }
        #expect(zip(gapsMs, gapsMs.dropFirst()).allSatisfy { $0 < $1 }, "the gaps do not grow: \(gapsMs)")
    }

    /// A rolling restart of 4 instances (each answering its health check a second after it
    /// starts, so that the rollout takes a few seconds) with `minimumHealthCapacity` 0.5 and
    /// `maximumOverCapacity` 0.5, sampled throughout: at least 2 healthy instances that are not
    /// being killed (healthy by the launcher, still active in the master), at most 6 instances
    /// by the launcher's count, 6 active tasks in the master and 6 tasks with live processes;
    /// it ends with 4 healthy instances of the new version and none of the old.
    @Test func aRollingRestartStaysWithinItsHealthAndCapacityBounds() throws {
        let launcher = try LauncherProcessCluster()
        let app = "/rolling"
        try launcher.createApp(Self.webApp(app, instances: 4, startDelaySeconds: 1, more: [
            "upgradeStrategy": ["minimumHealthCapacity": 0.5, "maximumOverCapacity": 0.5],
        ]))
        try launcher.waitUntilSettled(app, instances: 4)
        let old = try launcher.tasks(of: app)
        let oldVersion = try #require(old.first?.version)

        let restart = try launcher.callLauncher("POST", "/v2/apps\(app)/restart")
        try #require(restart.status == 200, "restart answered \(restart.status): \(restart.text)")
        var fewestHealthy = Int.max
        var mostInstances = 0
        var mostActive = 0
        var mostRunningProcesses = 0
        var samples = 0
        let done = try secondsUntil(timeoutSeconds: 60, intervalSeconds: 0.05) {
            // The master first: an instance healthy in the launcher's later answer and still
            // active in the master's earlier one was not being killed before the launcher's.
            let services = try launcher.services(of: app)
            let active = Set(services.filter { !["FINISHED", "FAILED", "KILLED"].contains($0.jobState) }.map(\.instanceId))
            let tasks = try launcher.tasks(of: app)
            let deployments = try launcher.deploymentIds()
            samples += 1
            fewestHealthy = min(fewestHealthy, tasks.count { $0.isHealthy && active.contains($0.id) })
            mostInstances = max(mostInstances, tasks.count)
            mostActive = max(mostActive, active.count)
            mostRunningProcesses = max(mostRunningProcesses, services.count { !launcher.processes(of: $0).isEmpty })
            return deployments.isEmpty && tasks.count == 4 && tasks.allSatisfy { $0.isHealthy && $0.version != oldVersion }
        }
        try #require(done != nil, "the restart did not complete: \(launcher.describe(app))")
        print("rolling restart of 4 in \(String(format: "%.1f", done!)) s, \(samples) samples: fewest healthy \(fewestHealthy),"
            + " most instances \(mostInstances), most active tasks \(mostActive), most tasks with processes \(mostRunningProcesses)")
        #expect(fewestHealthy >= 2, "only \(fewestHealthy) healthy instances at one time")
        #expect(mostInstances <= 6, "\(mostInstances) instances at one time")
        #expect(mostActive <= 6, "\(mostActive) active tasks in the master at one time")
        #expect(mostRunningProcesses <= 6, "\(mostRunningProcesses) tasks with live processes at one time")
        // The bounds were used: the rollout went below 4 healthy or above 4 in all.
        #expect(fewestHealthy < 4 || mostInstances > 4, "the samples saw no rollout")
        let final = try launcher.tasks(of: app)
        #expect(Set(final.map(\.id)).isDisjoint(with: old.map(\.id)), "old instances remain: \(final)")
        #expect(try launcher.services(of: app, activeOnly: true).count == 4)
    }

    /// The launcher killed with SIGKILL while scaling an app from 1 to 4 instances (each takes
    /// 6 s to answer its health check) and started again on the same DFS: it replays the
    /// deployment, adopts the instances the master runs, and completes it. The master never runs
    /// more than 4 tasks of the app, and gets no more than 4 submissions in all: no instance is
    /// started twice. Killed at once after the scale's answer (its new instances logged, their
    /// submissions going out or not yet), or once the master has them.
    @Test(arguments: [KillPoint.rightAfterTheAnswer, .onceTheMasterHasTheNewInstances])
    func aLauncherKilledMidDeploymentCompletesItAfterARestartWithoutDuplicates(killed: KillPoint) throws {
        let launcher = try LauncherProcessCluster()
        let app = "/resumed"
        try launcher.createApp(Self.webApp(app, instances: 1, startDelaySeconds: 6))
        try launcher.waitUntilSettled(app, instances: 1)

        let scale = try launcher.callLauncher("PUT", "/v2/apps\(app)", body: ["instances": 4])
        try #require(scale.status == 200, "scaling answered \(scale.status): \(scale.text)")
        let deploymentId = try #require((scale.json as? [String: Any])?["deploymentId"] as? String, "\(scale.text)")
        var mostActive = 0
        func sampleMaster() throws -> Int {
            let active = try launcher.services(of: app, activeOnly: true).count
            mostActive = max(mostActive, active)
            return active
        }
        if killed == .onceTheMasterHasTheNewInstances {
            let launched = try secondsUntil(timeoutSeconds: 20, intervalSeconds: 0.02) { try sampleMaster() == 4 }
            try #require(launched != nil, "the scale-up did not launch 3 instances: \(launcher.describe(app))")
        }
        launcher.killLauncher()
        let activeAtKill = try sampleMaster()

        try launcher.startLauncher()
        let deployments = try launcher.deploymentIds()
        #expect(deployments.contains(deploymentId), "the restarted launcher lost the deployment \(deploymentId): \(deployments)")
        let completed = try secondsUntil(timeoutSeconds: 40, intervalSeconds: 0.1) {
            _ = try sampleMaster()
            return try launcher.isSettled(app, instances: 4)
        }
        try #require(completed != nil, "the deployment did not complete after the restart: \(launcher.describe(app))")
        print("launcher killed with \(activeAtKill) of the app's tasks active; the deployment completed \(String(format: "%.1f", completed!)) s after its restart")

        #expect(mostActive <= 4, "the master ran \(mostActive) tasks of the app at once")
        let services = try launcher.services(of: app)
        #expect(services.count == 4, "the master got \(services.count) submissions for 4 instances: \(services)")
        #expect(Set(services.map(\.instanceId)).count == services.count, "an instance was submitted twice: \(services)")
        #expect(services.allSatisfy { $0.jobState == "RUNNING" }, "\(services)")
        let tasks = try launcher.tasks(of: app)
        #expect(Set(tasks.map(\.id)) == Set(services.map(\.instanceId)), "launcher \(tasks), master \(services)")
    }

    // MARK: - Helpers

    /// When the mid-deployment test kills the launcher.
    enum KillPoint: String, Sendable, CustomTestStringConvertible {
        case rightAfterTheAnswer
        case onceTheMasterHasTheNewInstances
        var testDescription: String { rawValue }
    }

    /// An app serving HTTP on `$HOST:$PORT0` (after `startDelaySeconds`), with an HTTP health
    /// check every second (1 s timeout, 15 s grace, killed after 3 failures) and a 1 s backoff.
    static func webApp(_ id: String, instances: Int, startDelaySeconds: Int = 0, more: [String: Any] = [:]) -> [String: Any] {
        let serve = "exec python3 -m http.server $PORT0 --bind $HOST"
        let app: [String: Any] = [
            "id": id, "cmd": startDelaySeconds > 0 ? "sleep \(startDelaySeconds); \(serve)" : serve, "cpus": 0.1, "mem": 64,
            "instances": instances, "backoffSeconds": 1,
            "healthChecks": [[
                "protocol": "HTTP", "path": "/", "portIndex": 0, "intervalSeconds": 1, "timeoutSeconds": 1, "gracePeriodSeconds": 15,
                "maxConsecutiveFailures": 3,
            ]],
        ]
        return app.merging(more) { $1 }
    }
}
