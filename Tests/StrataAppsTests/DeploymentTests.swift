import Foundation
import StrataApps
import StrataCompute
import StrataCore
import Testing

/// Rolling upgrades, scaling, restarts and locks, driven event by event with the bounds sampled
/// after every one.
struct DeploymentTests {
    let webId = PathId("/shop/web")

    /// Deploys `app` and lets the cluster run until nothing is left to happen.
    func deployed(_ app: AppDefinition) throws -> LauncherHarness {
        var harness = LauncherHarness()
        try harness.absorb(harness.state.deploy(
            [app], deploymentId: harness.nextDeploymentId(), force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        while harness.step() {}
        return harness
    }

    @Test func theBoundsRoundAsMarathonDoes() {
        #expect(DeploymentPlanner.bounds(of: .web(instances: 4, minimumHealthCapacity: 0.5, maximumOverCapacity: 0)) == (2, 4))
        #expect(DeploymentPlanner.bounds(of: .web(instances: 4, minimumHealthCapacity: 1, maximumOverCapacity: 1)) == (4, 8))
        #expect(DeploymentPlanner.bounds(of: .web(instances: 3, minimumHealthCapacity: 0.7, maximumOverCapacity: 0.5)) == (3, 4))
        // Equal bounds would allow no replacement at all: one instance over is allowed.
        #expect(DeploymentPlanner.bounds(of: .web(instances: 4, minimumHealthCapacity: 1, maximumOverCapacity: 0)) == (4, 5))
    }

    @Test(arguments: [(0.5, 0.0), (1.0, 1.0), (0.0, 0.0), (0.75, 0.25)])
    func aRollingUpgradeOfFourInstancesStaysWithinItsBounds(minimumHealthCapacity: Double, maximumOverCapacity: Double) throws {
        let app = AppDefinition.web(instances: 4, minimumHealthCapacity: minimumHealthCapacity, maximumOverCapacity: maximumOverCapacity)
        var harness = try deployed(app)
        #expect(harness.state.deployments.isEmpty)
        #expect(harness.healthy(webId) == 4)
        let oldIds = Set(harness.active(webId).map(\.id))

        var upgraded = app
        upgraded.cmd = "serve --v2 $PORT0"
        harness.advance(bySeconds: 10)
        try harness.absorb(harness.state.deploy(
            [upgraded], deploymentId: harness.nextDeploymentId(), force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        let (minimumHealthy, maximumCapacity) = DeploymentPlanner.bounds(of: upgraded)
        var lowestHealthy = Int.max
        var highestTotal = 0
        var steps = 0
        repeat {
            let healthy = harness.healthy(webId)
            let total = harness.active(webId).count
            #expect(healthy >= minimumHealthy, "step \(steps): \(healthy) healthy")
            #expect(total <= maximumCapacity, "step \(steps): \(total) instances")
            lowestHealthy = min(lowestHealthy, healthy)
            highestTotal = max(highestTotal, total)
            steps += 1
        } while harness.step() && steps < 1000
        #expect(harness.state.deployments.isEmpty, "the deployment finished")
        let final = harness.active(webId)
        #expect(final.count == 4)
        #expect(final.allSatisfy { $0.configVersion == harness.state.apps[webId]!.configVersion && $0.isHealthy == true })
        #expect(oldIds.isDisjoint(with: final.map(\.id)))
        // The bounds were reached, not only respected: the upgrade used the room it had.
        #expect(lowestHealthy == minimumHealthy)
        #expect(highestTotal == min(maximumCapacity, 4 + 4))
    }

    @Test func scalingUpStartsAndScalingDownKillsTheYoungestFirst() throws {
        var harness = try deployed(.web(instances: 2, healthChecks: false))
        harness.advance(bySeconds: 1)
        try harness.absorb(harness.state.scale(
            webId, to: 5, deploymentId: harness.nextDeploymentId(), force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        #expect(harness.state.deployments.count == 1)
        #expect(harness.active(webId).count == 5)
        // Started one second apart, so the youngest are known.
        while !harness.events.isEmpty {
            harness.advance(bySeconds: 1)
            harness.step()
        }
        #expect(harness.state.deployments.isEmpty)
        let byStart = harness.active(webId).sorted { $0.startedAtMs! < $1.startedAtMs! }
        let configVersion = harness.state.apps[webId]!.configVersion

        harness.advance(bySeconds: 1)
        try harness.absorb(harness.state.scale(
            webId, to: 3, deploymentId: harness.nextDeploymentId(), force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        let killed = harness.events.compactMap { if case .killed(let id) = $0 { id } else { nil } }
        #expect(Set(killed) == Set(byStart.suffix(2).map(\.id)))
        while harness.step() {}
        #expect(harness.active(webId).count == 3)
        #expect(harness.state.deployments.isEmpty)
        // A scale changes the version but not the configuration: nothing was replaced.
        #expect(harness.state.apps[webId]!.configVersion == configVersion)
        #expect(harness.state.apps[webId]!.version! > configVersion!)
    }

    @Test func aScaleDownKillsStagingInstancesBeforeRunningOnes() {
        let version = AppVersion(millisecondsSinceEpoch: 1)
        let running = (1...3).map {
            AppInstance(id: "web.instance-\($0)", appId: webId, configVersion: version, state: .running, stagedAtMs: Int64($0), startedAtMs: Int64($0))
        }
        let staging = AppInstance(id: "web.instance-9", appId: webId, configVersion: version, state: .staging, stagedAtMs: 1)
        var app = AppDefinition.web(instances: 2, healthChecks: false)
        app.version = version
        #expect(DeploymentPlanner.scale(target: app, instances: running + [staging]).kill == ["web.instance-9", "web.instance-3"])
        app.killSelection = .oldestFirst
        #expect(DeploymentPlanner.scale(target: app, instances: running + [staging]).kill == ["web.instance-9", "web.instance-1"])
    }

    @Test func aRestartReplacesEveryInstanceWithTheSameDefinition() throws {
        var harness = try deployed(.web(instances: 2))
        let before = Set(harness.active(webId).map(\.id))
        let definition = harness.state.apps[webId]!
        harness.advance(bySeconds: 1)
        try harness.absorb(harness.state.restart(
            webId, deploymentId: harness.nextDeploymentId(), force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        while harness.step() {}
        #expect(harness.active(webId).count == 2)
        #expect(before.isDisjoint(with: harness.active(webId).map(\.id)))
        #expect(!definition.isUpgrade(to: harness.state.apps[webId]!))
        #expect(harness.state.versions[webId]!.count == 2)
    }

    @Test func aSecondChangeToALockedAppIsRefusedNamingTheBlockingDeployment() throws {
        var harness = LauncherHarness()
        try harness.absorb(harness.state.deploy(
            [.web(instances: 2)], deploymentId: "first", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        #expect(harness.state.deployments(locking: webId).map(\.id) == ["first"])
        let refused = harness.state.scale(webId, to: 5, deploymentId: "second", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs)
        #expect(throws: LauncherError.locked(deploymentIds: ["first"])) { try refused.get() }
        #expect(LauncherError.locked(deploymentIds: ["first"]).status == 409)
        #expect(LauncherError.locked(deploymentIds: []).message.hasPrefix("App is locked by one or more deployments."))
        #expect(harness.state.apps[webId]!.instances == 2)

        // Forced, the first deployment is cancelled and the second runs.
        let forced = try harness.state.scale(webId, to: 5, deploymentId: "second", force: true, now: harness.now, wallTimeMs: harness.wallTimeMs).get()
        #expect(forced.records.first == .deploymentCancelled(deploymentId: "first", atMs: harness.wallTimeMs))
        harness.absorb(forced)
        #expect(harness.state.deploymentOrder == ["second"])
        while harness.step() {}
        #expect(harness.state.deployments.isEmpty)
        #expect(harness.active(webId).count == 5)
    }

    @Test func cancellingADeploymentWithRollbackPutsTheOldConfigurationBack() throws {
        var harness = try deployed(.web(instances: 2))
        let first = harness.state.apps[webId]!
        var second = first
        second.cmd = "serve --broken $PORT0"
        harness.passHealthChecks = false
        try harness.absorb(harness.state.deploy([second], deploymentId: "stuck", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        while harness.step() {}
        // New instances never become healthy, so no old one may go: the deployment waits.
        #expect(harness.state.deploymentOrder == ["stuck"])
        #expect(harness.active(webId).count == 4)

        harness.passHealthChecks = true
        try harness.absorb(harness.state.cancel("stuck", rollback: "revert", now: harness.now, wallTimeMs: harness.wallTimeMs))
        #expect(harness.state.deployments["revert"]?.steps == [[.restart(webId)]])
        while harness.step() {}
        #expect(harness.state.deployments.isEmpty)
        #expect(harness.state.apps[webId]!.cmd == first.cmd)
        #expect(harness.active(webId).count == 2)
        #expect(harness.active(webId).allSatisfy { $0.configVersion == harness.state.apps[webId]!.configVersion && $0.isHealthy == true })
        #expect(throws: LauncherError.deploymentNotFound("stuck")) {
            try harness.state.cancel("stuck", rollback: nil, now: harness.now, wallTimeMs: harness.wallTimeMs).get()
        }
    }

    @Test func rollingBackDeploysAnOldVersionAsANewOne() throws {
        var harness = try deployed(.web(instances: 2))
        let first = harness.state.apps[webId]!
        var second = first
        second.cmd = "serve --v2 $PORT0"
        harness.advance(bySeconds: 1)
        try harness.absorb(harness.state.deploy([second], deploymentId: harness.nextDeploymentId(), force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        while harness.step() {}
        harness.advance(bySeconds: 1)
        try harness.absorb(harness.state.rollback(
            webId, to: first.version!, deploymentId: harness.nextDeploymentId(), force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        while harness.step() {}
        let current = harness.state.apps[webId]!
        #expect(current.cmd == first.cmd)
        #expect(current.version! > first.version!)
        #expect(harness.state.versions[webId]!.map(\.cmd) == [first.cmd, second.cmd, first.cmd])
        #expect(harness.active(webId).allSatisfy { $0.configVersion == current.configVersion })
        let missing = harness.state.rollback(
            webId, to: AppVersion(millisecondsSinceEpoch: 5), deploymentId: "x", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs)
        #expect(throws: LauncherError.appNotFound(webId, version: AppVersion(millisecondsSinceEpoch: 5))) { try missing.get() }
    }

    @Test func dependenciesOrderTheSteps() throws {
        var database = AppDefinition(id: PathId("/shop/db"), cmd: "db")
        database.instances = 1
        var web = AppDefinition.web(instances: 1, healthChecks: false)
        web.dependencies = [database.id]
        var harness = LauncherHarness()
        try harness.absorb(harness.state.deploy([web, database], deploymentId: "d", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        #expect(harness.state.deployments["d"]?.steps == [[.start(database.id)], [.start(web.id)]])
        // Only the database is launched until it runs.
        #expect(harness.state.instances.values.map(\.appId) == [database.id])
        while harness.step() {}
        #expect(Set(harness.state.instances.values.map(\.appId)) == [database.id, web.id])
        #expect(harness.state.deployments.isEmpty)
    }

    @Test func deletingAnAppKillsItsInstances() throws {
        var harness = try deployed(.web(instances: 3))
        try harness.absorb(harness.state.delete(webId, deploymentId: "rm", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        #expect(harness.state.apps[webId] == nil)
        #expect(harness.state.deployments["rm"] != nil)
        while harness.step() {}
        #expect(harness.state.instances.isEmpty)
        #expect(harness.state.deployments.isEmpty)
        #expect(throws: LauncherError.appNotFound(webId, version: nil)) {
            try harness.state.delete(webId, deploymentId: "again", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs).get()
        }
    }

    @Test func replayingTheRecordsGivesTheSameState() throws {
        var harness = try deployed(.web(instances: 3, minimumHealthCapacity: 0.5, maximumOverCapacity: 0))
        var upgraded = harness.state.apps[webId]!
        upgraded.mem = 256
        try harness.absorb(harness.state.deploy([upgraded], deploymentId: "upgrade", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        harness.step()
        harness.step()
        // Mid-deployment: the replay must hold the deployment, the versions and every instance.
        func same(_ replay: LauncherState) {
            #expect(replay.apps == harness.state.apps)
            #expect(replay.versions == harness.state.versions)
            #expect(replay.deployments == harness.state.deployments)
            #expect(replay.deploymentOrder == harness.state.deploymentOrder)
            #expect(replay.instances == harness.state.instances)
            #expect(replay.nextInstanceNumber == harness.state.nextInstanceNumber)
        }
        #expect(!harness.state.deployments.isEmpty)
        same(harness.replayed())
        // A replayed state goes on as the live one would: no duplicate instances.
        var replay = harness.replayed()
        let resumed = replay.tick(now: harness.now, wallTimeMs: harness.wallTimeMs)
        let live = harness.state.tick(now: harness.now, wallTimeMs: harness.wallTimeMs)
        #expect(resumed.records == live.records)
        #expect(resumed.actions == live.actions)
        while harness.step() {}
        same(harness.replayed())
    }

    @Test func aSnapshotAndTheRecordsAfterItRebuildTheState() throws {
        var harness = try deployed(.web(instances: 3, minimumHealthCapacity: 0.5, maximumOverCapacity: 0))
        var upgraded = harness.state.apps[webId]!
        upgraded.mem = 256
        try harness.absorb(harness.state.deploy([upgraded], deploymentId: "upgrade", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        harness.step()
        let cut = harness.log.count
        var before = LauncherState()
        for record in harness.log { before.apply(record, now: harness.now) }
        // Stored as JSON, as the log on the DFS stores it.
        func stored(_ records: [LauncherRecord]) throws -> [LauncherRecord] {
            try JSONDecoder().decode([LauncherRecord].self, from: try JSONEncoder().encode(records))
        }
        let snapshot = try stored(before.snapshotRecords())
        while harness.step() {}
        // Against the whole log as stored (JSON writes app definitions with their defaults).
        var replayed = LauncherState()
        for record in try stored(harness.log) { replayed.apply(record, now: harness.now) }
        var rebuilt = LauncherState()
        for record in try snapshot + stored(Array(harness.log[cut...])) { rebuilt.apply(record, now: harness.now) }
        #expect(rebuilt.apps == replayed.apps)
        #expect(rebuilt.versions == replayed.versions)
        #expect(rebuilt.deployments == replayed.deployments)
        #expect(rebuilt.deploymentOrder == replayed.deploymentOrder)
        #expect(rebuilt.instances == replayed.instances)
        #expect(rebuilt.nextInstanceNumber == replayed.nextInstanceNumber)
        #expect(rebuilt.lastVersionMs == replayed.lastVersionMs)
        #expect(rebuilt.lastTaskFailures == replayed.lastTaskFailures)
        #expect(replayed.instances.count == harness.state.instances.count && replayed.apps.keys == harness.state.apps.keys)
        // Mid-deployment at the cut: the snapshot held the deployment, which went on.
        #expect(before.deployments["upgrade"] != nil && harness.state.deployments.isEmpty)
    }
}
