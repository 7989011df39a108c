import Foundation
import StrataApps
import StrataCompute
import Testing

/// Reading Marathon's app JSON: defaults, ids, health checks, groups, and the round trip a stored
/// definition makes.
struct AppDefinitionTests {
    func app(_ json: String) throws -> AppDefinition {
        try AppDefinition.parse(Array(json.utf8))
    }

    @Test func aMinimalAppGetsMarathonsDefaults() throws {
        let app = try app(#"{"id":"web","cmd":"python3 -m http.server $PORT0"}"#)
        #expect(app.id == PathId("/web"))
        #expect(app.cpus == 1)
        #expect(app.mem == 128)
        #expect(app.disk == 0)
        #expect(app.instances == 1)
        #expect(app.env.isEmpty && app.labels.isEmpty && app.constraints.isEmpty && app.healthChecks.isEmpty)
        #expect(app.portDefinitions == [PortDefinition(port: 0, protocol: "tcp", name: "default")])
        #expect(app.requirePorts == false)
        #expect(app.backoffSeconds == 1)
        #expect(app.backoffFactor == 1.15)
        #expect(app.maxLaunchDelaySeconds == 300)
        #expect(app.upgradeStrategy == UpgradeStrategy(minimumHealthCapacity: 1, maximumOverCapacity: 1))
        #expect(app.killSelection == .youngestFirst)
        #expect(app.version == nil)
    }

    @Test func idsAreMadeAbsoluteWithDotsResolved() throws {
        #expect(try app(#"{"id":"/shop/web","cmd":"run"}"#).id.description == "/shop/web")
        #expect(try app(#"{"id":"shop/web/","cmd":"run"}"#).id.description == "/shop/web")
        #expect(throws: ValidationFailure.self) { try app(#"{"id":"shop/./web","cmd":"run"}"#) }
        #expect(try app(#"{"id":"/shop/../web","cmd":"run"}"#).id.description == "/web")
        #expect(try AppDefinition.parse(Array(#"{"id":"web","cmd":"run"}"#.utf8), base: PathId("/shop")).id.description == "/shop/web")
        #expect(try app(#"{"id":"a.b-c/d1","cmd":"run"}"#).id.description == "/a.b-c/d1")
    }

    @Test func everyFieldIsRead() throws {
        let app = try app(
            #"""
            {"id":"/shop/web","args":["serve","--port","$PORT0"],"cpus":0.5,"mem":64,"disk":10,"instances":3,
             "env":{"MODE":"prod"},"labels":{"team":"a"},"user":"www",
             "container":{"type":"DOCKER","docker":{"image":"tools/web:1"}},
             "portDefinitions":[{"port":0,"name":"http"},{"port":9000,"protocol":"udp"}],"requirePorts":true,
             "constraints":[["hostname","UNIQUE"],["rack","GROUP_BY","2"],["rack","LIKE","r[12]"],["zone","IS","a"]],
             "healthChecks":[{"protocol":"MESOS_HTTP","path":"/health","portIndex":0},{"protocol":"COMMAND","command":{"value":"true"}}],
             "backoffSeconds":2,"backoffFactor":2,"maxLaunchDelaySeconds":60,
             "upgradeStrategy":{"minimumHealthCapacity":0.5,"maximumOverCapacity":0},
             "dependencies":["../db"],"killSelection":"OLDEST_FIRST","fetch":[],"unknownField":{"anything":1}}
            """#)
        #expect(app.args == ["serve", "--port", "$PORT0"] && app.cmd == nil)
        #expect(app.resources == Resources(cpus: 0.5, memMB: 64, diskMB: 10))
        #expect(app.instances == 3 && app.env == ["MODE": "prod"] && app.labels == ["team": "a"] && app.user == "www")
        #expect(app.container == AppContainer(type: .docker, docker: .init(image: "tools/web:1")))
        #expect(app.portDefinitions == [PortDefinition(port: 0, name: "http"), PortDefinition(port: 9000, protocol: "udp")])
        #expect(app.requirePorts)
        #expect(app.constraints.map(\.description) == ["hostname:UNIQUE", "rack:GROUP_BY:2", "rack:LIKE:r[12]", "zone:CLUSTER:a"])
        #expect(app.healthChecks.count == 2)
        #expect(app.healthChecks[0].protocol.kind == .http(secure: false) && app.healthChecks[0].protocol.isMesosLevel)
        #expect(app.healthChecks[1].command == "true" && app.healthChecks[1].portIndex == nil)
        #expect(app.backoffSeconds == 2 && app.backoffFactor == 2 && app.maxLaunchDelaySeconds == 60)
        #expect(app.upgradeStrategy == UpgradeStrategy(minimumHealthCapacity: 0.5, maximumOverCapacity: 0))
        #expect(app.dependencies == [PathId("/db")])
        #expect(app.killSelection == .oldestFirst)
    }

    @Test func healthChecksGetMarathonsDefaults() throws {
        let check = try app(#"{"id":"web","cmd":"run","healthChecks":[{}]}"#).healthChecks[0]
        #expect(check.protocol == .http)
        #expect(check.path == "/")
        #expect(check.portIndex == 0)
        #expect(check.gracePeriodSeconds == 300)
        #expect(check.intervalSeconds == 60)
        #expect(check.timeoutSeconds == 20)
        #expect(check.maxConsecutiveFailures == 3)
        #expect(check.killsAfter == 4)
        let tcp = try app(#"{"id":"web","cmd":"run","healthChecks":[{"protocol":"MESOS_TCP","maxConsecutiveFailures":0}]}"#).healthChecks[0]
        #expect(tcp.protocol.kind == .tcp && tcp.path == nil && tcp.killsAfter == 1)
        let never = try app(#"{"id":"web","cmd":"run","healthChecks":[{"protocol":"TCP","maxConsecutiveFailures":0}]}"#).healthChecks[0]
        #expect(never.killsAfter == nil)
    }

    @Test func aStoredDefinitionReadsBackTheSame() throws {
        var app = try app(
            #"{"id":"/shop/web","cmd":"run","instances":2,"healthChecks":[{"path":"/h"}],"constraints":[["hostname","MAX_PER","2"]]}"#)
        app.version = AppVersion(parsing: "2026-11-25T09:31:21.237Z")
        app.versionInfo = .init(lastScalingAt: app.version!, lastConfigChangeAt: app.version!)
        let encoded = try JSONEncoder().encode(app)
        #expect(try JSONDecoder().decode(AppDefinition.self, from: encoded) == app)
        let text = String(decoding: encoded, as: UTF8.self)
        #expect(text.contains(#""version":"2026-11-25T09:31:21.237Z""#))
        #expect(text.contains(#""maxLaunchDelaySeconds":300"#))
    }

    @Test func versionsAreMarathonsTimestamps() {
        let version = AppVersion(millisecondsSinceEpoch: 1_764_063_081_237)
        #expect(version.description == "2025-11-25T09:31:21.237Z")
        #expect(AppVersion(parsing: version.description) == version)
        #expect(AppVersion(parsing: "2025-11-25T09:31:21Z")?.millisecondsSinceEpoch == 1_764_063_081_000)
        #expect(AppVersion(parsing: "2025-11-25T09:31:21.2+00:00")?.millisecondsSinceEpoch == 1_764_063_081_200)
        #expect(AppVersion(millisecondsSinceEpoch: 0).description == "1970-01-01T00:00:00.000Z")
        #expect(AppVersion(parsing: "yesterday") == nil)
    }

    @Test func aGroupsAppsTakeTheirIdsFromIt() throws {
        let group = try AppGroup.parse(Array(
            #"""
            {"id":"/shop","apps":[{"id":"web","cmd":"run","dependencies":["db"]},{"id":"db","cmd":"run"}],
             "groups":[{"id":"batch","apps":[{"id":"/shop/batch/report","cmd":"run"}]}]}
            """#.utf8))
        #expect(group.allApps.map(\.id.description) == ["/shop/web", "/shop/db", "/shop/batch/report"])
        #expect(group.apps[0].dependencies == [PathId("/shop/db")])
        #expect(group.groups[0].id == PathId("/shop/batch"))
    }

    @Test func environmentOfAnInstanceNamesItsPortsAndApp() throws {
        var app = try app(#"{"id":"/shop/web","cmd":"run","portDefinitions":[{"port":0,"name":"http"},{"port":0}],"env":{"A":"1"}}"#)
        app.version = AppVersion(millisecondsSinceEpoch: 0)
        let environment = app.taskEnvironment(instanceId: "shop_web.instance-1", host: "node-1", ports: [31000, 31001])
        #expect(environment["PORT0"] == "31000" && environment["PORT1"] == "31001" && environment["PORT"] == "31000")
        #expect(environment["PORTS"] == "31000,31001" && environment["PORT_HTTP"] == "31000")
        #expect(environment["HOST"] == "node-1" && environment["MARATHON_APP_ID"] == "/shop/web")
        #expect(environment["MARATHON_APP_VERSION"] == "1970-01-01T00:00:00.000Z" && environment["MESOS_TASK_ID"] == "shop_web.instance-1")
        #expect(environment["A"] == "1")
    }
}
