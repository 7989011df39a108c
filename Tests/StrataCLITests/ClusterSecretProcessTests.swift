import Foundation
import Glibc
import Testing

/// A master and an agent listening beyond loopback (0.0.0.0, reached here over 127.0.0.1) need
/// the cluster secret on every call: the master makes it in its work directory at first start
/// (and copies it to `~/.strata/token` for the CLI), keeps it across restarts, and an agent is
/// given it with `--secret-file`.
@Suite(.serialized) struct ClusterSecretProcessTests {
    @Test func aMasterBeyondLoopbackMakesItsSecretOnceAndRefusesCallsWithoutIt() throws {
        let cluster = try ProcessCluster(dataNodes: 1)
        try cluster.waitUntilReady(dataNodes: 1)
        let home = cluster.directory + "/home"
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        let masterDirectory = cluster.directory + "/master"
        let masterPort = freePort()
        var processes: [Process] = []
        defer {
            for process in processes where process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        func startMaster() throws {
            processes.append(try cluster.launch(
                ["master", "--host", "0.0.0.0", "--port", "\(masterPort)", "--namenode", "127.0.0.1:\(cluster.nameNodePort)",
                 "--superuser", cluster.superuser, "--work-dir", masterDirectory],
                log: "master.log", environment: ["HOME": home]))
            // Serving once even /health answers 401.
            let up = try secondsUntil(timeoutSeconds: 30, intervalSeconds: 0.1) {
                (try? httpCall("GET", port: masterPort, "/health", timeoutSeconds: 2))?.status == 401
            }
            try #require(up != nil, "the master did not serve: \(cluster.logTail("master.log"))")
        }
        try startMaster()

        let secretPath = masterDirectory + "/cluster-secret"
        let secret = try #require(FileManager.default.contents(atPath: secretPath).map {
            String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        })
        #expect(secret.count == 64 && secret.allSatisfy(\.isHexDigit))
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: secretPath)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        let userCopy = try String(contentsOfFile: home + "/.strata/token", encoding: .utf8)
        #expect(userCopy.trimmingCharacters(in: .whitespacesAndNewlines) == secret)

        // Without the secret, or with a wrong one: 401 with a JSON message, and nothing done.
        let submission = Data(#"{"arguments":["true"],"inputs":["/"],"output":"/out"}"#.utf8)
        let anonymous = try httpCall("POST", port: masterPort, "/api/v1/jobs?user.name=tester", body: submission)
        #expect(anonymous.status == 401)
        #expect(String(decoding: anonymous.body, as: UTF8.self).contains("\"message\""))
        let wrong = try httpCall("GET", port: masterPort, "/api/v1/jobs", headers: ["Authorization": "Bearer " + String(repeating: "0", count: 64)])
        #expect(wrong.status == 401)
        let bearer = ["Authorization": "Bearer \(secret)"]
        let listed = try httpCall("GET", port: masterPort, "/api/v1/jobs", headers: bearer)
        #expect(listed.status == 200 && String(decoding: listed.body, as: UTF8.self) == "[]")

        // The CLI of the user who started it reads ~/.strata/token; another user without it is refused.
        let withToken = try strata(["job", "ls", "--master", "127.0.0.1:\(masterPort)"], environment: ["HOME": home, "STRATA_USER": "tester"])
        #expect(withToken.status == 0, "\(withToken.error)")
        let stranger = cluster.directory + "/stranger"
        try FileManager.default.createDirectory(atPath: stranger, withIntermediateDirectories: true)
        let withoutToken = try strata(["job", "ls", "--master", "127.0.0.1:\(masterPort)"], environment: ["HOME": stranger, "STRATA_USER": "tester"])
        #expect(withoutToken.status != 0 && withoutToken.error.contains("requires the cluster secret"), "\(withoutToken.error)")

        // An agent given the master's secret registers, and its own API wants it too.
        let agentPort = freePort()
        processes.append(try cluster.launch(
            ["agent", "--work-dir", cluster.directory + "/agent", "--master", "127.0.0.1:\(masterPort)",
             "--namenode", "127.0.0.1:\(cluster.nameNodePort)", "--host", "0.0.0.0", "--port", "\(agentPort)",
             "--hostname", "node1", "--resources", "cpus:1;mem:256", "--secret-file", secretPath],
            log: "agent.log", environment: ["HOME": stranger]))
        let registered = try secondsUntil(timeoutSeconds: 30, intervalSeconds: 0.1) {
            cluster.logText("agent.log", from: 0).contains("agent registered with the master")
        }
        try #require(registered != nil, "the agent did not register: \(cluster.logTail("agent.log"))")
        #expect(try httpCall("GET", port: agentPort, "/state").status == 401)
        #expect(try httpCall("GET", port: agentPort, "/state", headers: bearer).status == 200)
        // It used the file it was given and made no secret of its own.
        #expect(!FileManager.default.fileExists(atPath: cluster.directory + "/agent/cluster-secret"))

        // Restarted on the same work directory, the master keeps its secret.
        let master = processes[0]
        kill(master.processIdentifier, SIGKILL)
        master.waitUntilExit()
        try startMaster()
        #expect(try httpCall("GET", port: masterPort, "/api/v1/jobs", headers: bearer).status == 200)

        // A secret file that is not there is a clear error at start.
        let missing = try strata(["agent", "--work-dir", cluster.directory + "/agent2", "--host", "0.0.0.0", "--secret-file", cluster.directory + "/nope"])
        #expect(missing.status != 0 && missing.error.contains("no cluster secret at"), "\(missing.error)")
    }
}
