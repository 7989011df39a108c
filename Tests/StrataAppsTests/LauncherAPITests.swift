import StrataApps
import StrataCompute
import StrataCore
import Testing

/// The logic behind the API beyond apps: label queries and filters, embeds, group changes,
/// killing chosen instances (with and without scaling), the launch queue, and the events the
/// records make. Time moves only when a test moves it.
struct LauncherAPITests {
    let webId = PathId("/shop/web")

    func app(_ id: String, cmd: String = "serve $PORT0", labels: [String: String] = [:], instances: Int = 1) -> AppDefinition {
        var app = AppDefinition(id: PathId(id), cmd: cmd)
        app.labels = labels
        app.instances = instances
        return app
    }

    // MARK: - Label selectors and filters

    @Test func labelSelectorsParseAndMatchAsMarathonsDo() throws {
        let labels = ["foo": "one", "bla": "four", "existence": "true"]
        let combined = try LabelSelector.parse("foo==one, bla!=one, foo in (one, two, three), bla notin (one, two, three), existence").get()
        #expect(combined.count == 5)
        #expect(combined.allSatisfy { $0.matches(labels) })
        #expect(!combined.allSatisfy { $0.matches(["foo": "one"]) })

        let set = try LabelSelector.parse(#"foo in (one, two, three\ is\ cool)"#).get()
        #expect(set == [LabelSelector(key: "foo", operator: .isIn, values: ["one", "two", "three is cool"])])
        #expect(try LabelSelector.parse("foo==one").get() == LabelSelector.parse("foo == one").get())
        // Every kind needs the label: `!=` and `notin` do not match an app without it.
        #expect(try !LabelSelector.parse("foo!=one").get()[0].matches(["bla": "one"]))
        #expect(try !LabelSelector.parse("bla notin (one)").get()[0].matches(["rest": "one"]))
        #expect(try LabelSelector.parse("bla notin (one)").get()[0].matches(["bla": "four"]))
        // Escaped characters outside the term alphabet.
        let escaped = try LabelSelector.parse(##"\{\{\{ in (\*\*\*, \&\&\&), \#\#\#"##).get()
        #expect(escaped.allSatisfy { $0.matches(["{{{": "&&&", "###": "x"]) })
        #expect(try LabelSelector.parse("").get().isEmpty)

        for malformed in ["foo some (one, two, three)", "foo in one", "foo test", "foo==", "a,,b", "foo in (a"] {
            guard case .failure(let error) = LabelSelector.parse(malformed) else {
                Issue.record("'\(malformed)' parsed")
                continue
            }
            #expect(error.message.hasPrefix("Can not parse label selector \(malformed). Reason: "))
        }
    }

    @Test func appFiltersMatchCommandIdAndLabelsIgnoringCase() throws {
        let web = app("/shop/web", cmd: "python3 -m http.server", labels: ["tier": "frontend"])
        let db = app("/shop/db", cmd: "postgres", labels: ["tier": "backend"])
        func selected(_ query: AppQuery) -> [String] { [web, db].filter(query.matches).map(\.id.description) }
        #expect(selected(AppQuery(cmd: "HTTP")) == ["/shop/web"])
        #expect(selected(AppQuery(id: "SHOP/")) == ["/shop/web", "/shop/db"])
        #expect(selected(AppQuery(id: "db")) == ["/shop/db"])
        #expect(selected(try AppQuery.parse(cmd: nil, id: "shop", label: "tier!=frontend").get()) == ["/shop/db"])
        #expect(selected(try AppQuery.parse(cmd: "post", id: nil, label: "tier in (frontend)").get()).isEmpty)
        #expect(throws: LabelSelectorError.self) { try AppQuery.parse(cmd: nil, id: nil, label: "tier in frontend").get() }
        // An app run by `args` has no command to match.
        var byArgs = app("/args")
        byArgs.cmd = nil
        byArgs.args = ["serve"]
        #expect(!AppQuery(cmd: "serve").matches(byArgs))
    }

    @Test func embedsResolveWithOrWithoutTheirPrefix() {
        #expect(AppEmbed.resolve(["apps.tasks"]) == [.tasks, .deployments])
        #expect(AppEmbed.resolve(["apps.counts", "app.taskStats", "group.apps.readiness", "lastTaskFailure"]) == [.counts, .taskStats, .readiness, .lastTaskFailure])
        #expect(AppEmbed.resolve(["apps.failures"]) == [.tasks, .lastTaskFailure, .deployments])
        #expect(AppEmbed.resolve(["apps.unknown", "pods"]).isEmpty)
    }

    // MARK: - Groups

    @Test func aGroupUpdateReplacesOnlyWhatItNames() throws {
        var harness = LauncherHarness()
        let existing = [app("/shop/web"), app("/shop/db"), app("/shop/cache/redis"), app("/shop/search/solr"), app("/other")]
        try harness.absorb(harness.state.deploy(existing, deploymentId: "d0", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        while harness.step() {}

        let tree = try #require(GroupTree.of(PathId("/shop"), apps: harness.state.apps))
        #expect(tree.apps.map(\.description) == ["/shop/db", "/shop/web"])
        #expect(tree.groups.map(\.id.description) == ["/shop/cache", "/shop/search"])
        #expect(GroupTree.of(PathId("/shop/web"), apps: harness.state.apps) == nil, "an app is not a group")
        #expect(GroupTree.of(PathId("/nothing"), apps: harness.state.apps) == nil)
        #expect(GroupTree.of(.root, apps: [:]) != nil, "the root always exists")

        // `apps` given: /shop/db leaves, /shop/web changes; `groups` given: /shop/search leaves,
        // /shop/cache is updated (its apps not named, so kept).
        let update = try AppGroup.parse(Array(#"""
            {"id":"/shop","apps":[{"id":"web","cmd":"serve --v2 $PORT0"}],"groups":[{"id":"cache"}]}
            """#.utf8))
        let (puts, deletes) = harness.state.groupChange(update)
        #expect(puts.map(\.id.description) == ["/shop/web"])
        #expect(deletes.map(\.description) == ["/shop/db", "/shop/search/solr"])

        // One deployment: the removed apps stop first, then the changed one restarts.
        let outcome = try harness.state.change(puts: puts, deletes: deletes, deploymentId: "d1", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs).get()
        harness.absorb(outcome)
        let deployment = try #require(harness.state.deployments["d1"])
        #expect(deployment.steps == [[.stop(PathId("/shop/db")), .stop(PathId("/shop/search/solr"))], [.restart(webId)]])
        while harness.step() {}
        #expect(harness.state.deployments.isEmpty)
        #expect(Set(harness.state.apps.keys.map(\.description)) == ["/shop/web", "/shop/cache/redis", "/other"])

        // Only `scaleBy`: every app below the group, rounded up.
        #expect(harness.state.scaled(PathId("/shop"), by: 1.5).map(\.instances) == [2, 2])
        // Given neither apps nor groups, an update changes nothing.
        let empty = harness.state.groupChange(AppGroup(id: PathId("/shop"), appsGiven: false, groupsGiven: false))
        #expect(empty.puts.isEmpty && empty.deletes.isEmpty)
    }

    // MARK: - Killing chosen instances

    @Test func killingWithScaleLowersInstancesInANewVersionAndKillsThatOne() throws {
        var harness = LauncherHarness()
        let web = AppDefinition.web(instances: 3, healthChecks: false)
        try harness.absorb(harness.state.deploy([web], deploymentId: "d0", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        while harness.step() {}
        let before = try #require(harness.state.apps[webId])
        let victim = try #require(harness.active(webId).first?.id)
        let others = Set(harness.active(webId).map(\.id)).subtracting([victim])

        harness.advance(bySeconds: 1)
        try harness.absorb(harness.state.kill([victim, "shop_web.instance-999"], scale: true, deploymentId: "d1", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        let after = try #require(harness.state.apps[webId])
        #expect(after.instances == 2)
        #expect(after.version! > before.version!)
        #expect(after.versionInfo?.lastConfigChangeAt == before.versionInfo?.lastConfigChangeAt, "a scale change, not a new configuration")
        #expect(harness.state.deployments["d1"]?.steps == [[.scale(webId)]])
        while harness.step() {}
        #expect(Set(harness.active(webId).map(\.id)) == others, "that instance killed, the others kept, none started")
        #expect(harness.state.deployments.isEmpty)

        // Without scale: killed and replaced, the count kept.
        let second = try #require(others.first)
        try harness.absorb(harness.state.kill([second], scale: false, deploymentId: "unused", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        #expect(harness.state.instances[second]?.isBeingKilled == true)
        while harness.step() {}
        #expect(harness.active(webId).count == 2 && !harness.active(webId).contains { $0.id == second })
        #expect(harness.state.apps[webId]?.instances == 2)

        // A replayed log gives the same apps and instances.
        let replay = harness.replayed()
        #expect(replay.apps == harness.state.apps)
        #expect(replay.instances == harness.state.instances)
    }

    @Test func killingWithScaleIsRefusedWhileADeploymentHoldsTheApp() throws {
        var harness = LauncherHarness()
        try harness.absorb(harness.state.deploy([.web(instances: 2)], deploymentId: "d0", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        let instance = try #require(harness.active(webId).first?.id)
        let refused = harness.state.kill([instance], scale: true, deploymentId: "d1", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs)
        #expect(throws: LauncherError.locked(deploymentIds: ["d0"])) { try refused.get() }
        #expect(harness.state.instances[instance]?.isBeingKilled == false, "nothing killed")
        try harness.absorb(harness.state.kill([instance], scale: true, deploymentId: "d1", force: true, now: harness.now, wallTimeMs: harness.wallTimeMs))
        #expect(harness.state.deployments["d0"] == nil && harness.state.deployments["d1"] != nil)
    }

    // MARK: - Queue

    @Test func aBackedOffAppWaitsInTheQueueUntilItsDelayIsReset() throws {
        var app = AppDefinition.web(instances: 2, healthChecks: false)
        app.backoffSeconds = 30
        var harness = LauncherHarness()
        try harness.absorb(harness.state.deploy([app], deploymentId: "d0", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs))
        // Submitted, not yet placed: both wait in the queue, not held back.
        var queue = harness.state.queue(now: harness.now, wallTimeMs: harness.wallTimeMs)
        #expect(queue.map(\.count) == [2])
        #expect(queue.first?.isOverdue(now: harness.now) == true && queue.first?.timeLeftSeconds(now: harness.now) == 0)
        while harness.step() {}
        #expect(harness.state.queue(now: harness.now, wallTimeMs: harness.wallTimeMs).isEmpty)
        #expect(throws: LauncherError.notInQueue(webId)) { try harness.state.resetDelay(webId, now: harness.now, wallTimeMs: harness.wallTimeMs).get() }

        // One fails: its replacement is held back 30 s.
        let failing = try #require(harness.active(webId).first?.id)
        harness.absorb(harness.state.instanceUpdate(InstanceChange(instanceId: failing, state: .failed, atMs: harness.wallTimeMs, message: "exit 1"), now: harness.now, wallTimeMs: harness.wallTimeMs))
        harness.advance(bySeconds: 10.5)
        queue = harness.state.queue(now: harness.now, wallTimeMs: harness.wallTimeMs)
        #expect(queue.map(\.count) == [1])
        #expect(queue.first?.isOverdue(now: harness.now) == false)
        #expect(queue.first?.timeLeftSeconds(now: harness.now) == 19)
        #expect(queue.first?.sinceWallTimeMs == harness.wallTimeMs - 10_500)
        #expect(harness.state.lastTaskFailures[webId]?.taskId == failing)
        #expect(harness.state.lastTaskFailures[webId]?.message == "exit 1")

        // The reset launches it now, before the 30 s.
        let outcome = try harness.state.resetDelay(webId, now: harness.now, wallTimeMs: harness.wallTimeMs).get()
        #expect(outcome.actions.count { if case .launch = $0 { true } else { false } } == 1)
        harness.absorb(outcome)
        while harness.step() {}
        #expect(harness.active(webId).count == 2)
        #expect(harness.state.queue(now: harness.now, wallTimeMs: harness.wallTimeMs).isEmpty)
    }

    // MARK: - Events

    @Test func recordsBecomeMarathonsEvents() throws {
        var harness = LauncherHarness()
        var deriver = LauncherEventDeriver(state: harness.state)
        var events: [LauncherEvent] = []
        func take(_ records: [LauncherRecord]) {
            events += deriver.events(for: records, now: harness.now, wallTimeMs: harness.wallTimeMs)
        }
        let deployed = try harness.state.deploy([.web(instances: 1)], deploymentId: "d0", force: false, now: harness.now, wallTimeMs: harness.wallTimeMs).get()
        harness.absorb(deployed)
        take(deployed.records)
        // Let the harness run, feeding the deriver every record it writes.
        var logged = harness.log.count
        while harness.step() {
            take(Array(harness.log[logged...]))
            logged = harness.log.count
        }
        let types = events.map(\.eventType)
        #expect(types.first == "api_post_event")
        #expect(types.contains("deployment_info"))
        #expect(types.suffix(2) == ["deployment_step_success", "deployment_success"], "\(types)")
        let running = try #require(events.first { $0.eventType == "status_update_event" && $0.body["taskStatus"] == .string("TASK_RUNNING") })
        #expect(running.body["appId"] == .string("/shop/web"))
        #expect(running.body["host"] == .string("node-1") && running.body["slaveId"] == .string("agent-1"))
        #expect(running.body["ports"] == .array([.number(31000)]))
        #expect(running.body["version"] == .string(harness.state.apps[webId]!.version!.description))
        let health = try #require(events.first { $0.eventType == "health_status_changed_event" })
        #expect(health.body["alive"] == .boolean(true))
        #expect(events.contains { $0.eventType == "instance_changed_event" && $0.body["condition"] == .string("Running") })
        let success = try #require(events.last)
        #expect(success.body["id"] == .string("d0"))
        #expect(success.frame().hasPrefix("event: deployment_success\ndata: {"))
        #expect(success.frame().hasSuffix("}\n\n"))

        // An instance that ends is still named with its app and version; a removed app ends.
        events = []
        let instance = try #require(harness.active(webId).first)
        let killed = harness.state.instanceUpdate(InstanceChange(instanceId: instance.id, state: .killed, atMs: harness.wallTimeMs), now: harness.now, wallTimeMs: harness.wallTimeMs)
        take(killed.records)
        let end = try #require(events.first { $0.eventType == "status_update_event" })
        #expect(end.body["taskStatus"] == .string("TASK_KILLED") && end.body["appId"] == .string("/shop/web"))
        #expect(end.body["version"] == .string(instance.configVersion.description))
        let deleted = try harness.state.delete(webId, deploymentId: "d1", force: true, now: harness.now, wallTimeMs: harness.wallTimeMs).get()
        events = []
        take(deleted.records)
        #expect(events.map(\.eventType).contains("app_terminated_event"))
        #expect(deriver.state.apps == harness.state.apps, "the deriver follows the state")
    }
}
