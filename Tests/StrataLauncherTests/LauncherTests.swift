import AsyncHTTPClient
import Foundation
import StrataCompute
import StrataTestKit
import Testing

/// The launcher's shell on a real cluster: Marathon's API, instances placed through the master,
/// health checks, replacement, and adoption after a restart.
@Suite(.serialized) struct StrataLauncherTests {
    @Test func deployScaleReplaceAndRefuse() async throws {
        try await withLauncherCluster { cluster in
            try await makeHome(cluster)
            let port = try #require(cluster.launcherPort)
            #expect(try await call(port, .GET, "/ping").body == "pong")
            #expect(try await call(port, .GET, "/v2/info").object["name"] as? String == "marathon")

            let created = try await call(port, .POST, "/v2/apps", body: webApp)
            #expect(created.status == 201, "\(created.body)")
            #expect(created.object["id"] as? String == "/web" && created.object["instances"] as? Int == 2)
            #expect((created.object["deployments"] as? [[String: Any]])?.count == 1)

            // Both healthy, each answering on its port.
            let tasks = try await waitHealthy(port, "/web", count: 2)
            for task in tasks {
                let host = try #require(task["host"] as? String)
                let taskPort = try #require((task["ports"] as? [Int])?.first)
                #expect(try await call(taskPort, .GET, "/").status == 200, "\(host):\(taskPort)")
                #expect((task["healthCheckResults"] as? [[String: Any]])?.first?["alive"] as? Bool == true)
            }
            #expect((try await call(port, .GET, "/v2/apps").object["apps"] as? [Any])?.count == 1)
            #expect((try await call(port, .GET, "/v2/tasks").object["tasks"] as? [Any])?.count == 2)

            // Scaled to 3: one more, the two kept.
            let scaled = try await call(port, .PUT, "/v2/apps/web", body: #"{"instances":3}"#)
            #expect(scaled.status == 200 && scaled.object["deploymentId"] is String && scaled.object["version"] is String, "\(scaled.body)")
            let three = try await waitHealthy(port, "/web", count: 3)
            let before = Set(tasks.compactMap { $0["id"] as? String })
            #expect(before.isSubset(of: Set(three.compactMap { $0["id"] as? String })))
            #expect((try await call(port, .GET, "/v2/apps/web/versions").object["versions"] as? [String])?.count == 2)
            #expect(try await call(port, .GET, "/v2/deployments").body == "[]")

            // One instance's task killed through the master: replaced.
            let victim = try #require(three.first?["id"] as? String)
            let services = try JSONDecoder().decode(
                ComputeAPI.ServiceList.self,
                from: Data(try await callMaster(cluster, .GET, "/api/v1/services?label=marathon.instance=\(victim)&active=true").body.utf8))
            let taskId = try #require(services.services.first?.task?.attempt.taskId)
            #expect(try await callMaster(cluster, .POST, "/api/v1/tasks/\(taskId)/kill").status == 200)
            let replaced = try await eventually("a replacement of \(victim)") { () -> [[String: Any]]? in
                let tasks = try await waitHealthy(port, "/web", count: 3)
                return tasks.contains { $0["id"] as? String == victim } ? nil : tasks
            }
            #expect(replaced.count == 3)
            // Killed through the launcher (Marathon's kill of one task): replaced too.
            let second = try #require(replaced.first?["id"] as? String)
            let killed = try await call(port, .DELETE, "/v2/apps/web/tasks/\(second)")
            #expect(killed.status == 200 && (killed.object["task"] as? [String: Any])?["id"] as? String == second, "\(killed.body)")
            #expect(try await call(port, .DELETE, "/v2/apps/web/tasks/web.instance-999").status == 404)
            _ = try await eventually("a replacement of \(second)") { () -> Bool? in
                let tasks = try await waitHealthy(port, "/web", count: 3)
                return tasks.contains { $0["id"] as? String == second } ? nil : true
            }
            #expect(try await masterServices(cluster, activeOnly: true).services.count == 3)

            // A changed command rolls out: every instance replaced by one of the new version,
            // the old ones' ends seen (they leave the launcher's tasks).
            let updated = try await call(port, .PUT, "/v2/apps/web?force=True", body: #"{"cmd":"exec python3 -m http.server $PORT0 --bind 127.0.0.1"}"#)
            let newVersion = try #require(updated.object["version"] as? String, "\(updated.body)")
            let rolled = try await eventually("the rolling update to \(newVersion)") { () -> [[String: Any]]? in
                let tasks = try await waitHealthy(port, "/web", count: 3)
                return tasks.allSatisfy { $0["version"] as? String == newVersion } ? tasks : nil
            }
            #expect(Set(rolled.compactMap { $0["id"] as? String }).isDisjoint(with: Set(replaced.compactMap { $0["id"] as? String })))
            #expect(try await masterServices(cluster, activeOnly: true).services.count == 3)

            // Rolled back to the first version (Marathon's PUT {"version": V}): its command and its
            // two instances again.
            let versions = try #require(try await call(port, .GET, "/v2/apps/web/versions").object["versions"] as? [String])
            let firstVersion = try #require(versions.sorted().first)
            let rollback = try await call(port, .PUT, "/v2/apps/web?force=True", body: #"{"version":"\#(firstVersion)"}"#)
            #expect(rollback.status == 200 && rollback.object["deploymentId"] is String, "\(rollback.body)")
            _ = try await eventually("the rollback to \(firstVersion)") { () -> Bool? in
                let app = try await call(port, .GET, "/v2/apps/web").object["app"] as? [String: Any]
                let tasks = try await waitHealthy(port, "/web", count: 2)
                guard let cmd = app?["cmd"] as? String, !cmd.contains("--bind"), app?["instances"] as? Int == 2, tasks.count == 2,
                      tasks.allSatisfy({ $0["version"] as? String != newVersion })
                else { return nil }
                return true
            }
            let badVersion = try await call(port, .PUT, "/v2/apps/web", body: #"{"version":"yesterday"}"#)
            #expect(badVersion.status == 422, "\(badVersion.body)")
            let unknownVersion = try await call(port, .PUT, "/v2/apps/web", body: #"{"version":"2001-01-01T00:00:00.000Z"}"#)
            #expect(unknownVersion.status == 404, "\(unknownVersion.body)")

            // Refused as Marathon refuses, nothing deployed.
            let notJSON = try await call(port, .POST, "/v2/apps", body: #"{"id":"/bad","#)
            #expect(notJSON.status == 400 && notJSON.object["message"] as? String == "Invalid JSON", "\(notJSON.body)")
            let both = try await call(port, .POST, "/v2/apps", body: #"{"id":"/bad","cmd":"sleep 1","args":["sleep","1"]}"#)
            #expect(both.status == 422 && both.object["message"] as? String == "Object is not valid", "\(both.body)")
            #expect(both.body.contains("must either contain one of 'cmd' or 'args'"))
            let wrongType = try await call(port, .POST, "/v2/apps", body: #"{"id":"/bad","cmd":"sleep 1","cpus":"many"}"#)
            #expect(wrongType.status == 422 && wrongType.body.contains("error.expected.jsnumber"), "\(wrongType.body)")
            let missing = try await call(port, .GET, "/v2/apps/bad")
            #expect(missing.status == 404 && missing.object["message"] as? String == "App '/bad' does not exist")
            let again = try await call(port, .POST, "/v2/apps", body: webApp)
            #expect(again.status == 409 && again.object["message"] as? String == "An app with id [/web] already exists.")
            #expect((try await call(port, .GET, "/v2/apps").object["apps"] as? [Any])?.count == 1)

            // Deleted: its instances go.
            let deleted = try await call(port, .DELETE, "/v2/apps/web")
            #expect(deleted.status == 200 && deleted.object["deploymentId"] is String)
            _ = try await eventually("the app's tasks ended") {
                try await masterServices(cluster, activeOnly: true).services.isEmpty ? true : nil
            }
            #expect(try await call(port, .GET, "/v2/apps/web").status == 404)
            _ = try await eventually("the launcher saw its tasks end") {
                (try await call(port, .GET, "/v2/tasks").object["tasks"] as? [Any])?.isEmpty == true ? true : nil
            }
        }
    }

    @Test func anInstanceFailingItsHealthChecksIsKilledAndReplaced() async throws {
        try await withLauncherCluster { cluster in
            try await makeHome(cluster)
            let port = try #require(cluster.launcherPort)
            let sick = #"{"id":"/sick","cmd":"exec python3 -m http.server $PORT0","cpus":0.1,"mem":64,"backoffSeconds":1,"healthChecks":[{"protocol":"HTTP","path":"/missing","intervalSeconds":1,"gracePeriodSeconds":1,"timeoutSeconds":1,"maxConsecutiveFailures":1}]}"#
            #expect(try await call(port, .POST, "/v2/apps", body: sick).status == 201)
            let first = try await eventually("the first instance running") { () -> String? in
                let tasks = try await app(port, "/sick")["tasks"] as? [[String: Any]] ?? []
                return tasks.first { $0["state"] as? String == "TASK_RUNNING" }?["id"] as? String
            }
            // Its checks fail (404) past the grace period: killed, and another one started.
            let ended = try await eventually("the first instance killed and replaced") { () -> Bool? in
                let services = try await masterServices(cluster, activeOnly: false).services
                let firstEnded = services.contains { $0.job.service?.labels["marathon.instance"] == first && $0.job.state == .killed }
                let other = services.contains { $0.job.service?.labels["marathon.instance"] != first }
                return firstEnded && other ? true : nil
            }
            #expect(ended)
            _ = try await eventually("the launcher saw the first instance end") { () -> Bool? in
                let tasks = try await app(port, "/sick")["tasks"] as? [[String: Any]] ?? []
                return tasks.allSatisfy { $0["id"] as? String != first } ? true : nil
            }
        }
    }

    @Test func aCommandCheckRunsOnTheAgentWhichKillsAFailingInstanceAndItIsReplaced() async throws {
        try await withLauncherCluster { cluster in
            try await makeHome(cluster)
            let port = try #require(cluster.launcherPort)
            let definition = #"{"id":"/checked","cmd":"touch ok; exec sleep 600","cpus":0.1,"mem":32,"backoffSeconds":1,"healthChecks":[{"protocol":"COMMAND","command":{"value":"test -e ok"},"intervalSeconds":1,"gracePeriodSeconds":0,"timeoutSeconds":5,"delaySeconds":0,"maxConsecutiveFailures":2}]}"#
            let created = try await call(port, .POST, "/v2/apps", body: definition)
            #expect(created.status == 201, "\(created.body)")
            // Healthy by its agent's word.
            let first = try await eventually("the instance healthy by its COMMAND check") { () -> String? in
                let tasks = try await app(port, "/checked")["tasks"] as? [[String: Any]] ?? []
                return tasks.first { task in
                    let results = task["healthCheckResults"] as? [[String: Any]] ?? []
                    return task["state"] as? String == "TASK_RUNNING" && results.first?["alive"] as? Bool == true
                }?["id"] as? String
            }
            let service = try #require(try await masterServices(cluster, activeOnly: true).services.first {
                $0.job.service?.labels["marathon.instance"] == first
            })
            #expect(service.job.service?.healthCheck?.command == "test -e ok")
            let taskId = try #require(service.task?.attempt.taskId)
            let sandboxes = try FileManager.default.contentsOfDirectory(atPath: cluster.directory).map { cluster.directory + "/" + $0 + "/agent/sandboxes/" + taskId }
            let sandbox = try #require(sandboxes.first { FileManager.default.fileExists(atPath: $0) })

            // The file goes: the agent kills it after two failures; the launcher replaces it.
            try FileManager.default.removeItem(atPath: sandbox + "/ok")
            let replaced = try await eventually("the instance killed by its agent and replaced") { () -> Bool? in
                let services = try await masterServices(cluster, activeOnly: false).services
                let killed = services.first { $0.job.service?.labels["marathon.instance"] == first && $0.job.state == .killed }
                let other = services.contains { $0.job.service?.labels["marathon.instance"] != first && !$0.job.state.isTerminal }
                guard let killed, other else { return nil }
                return killed.task?.attempt.reason == "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"
            }
            #expect(replaced)
            let failure = try await eventually("the app's last task failure") { () -> [String: Any]? in
                try await app(port, "/checked")["lastTaskFailure"] as? [String: Any]
            }
            #expect(failure["taskId"] as? String == first, "\(failure)")
        }
    }

    @Test func anAppRunsFromAnImageInTheStoreAndAnUnknownImageIsRefused() async throws {
        try await withLauncherCluster { cluster in
            try await makeHome(cluster)
            let port = try #require(cluster.launcherPort)
            let directory = cluster.directory + "/layout"
            _ = try TestLayout.write(
                at: directory, tag: "1", layers: [try TestLayout.busyboxLayer(), TestLayout.fileLayer("etc/motd", "hello from the image\n")],
                cmd: ["sh"])
            try await cluster.pushImage(from: directory, repository: "tools/busybox", tag: "1")

            // Not in the store: Marathon's 422, nothing deployed.
            let unknown = #"{"id":"/ghost","cmd":"sleep 600","mem":32,"container":{"type":"MESOS","docker":{"image":"nope/none:1"}}}"#
            let refused = try await call(port, .POST, "/v2/apps", body: unknown)
            #expect(refused.status == 422, "\(refused.body)")
            let details = refused.object["details"] as? [[String: Any]] ?? []
            #expect(details.first?["path"] as? String == "/container/docker/image", "\(refused.body)")
            let firstError = (details.first?["errors"] as? [String])?.first ?? ""
            #expect(firstError.contains("nope/none:1"), "\(firstError)")
            #expect((try await call(port, .GET, "/v2/apps").object["apps"] as? [Any])?.isEmpty == true)
            let badGroup = try await call(port, .POST, "/v2/groups", body: #"{"id":"/g","apps":[{"id":"a","cmd":"sleep 1","container":{"docker":{"image":"nope/none:1"}}}]}"#)
            #expect(badGroup.status == 422, "\(badGroup.body)")

            // In the store: the instance runs from it (its root is the image's).
            let definition = #"{"id":"/boxed","cmd":"cat /etc/motd; exec sleep 600","cpus":0.1,"mem":32,"container":{"type":"DOCKER","docker":{"image":"tools/busybox:1"}}}"#
            let created = try await call(port, .POST, "/v2/apps", body: definition)
            #expect(created.status == 201, "\(created.body)")
            let service = try await eventually("the instance running from its image") { () -> ComputeAPI.ServiceView? in
                try await masterServices(cluster, activeOnly: true).services.first { $0.job.service?.labels["marathon.app"] == "/boxed" && $0.task?.attempt.state == .running }
            }
            #expect(service.job.image?.reference == "tools/busybox:1")
            let taskId = try #require(service.task?.attempt.taskId)
            let stdout = try await eventually("the image's file printed") { () -> String? in
                for node in try FileManager.default.contentsOfDirectory(atPath: cluster.directory) {
                    if let text = try? String(contentsOfFile: cluster.directory + "/\(node)/agent/sandboxes/\(taskId)/stdout", encoding: .utf8),
                       !text.isEmpty { return text }
                }
                return nil
            }
            #expect(stdout == "hello from the image\n")
        }
    }

    @Test func uniqueHostnameHoldsAcrossAnAppsInstances() async throws {
        try await withLauncherCluster { cluster in
            try await makeHome(cluster)
            let port = try #require(cluster.launcherPort)
            let agents = cluster.agents.count
            try #require(agents >= 2)
            let definition = #"{"id":"/spread","cmd":"exec sleep 600","cpus":0.1,"mem":16,"instances":\#(agents + 1),"constraints":[["hostname","UNIQUE"]]}"#
            #expect(try await call(port, .POST, "/v2/apps", body: definition).status == 201)
            let hosts = try await eventually("one instance on every agent") { () -> [String]? in
                let running = try await masterServices(cluster, activeOnly: true).services.filter {
                    $0.job.service?.labels["marathon.app"] == "/spread" && $0.task?.attempt.state == .running
                }
                return running.count == agents ? running.compactMap { $0.task?.agentHostname } : nil
            }
            #expect(Set(hosts).count == agents, "\(hosts)")
            // The one more waits in the master: no host is free of the app.
            let services = try await masterServices(cluster, activeOnly: true).services.filter { $0.job.service?.labels["marathon.app"] == "/spread" }
            #expect(services.count == agents + 1 && services.filter { $0.task == nil }.count == 1)
        }
    }

    @Test func aRestartedLauncherAdoptsItsInstances() async throws {
        try await withLauncherCluster(launcher: false) { cluster in
            try await makeHome(cluster)
            // A snapshot every three records: the second launcher starts from one.
            let first = try await StandaloneLauncher.start(cluster, snapshotEveryRecords: 3)
            // A TCP check this time: healthy once the server accepts connections.
            let tcpApp = webApp.replacingOccurrences(of: #""protocol":"HTTP","path":"/","#, with: #""protocol":"TCP","#)
            #expect(tcpApp.contains(#""protocol":"TCP""#))
            let created = try await call(first.port, .POST, "/v2/apps", body: tcpApp)
            #expect(created.status == 201, "\(created.body)")
            let tasks = try await waitHealthy(first.port, "/web", count: 2)
            let submitted = try await masterServices(cluster, activeOnly: false).services.count
            let all = try await masterServices(cluster, activeOnly: false).services.map { ($0.job.state, $0.task?.attempt.message, $0.task?.attempt.stderrTail) }
            #expect(submitted == 2, "\(all)")
            await first.stop()

            let snapshots = try await cluster.client().list("/system/launcher").map { ($0.path as NSString).lastPathComponent }.filter { $0.hasPrefix("snapshot-") }
            #expect(!snapshots.isEmpty)
            let second = try await StandaloneLauncher.start(cluster, snapshotEveryRecords: 3)
            let adopted = try await waitHealthy(second.port, "/web", count: 2)
            #expect(Set(adopted.compactMap { $0["id"] as? String }) == Set(tasks.compactMap { $0["id"] as? String }))
            #expect(Set(adopted.compactMap { ($0["ports"] as? [Int])?.first }) == Set(tasks.compactMap { ($0["ports"] as? [Int])?.first }))
            // Nothing new was started, and nothing killed.
            let services = try await masterServices(cluster, activeOnly: false).services
            #expect(services.count == 2 && services.allSatisfy { !$0.job.state.isTerminal }, "\(services.map(\.job.state))")
            await second.stop()
        }
    }
}
