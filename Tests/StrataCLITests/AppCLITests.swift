import Foundation
import Glibc
import Testing

/// `strata app` as a user runs it, against a name node, a data node, a master, an agent and
/// `strata launcher`, each a process of its own on loopback. Instances run `sleep 1000` as
/// `nobody` (agents refuse root tasks). HOME is a directory of the test's own and STRATA_TOKEN is
/// empty, so nothing reads or writes the real ~/.strata.
@Suite(.serialized) struct AppCLITests {
    static let taskUser = "nobody"
    /// Bounds every `--wait` of the tests: a deployment of `sleep` instances takes about a second.
    static let waitSeconds = "60"

    /// The cluster with its compute side and a launcher, and the environment `strata app` runs in
    /// (STRATA_LAUNCHER naming that launcher).
    static func startCluster() throws -> (cluster: ProcessCluster, environment: [String: String]) {
        let cluster = try ProcessCluster(dataNodes: 1)
        try cluster.waitUntilReady(dataNodes: 1)
        try cluster.startCompute()
        let isolated = try isolatedEnvironment(in: cluster.directory)
        try cluster.startLauncher(taskUser: taskUser, environment: isolated)
        var environment = cluster.environment.merging(isolated) { $1 }
        environment["STRATA_LAUNCHER"] = "http://127.0.0.1:\(cluster.launcherPort)"
        return (cluster, environment)
    }

    static func isolatedEnvironment(in directory: String) throws -> [String: String] {
        let home = directory + "/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        return ["HOME": home, "STRATA_TOKEN": ""]
    }

    /// The rows of a table the CLI printed (its header left out), each split into its columns.
    static func rows(_ output: String) -> [[String]] {
        output.split(separator: "\n").dropFirst().map { $0.split(separator: " ").map(String.init) }
    }

    static func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    /// How many of the agent's tasks have a live process: what really runs, whatever the
    /// launcher says.
    static func runningTaskProcesses(_ cluster: ProcessCluster) throws -> Int {
        let agentId = try cluster.agentId(0)
        return cluster.taskCgroups(ofAgent: agentId).count { !cluster.taskProcessIds(ofAgent: agentId, task: $0).filter(isAlive).isEmpty }
    }

    @Test func anAppIsDeployedListedScaledShownRestartedAndRemoved() throws {
        let (cluster, environment) = try Self.startCluster()
        func app(_ arguments: [String], input: Data? = nil) throws -> CommandResult {
            try strata(["app"] + arguments, environment: environment, input: input)
        }
        let failureContext = { "\nlauncher log:\n\(cluster.logTail("launcher.log"))" }

        // Deploy from a file, waiting for the deployment: the instance runs when it returns.
        let file = cluster.directory + "/sleeper.json"
        try #"{"id": "/tools/sleeper", "cmd": "sleep 1000", "cpus": 0.1, "mem": 32}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let deployed = try app(["deploy", file, "--wait", "--timeout", Self.waitSeconds])
        try #require(deployed.status == 0, "\(deployed.error)\(failureContext())")
        #expect(deployed.output.contains("deploying /tools/sleeper: deployment "), "\(deployed.output)")
        #expect(deployed.output.contains(" done in "), "\(deployed.output)")
        #expect(try Self.runningTaskProcesses(cluster) == 1)

        // ls: one running of one wanted, no health checks, its resources, no deployment, its command.
        let listed = try app(["ls"])
        try #require(listed.status == 0, "\(listed.error)")
        #expect(listed.output.hasPrefix("ID"), "\(listed.output)")
        for column in ["INSTANCES", "HEALTHY", "CPUS", "MEM", "DEPLOYMENTS", "CMD"] { #expect(listed.output.contains(column)) }
        #expect(Self.rows(listed.output) == [["/tools/sleeper", "1/1", "-", "0.1", "32", "-", "sleep", "1000"]], "\(listed.output)")
        let listedJSON = try #require(try Self.json(try app(["ls", "--json"]).output) as? [[String: Any]])
        #expect(listedJSON.count == 1 && listedJSON.first?["id"] as? String == "/tools/sleeper", "\(listedJSON)")
        #expect(listedJSON.first?["tasksRunning"] as? Int == 1 && listedJSON.first?["cmd"] as? String == "sleep 1000")

        // tasks: its one instance, running on the agent's host with a port of the agent's range.
        let tasks = try app(["tasks", "/tools/sleeper"])
        try #require(tasks.status == 0, "\(tasks.error)")
        #expect(tasks.output.hasPrefix("TASK"), "\(tasks.output)")
        let taskRows = Self.rows(tasks.output)
        try #require(taskRows.count == 1, "\(tasks.output)")
        #expect(taskRows[0].count == 6, "\(tasks.output)")
        #expect(taskRows[0][0].hasPrefix("tools_sleeper.instance-"), "\(tasks.output)")
        #expect(taskRows[0][1] == "127.0.0.1" && Int(taskRows[0][2]) != nil, "\(tasks.output)")
        #expect(taskRows[0][3] == "TASK_RUNNING" && taskRows[0][4] == "-" && taskRows[0][5].hasSuffix("Z"), "\(tasks.output)")

        // scale, with a relative id: two instances, on two ports, two processes.
        let scaled = try app(["scale", "tools/sleeper", "2", "--wait", "--timeout", Self.waitSeconds])
        try #require(scaled.status == 0, "\(scaled.error)\(failureContext())")
        #expect(scaled.output.contains("scaling /tools/sleeper to 2: deployment "), "\(scaled.output)")
        let scaledTasks = try #require(try Self.json(try app(["tasks", "/tools/sleeper", "--json"]).output) as? [[String: Any]])
        #expect(scaledTasks.count == 2 && scaledTasks.allSatisfy { $0["state"] as? String == "TASK_RUNNING" }, "\(scaledTasks)")
        #expect(Set(scaledTasks.compactMap { ($0["ports"] as? [Int])?.first }).count == 2, "\(scaledTasks)")
        #expect(Self.rows(try app(["tasks", "/tools/sleeper"]).output).count == 2)
        #expect(try Self.runningTaskProcesses(cluster) == 2)
        let scaledRow = Self.rows(try app(["ls"]).output).first
        #expect(scaledRow?.prefix(2) == ["/tools/sleeper", "2/2"], "\(String(describing: scaledRow))")

        // show: the definition with Marathon's defaults filled in.
        let shown = try app(["show", "/tools/sleeper"])
        try #require(shown.status == 0, "\(shown.error)")
        let definition = try #require(try Self.json(shown.output) as? [String: Any])
        #expect(definition["id"] as? String == "/tools/sleeper" && definition["cmd"] as? String == "sleep 1000", "\(shown.output)")
        #expect(definition["instances"] as? Int == 2 && definition["cpus"] as? Double == 0.1 && definition["mem"] as? Int == 32)
        #expect(definition["backoffFactor"] as? Double == 1.15 && definition["version"] is String, "\(shown.output)")

        // versions: the deployment and the scaling, newest first; the first still has one instance.
        let versions = try app(["versions", "/tools/sleeper"])
        try #require(versions.status == 0, "\(versions.error)")
        let versionList = versions.output.split(separator: "\n").map(String.init)
        #expect(versionList.count == 2 && versionList == versionList.sorted(by: >), "\(versions.output)")
        #expect(versionList.first == definition["version"] as? String, "\(versions.output)")
        #expect(try Self.json(try app(["versions", "/tools/sleeper", "--json"]).output) as? [String] == versionList)
        let first = try app(["show", "/tools/sleeper", "--version", try #require(versionList.last)])
        #expect(first.status == 0 && (try? Self.json(first.output) as? [String: Any])?["instances"] as? Int == 1, "\(first.output)\(first.error)")

        // restart: both instances replaced by new ones, a third version.
        let before = Set(scaledTasks.compactMap { $0["id"] as? String })
        let restarted = try app(["restart", "/tools/sleeper", "--wait", "--timeout", Self.waitSeconds])
        try #require(restarted.status == 0, "\(restarted.error)\(failureContext())")
        #expect(restarted.output.contains("restarting /tools/sleeper: deployment "), "\(restarted.output)")
        let after = try #require(try Self.json(try app(["tasks", "/tools/sleeper", "--json"]).output) as? [[String: Any]])
        #expect(after.count == 2 && after.allSatisfy { $0["state"] as? String == "TASK_RUNNING" }, "\(after)")
        #expect(before.isDisjoint(with: after.compactMap { $0["id"] as? String }), "\(before) \(after)")
        #expect(try app(["versions", "/tools/sleeper"]).output.split(separator: "\n").count == 3)

        // rm: gone from the list at once, its processes once the deployment is over.
        let removed = try app(["rm", "/tools/sleeper", "--wait", "--timeout", Self.waitSeconds])
        try #require(removed.status == 0, "\(removed.error)\(failureContext())")
        #expect(removed.output.contains("removing /tools/sleeper: deployment "), "\(removed.output)")
        #expect(Self.rows(try app(["ls"]).output).isEmpty)
        let gone = try app(["show", "/tools/sleeper"])
        #expect(gone.status == 1 && gone.error == "strata app show: App '/tools/sleeper' does not exist\n", "\(gone.error)")
        let stopped = try secondsUntil(timeoutSeconds: 20, intervalSeconds: 0.1) { try Self.runningTaskProcesses(cluster) == 0 }
        #expect(stopped != nil, "the removed app's processes still run")
    }

    @Test func errorsAreTheLaunchersMessagesAndNothingIsDeployed() throws {
        let (cluster, environment) = try Self.startCluster()
        func app(_ arguments: [String], input: Data? = nil) throws -> CommandResult {
            try strata(["app"] + arguments, environment: environment, input: input)
        }

        // An unknown app: Marathon's message, exit status 1, whatever the command.
        for command in [["show", "/nope"], ["scale", "/nope", "2"], ["restart", "/nope"], ["rm", "nope"], ["tasks", "/nope"], ["versions", "/nope"]] {
            let result = try app(command)
            #expect(result.status == 1, "\(command): \(result.output)")
            #expect(result.error == "strata app \(command[0]): App '/nope' does not exist\n", "\(command): \(result.error)")
        }

        // Refused definitions (from standard input): every detail on its own line with its path.
        let unreadable = try app(["deploy", "-"], input: Data(#"{"id": "/bad", "cmd": "sleep 1", "cpus": -1, "instances": "two"}"#.utf8))
        #expect(unreadable.status == 1)
        #expect(
            unreadable.error == "strata app deploy: Invalid JSON\n  /cpus: error.min\n  /instances: error.expected.jsnumber\n", "\(unreadable.error)")
        let invalid = try app(["deploy", "-"], input: Data(#"{"id": "/bad", "cmd": "sleep 1", "args": ["sleep", "1"]}"#.utf8))
        #expect(invalid.status == 1)
        #expect(
            invalid.error == "strata app deploy: Object is not valid\n  /: AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.\n",
            "\(invalid.error)")
        #expect(Self.rows(try app(["ls"]).output).isEmpty)

        // A deployment that cannot finish (no agent has 50 CPUs): --wait gives up at its timeout
        // naming it, and it locks the app: a change is refused naming it, unless forced.
        let file = cluster.directory + "/big.json"
        try #"{"id": "/big", "cmd": "sleep 1000", "cpus": 50, "mem": 32}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let stuck = try app(["deploy", file, "--wait", "--timeout", "1"])
        #expect(stuck.status == 1, "\(stuck.output)")
        let deploymentId = try #require(
            stuck.output.split(separator: " ").firstIndex(of: "deployment").map { String(stuck.output.split(separator: " ")[$0 + 1]) },
            "\(stuck.output)")
        #expect(stuck.error == "strata app deploy: deployment \(deploymentId) is still running after 1 s (strata app ls shows it; a change with --force cancels it)\n",
            "\(stuck.error)")
        #expect(Self.rows(try app(["ls"]).output).first?[5] == deploymentId)
        let locked = try app(["scale", "/big", "0"])
        #expect(locked.status == 1)
        #expect(
            locked.error == "strata app scale: App is locked by one or more deployments: \(deploymentId). Use --force to cancel them and go ahead.\n",
            "\(locked.error)")
        let forced = try app(["scale", "/big", "0", "--force", "--wait", "--timeout", Self.waitSeconds])
        #expect(forced.status == 0, "\(forced.error)")
        #expect(Self.rows(try app(["ls"]).output) == [["/big", "0/0", "-", "50", "32", "-", "sleep", "1000"]])
        #expect(try app(["rm", "/big", "--wait", "--timeout", Self.waitSeconds]).status == 0)
    }

    /// Files that are no app definition are refused before any request, so with no launcher to
    /// reach the error is the file's; an unreachable launcher is named with its URL.
    @Test func badFilesAreRefusedBeforeAnyRequestAndAnUnreachableLauncherIsNamed() throws {
        let directory = NSTemporaryDirectory() + "strata-app-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var environment = try Self.isolatedEnvironment(in: directory)
        let port = freePort()
        environment["STRATA_LAUNCHER"] = "127.0.0.1:\(port)"

        let cases: [(name: String, content: String, error: String)] = [
            ("truncated.json", #"{"id": "/x", "cmd": "#, "is not JSON: "),
            ("array.json", #"[{"id": "/x", "cmd": "sleep 1"}]"#, #"is not an app definition: that is a JSON object such as {"id": "/web", "cmd": "..."}"#),
            ("no-id.json", #"{"cmd": "sleep 1"}"#, #": the app has no "id" (a path such as "/web")"#),
            ("number-id.json", #"{"id": 7, "cmd": "sleep 1"}"#, #": "id" must be a string (a path such as "/web")"#),
        ]
        for (name, content, error) in cases {
            let path = directory + "/" + name
            try content.write(toFile: path, atomically: true, encoding: .utf8)
            let result = try strata(["app", "deploy", path], environment: environment)
            #expect(result.status == 1, "\(name)")
            #expect(result.error.hasPrefix("strata app deploy: \(path)") && result.error.contains(error), "\(name): \(result.error)")
        }
        let missing = try strata(["app", "deploy", directory + "/none.json"], environment: environment)
        #expect(missing.status == 1 && missing.error == "strata app deploy: \(directory)/none.json: no such file\n", "\(missing.error)")
        let notJSON = try strata(["app", "deploy", "-"], environment: environment, input: Data("cmd: sleep 1\n".utf8))
        #expect(notJSON.status == 1 && notJSON.error.hasPrefix("strata app deploy: standard input is not JSON: "), "\(notJSON.error)")

        // A good file goes as far as the request: the launcher, from STRATA_LAUNCHER, is not there.
        let good = directory + "/good.json"
        try #"{"id": "/x", "cmd": "sleep 1"}"#.write(toFile: good, atomically: true, encoding: .utf8)
        let unreachable = try strata(["app", "deploy", good], environment: environment)
        #expect(unreachable.status == 1)
        #expect(unreachable.error == "strata app deploy: cannot reach the launcher at http://127.0.0.1:\(port): Connection refused\n", "\(unreachable.error)")
        // --launcher wins over the environment.
        let otherPort = freePort()
        let listed = try strata(["app", "ls", "--launcher", "http://127.0.0.1:\(otherPort)/"], environment: environment)
        #expect(listed.status == 1)
        #expect(listed.error == "strata app ls: cannot reach the launcher at http://127.0.0.1:\(otherPort): Connection refused\n", "\(listed.error)")
    }
}
