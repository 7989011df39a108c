import AsyncHTTPClient
import Foundation
import NIOCore
import StrataApps
import StrataCore
@testable import StrataLauncher
import Synchronization
import Testing

/// The API beyond single apps, on a real cluster: `/v2/apps` filters and embeds, groups, the
/// launch queue, killing tasks with and without scaling, `/metrics`, and `/v2/events`. Part of
/// the serialized suite, so that only one cluster runs at a time (the health checks of the other
/// tests' instances have tight intervals).
extension StrataLauncherTests {
    @Test func filtersGroupsTasksQueueAndMetrics() async throws {
        try await withLauncherCluster { cluster in
            try await makeHome(cluster)
            let port = try #require(cluster.launcherPort)

            // A group of two apps, deployed as one deployment.
            let shop = #"""
                {"id":"/shop","apps":[
                  {"id":"web","cmd":"exec python3 -m http.server $PORT0","instances":2,"cpus":0.1,"mem":64,"labels":{"tier":"frontend"}},
                  {"id":"db","cmd":"exec sleep 600","cpus":0.1,"mem":32,"labels":{"tier":"backend","disk":"ssd"}}]}
                """#
            let created = try await call(port, .POST, "/v2/groups", body: shop)
            #expect(created.status == 201 && created.object["deploymentId"] is String && created.object["version"] is String, "\(created.body)")
            let again = try await call(port, .POST, "/v2/groups", body: shop)
            #expect(again.status == 409 && again.object["message"] as? String == "Group /shop is already created. Use PUT to change this group.", "\(again.body)")
            _ = try await waitRunning(port, "/shop/web", count: 2)
            _ = try await waitRunning(port, "/shop/db", count: 1)

            // Filters: labels, command and id, as Marathon's AppsResource.search.
            func ids(_ query: String) async throws -> [String] {
                let reply = try await call(port, .GET, "/v2/apps?\(query)")
                #expect(reply.status == 200, "\(query): \(reply.body)")
                return (reply.object["apps"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
            }
            #expect(try await ids("label=tier==frontend") == ["/shop/web"])
            #expect(try await ids("label=" + encode("tier in (backend, other), disk")) == ["/shop/db"])
            #expect(try await ids("label=" + encode("tier!=frontend")) == ["/shop/db"])
            #expect(try await ids("cmd=SLEEP") == ["/shop/db"])
            #expect(try await ids("id=shop/w") == ["/shop/web"])
            #expect(try await ids("label=nothere").isEmpty)
            let malformed = try await call(port, .GET, "/v2/apps?label=" + encode("tier in frontend"))
            #expect(malformed.status == 422, "\(malformed.body)")
            #expect((malformed.object["message"] as? String)?.hasPrefix("Can not parse label selector tier in frontend. Reason:") == true, "\(malformed.body)")

            // Embeds: counts and deployments always; tasks, taskStats, readiness when asked.
            let plain = try await call(port, .GET, "/v2/apps?id=web").object["apps"] as? [[String: Any]]
            #expect(plain?.first?["tasks"] == nil && plain?.first?["tasksRunning"] as? Int == 2 && plain?.first?["deployments"] != nil)
            let embedded = try await call(port, .GET, "/v2/apps?id=web&embed=apps.tasks&embed=apps.taskStats&embed=apps.readiness")
            let web = try #require((embedded.object["apps"] as? [[String: Any]])?.first)
            #expect((web["tasks"] as? [Any])?.count == 2)
            #expect(web["readinessCheckResults"] as? [Any] != nil)
            let totals = ((web["taskStats"] as? [String: Any])?["totalSummary"] as? [String: Any])?["stats"] as? [String: Any]
            #expect((totals?["counts"] as? [String: Any])?["running"] as? Int == 2, "\(embedded.body)")

            // Groups: the tree, one group, an unknown one.
            let root = try await call(port, .GET, "/v2/groups").object
            #expect(root["id"] as? String == "/")
            let shopGroup = try #require((root["groups"] as? [[String: Any]])?.first)
            #expect(shopGroup["id"] as? String == "/shop")
            #expect(Set((shopGroup["apps"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }) == ["/shop/web", "/shop/db"])
            #expect((try await call(port, .GET, "/v2/groups/shop").object["apps"] as? [Any])?.count == 2)
            let unknown = try await call(port, .GET, "/v2/groups/nothing")
            #expect(unknown.status == 404 && unknown.object["message"] as? String == "Group '/nothing' does not exist", "\(unknown.body)")
            #expect(try await call(port, .DELETE, "/v2/groups/nothing").status == 404)
            #expect(try await call(port, .GET, "/v2/groups/shop/web").status == 404, "an app is not a group")
            let notJSON = try await call(port, .PUT, "/v2/groups/shop", body: #"{"apps":["#)
            #expect(notJSON.status == 400 && notJSON.object["message"] as? String == "Invalid JSON", "\(notJSON.body)")
            let wrongType = try await call(port, .POST, "/v2/groups", body: #"{"id":"/g","apps":[{"id":"a","cmd":"sleep 9","cpus":"many"}]}"#)
            #expect(wrongType.status == 422 && wrongType.body.contains("/apps(0)/cpus") && wrongType.body.contains("error.expected.jsnumber"), "\(wrongType.body)")

            // PUT naming only web: db is removed, web (unchanged) keeps its instances.
            let webTasks = Set(try await waitRunning(port, "/shop/web", count: 2).compactMap { $0["id"] as? String })
            let onlyWeb = #"{"apps":[{"id":"web","cmd":"exec python3 -m http.server $PORT0","instances":2,"cpus":0.1,"mem":64,"labels":{"tier":"frontend"}}]}"#
            let put = try await call(port, .PUT, "/v2/groups/shop", body: onlyWeb)
            #expect(put.status == 200 && put.object["deploymentId"] is String, "\(put.body)")
            _ = try await eventually("/shop/db removed") { try await call(port, .GET, "/v2/apps/shop/db").status == 404 ? true : nil }
            _ = try await eventually("the deployment done") { try await call(port, .GET, "/v2/deployments").body == "[]" ? true : nil }
            #expect(Set(try await waitRunning(port, "/shop/web", count: 2).compactMap { $0["id"] as? String }) == webTasks)

            // One task killed with scale=true: a new version with one instance, that task gone.
            let versionBefore = try await app(port, "/shop/web")["version"] as? String
            let victim = try #require(webTasks.sorted().first)
            let scaled = try await call(port, .DELETE, "/v2/apps/shop/web/tasks/\(victim)?scale=true")
            #expect(scaled.status == 200 && scaled.object["deploymentId"] is String, "\(scaled.body)")
            let remaining = try await eventually("one web instance left") { () -> [[String: Any]]? in
                let tasks = try await waitRunning(port, "/shop/web", count: 1)
                return tasks.first?["id"] as? String == victim ? nil : tasks
            }
            let webNow = try await app(port, "/shop/web")
            #expect(webNow["instances"] as? Int == 1 && webNow["version"] as? String != versionBefore)

            // Killed without scale: replaced by another.
            let survivor = try #require(remaining.first?["id"] as? String)
            let killed = try await call(port, .POST, "/v2/tasks/delete", body: #"{"ids":["\#(survivor)"]}"#)
            #expect(killed.status == 200 && (killed.object["tasks"] as? [[String: Any]])?.first?["id"] as? String == survivor, "\(killed.body)")
            _ = try await eventually("a replacement of \(survivor)") { () -> Bool? in
                let tasks = try await waitRunning(port, "/shop/web", count: 1)
                return tasks.first?["id"] as? String == survivor ? nil : true
            }
            #expect(try await app(port, "/shop/web")["instances"] as? Int == 1)
            let badId = try await call(port, .POST, "/v2/tasks/delete", body: #"{"ids":["not-a-task"]}"#)
            #expect(badId.status == 400 && (badId.object["message"] as? String)?.hasPrefix("Invalid task id 'not-a-task'.") == true, "\(badId.body)")
            #expect(try await call(port, .POST, "/v2/tasks/delete", body: #"{"tasks":[]}"#).status == 422)
            #expect(try await call(port, .POST, "/v2/tasks/delete?scale=true&wipe=true", body: #"{"ids":[]}"#).status == 400)
            #expect(try await call(port, .DELETE, "/v2/apps/shop/web/tasks/shop_web.instance-999").status == 404)
            // Every task of the app on its host, with scale: none left, none started.
            let host = try #require((try await waitRunning(port, "/shop/web", count: 1)).first?["host"] as? String)
            let allGone = try await call(port, .DELETE, "/v2/apps/shop/web/tasks?host=\(host)&scale=true")
            #expect(allGone.status == 200 && allGone.object["deploymentId"] is String, "\(allGone.body)")
            _ = try await eventually("no web instance left") { () -> Bool? in
                let app = try await app(port, "/shop/web")
                return app["instances"] as? Int == 0 && (app["tasks"] as? [Any])?.isEmpty == true ? true : nil
            }

            // A failing app waits in the queue with its backoff; resetting the delay launches
            // it again at once (its next failure is a new lastTaskFailure).
            let failing = #"{"id":"/failing","cmd":"exit 3","cpus":0.1,"mem":32,"backoffSeconds":600,"maxLaunchDelaySeconds":3600}"#
            #expect(try await call(port, .POST, "/v2/apps", body: failing).status == 201)
            let entry = try await eventually("/failing held back in the queue") { () -> [String: Any]? in
                let queue = try await call(port, .GET, "/v2/queue").object["queue"] as? [[String: Any]] ?? []
                return queue.first { ($0["app"] as? [String: Any])?["id"] as? String == "/failing" && ($0["delay"] as? [String: Any])?["overdue"] as? Bool == false }
            }
            #expect(entry["count"] as? Int == 1 && entry["since"] is String)
            let timeLeft = try #require((entry["delay"] as? [String: Any])?["timeLeftSeconds"] as? Int)
            #expect(timeLeft > 500 && timeLeft <= 600)
            let firstFailure = try #require((try await app(port, "/failing")["lastTaskFailure"] as? [String: Any])?["taskId"] as? String)
            #expect(try await app(port, "/failing")["lastTaskFailure"].map { ($0 as? [String: Any])?["state"] as? String } == "TASK_FAILED")
            let reset = try await call(port, .DELETE, "/v2/queue/failing/delay")
            #expect(reset.status == 204, "\(reset.body)")
            _ = try await eventually("/failing launched and failed again") { () -> Bool? in
                let failure = try await app(port, "/failing")["lastTaskFailure"] as? [String: Any]
                return failure?["taskId"] as? String != firstFailure ? true : nil
            }
            let notQueued = try await call(port, .DELETE, "/v2/queue/shop/web/delay")
            #expect(notQueued.status == 404 && notQueued.object["message"] as? String == "Application /shop/web not found in tasks queue.", "\(notQueued.body)")

            // The launcher's own metrics.
            let metrics = try await call(port, .GET, "/metrics").body
            #expect(metrics.contains("strata_launcher_apps 2\n"), "\(metrics)")
            #expect(metrics.contains("# TYPE strata_launcher_launches_total counter"))
            #expect(metrics.contains("strata_launcher_instances{state=\"RUNNING\"} "))
            #expect(metrics.contains("strata_launcher_queue_apps 1\n"), "\(metrics)")
            let launches = metrics.split(separator: "\n").first { $0.hasPrefix("strata_launcher_launches_total ") }
            #expect((launches.flatMap { Int($0.split(separator: " ")[1]) } ?? 0) >= 6, "\(metrics)")
            #expect(metrics.contains("strata_launcher_kills_total "))
            let info = try await call(port, .GET, "/v2/info").object
            #expect((info["http_config"] as? [String: Any])?["http_port"] as? Int == port)

            // The group deleted with its apps, in one deployment.
            let deleted = try await call(port, .DELETE, "/v2/groups/shop")
            #expect(deleted.status == 200 && deleted.object["deploymentId"] is String, "\(deleted.body)")
            _ = try await eventually("/shop gone") { try await call(port, .GET, "/v2/groups/shop").status == 404 ? true : nil }
            #expect(try await call(port, .GET, "/v2/apps/shop/web").status == 404)
        }
    }

    @Test func theEventStreamSendsStatusUpdatesAndDeploymentSuccess() async throws {
        try await withLauncherCluster { cluster in
            try await makeHome(cluster)
            let port = try #require(cluster.launcherPort)
            // Marathon's servlet refuses a client that does not accept event streams.
            #expect(try await call(port, .GET, "/v2/events").status == 405)

            let all = try await EventStreamReader.open(port)
            let onlySuccess = try await EventStreamReader.open(port, query: "?event_type=deployment_success")
            defer {
                all.close()
                onlySuccess.close()
            }
            _ = try await eventually("attached") { all.events().contains { $0.type == "event_stream_attached" } ? true : nil }
            _ = try await eventually("two subscribers") {
                try await call(port, .GET, "/metrics").body.contains("strata_launcher_event_subscribers 2\n") ? true : nil
            }

            let created = try await call(port, .POST, "/v2/apps", body: #"{"id":"/sse","cmd":"exec sleep 600","cpus":0.1,"mem":32}"#)
            let deploymentId = try #require((created.object["deployments"] as? [[String: Any]])?.first?["id"] as? String, "\(created.body)")
            let running = try await eventually("a status_update_event TASK_RUNNING") {
                all.events().first { $0.type == "status_update_event" && $0.data["taskStatus"] as? String == "TASK_RUNNING" }
            }
            #expect(running.data["appId"] as? String == "/sse" && running.data["eventType"] as? String == "status_update_event")
            #expect((running.data["host"] as? String)?.isEmpty == false && running.data["version"] is String && running.data["timestamp"] is String)
            let success = try await eventually("deployment_success") {
                all.events().first { $0.type == "deployment_success" && $0.data["id"] as? String == deploymentId }
            }
            #expect(((success.data["plan"] as? [String: Any])?["steps"] as? [Any])?.count == 1)
            let types = all.events().map(\.type)
            #expect(types.contains("api_post_event") && types.contains("deployment_info") && types.contains("deployment_step_success"), "\(types)")
            // The filtered stream got the deployment's success and nothing else.
            _ = try await eventually("the filtered stream's deployment_success") {
                onlySuccess.events().contains { $0.data["id"] as? String == deploymentId } ? true : nil
            }
            #expect(Set(onlySuccess.events().map(\.type)) == ["deployment_success"])

            // A client that goes is dropped (found when the next events are written).
            onlySuccess.close()
            #expect(try await call(port, .DELETE, "/v2/apps/sse").status == 200)
            _ = try await eventually("app_terminated_event") { all.events().contains { $0.type == "app_terminated_event" } ? true : nil }
            _ = try await eventually("one subscriber left") {
                try await call(port, .GET, "/metrics").body.contains("strata_launcher_event_subscribers 1\n") ? true : nil
            }
        }
    }

    @Test func aSubscriberThatDoesNotReadIsDroppedWithoutHoldingUpPublishing() async throws {
        let bus = LauncherEventBus()
        let slow = bus.subscribe(current: LauncherState(), wallTimeMs: 0)
        let app = AppDefinition(id: PathId("/a"), cmd: "serve")
        // More events than the buffer holds, none read: publishing never waits, and the
        // subscriber is dropped when its buffer overflows.
        for ticket in 1...UInt64(LauncherEventBus.bufferedEventsPerSubscriber + 10) {
            bus.publish([.appPut(app)], ticket: ticket, now: .zero, wallTimeMs: 0)
        }
        #expect(bus.subscriberCount == 0)
        #expect(bus.droppedCount == 1)
        // What it had buffered (the attach notice, then events) stays readable; then it ends.
        var received = 0
        for await _ in slow.items { received += 1 }
        #expect(received == LauncherEventBus.bufferedEventsPerSubscriber)
        // With no subscriber left, records are not even turned into events.
        bus.publish([.appPut(app)], ticket: 2_000, now: .zero, wallTimeMs: 0)
        let next = bus.subscribe(current: LauncherState(), wallTimeMs: 0)
        #expect(bus.subscriberCount == 1)
        bus.unsubscribe(next.id, wallTimeMs: 0)
        #expect(bus.subscriberCount == 0)
    }
}

/// The apps's tasks once `count` run and no deployment is left (for apps without health checks).
func waitRunning(_ port: Int, _ id: String, count: Int) async throws -> [[String: Any]] {
    try await eventually("\(count) running instances of \(id)") {
        let app = try await app(port, id)
        let tasks = app["tasks"] as? [[String: Any]] ?? []
        guard app["tasksRunning"] as? Int == count, tasks.count == count, (app["deployments"] as? [Any])?.isEmpty == true else { return nil }
        return tasks
    }
}

func encode(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
}

/// A client of `/v2/events` reading in the background; `events()` parses what came so far.
final class EventStreamReader: Sendable {
    struct Event {
        var type: String
        var data: [String: Any]
    }

    let text = Mutex("")
    let reading = Mutex<Task<Void, Never>?>(nil)

    static func open(_ port: Int, query: String = "") async throws -> EventStreamReader {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v2/events\(query)")
        request.headers.add(name: "Accept", value: "text/event-stream")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(600))
        guard response.status == .ok, response.headers.first(name: "Content-Type")?.hasPrefix("text/event-stream") == true else {
            throw TestFailure(message: "/v2/events answered \(response.status) \(response.headers)")
        }
        let reader = EventStreamReader()
        reader.reading.withLock { reading in
            reading = Task {
                do {
                    for try await chunk in response.body { reader.text.withLock { $0 += String(buffer: chunk) } }
                } catch {}
            }
        }
        return reader
    }

    func events() -> [Event] {
        let frames = text.withLock { $0 }.components(separatedBy: "\n\n")
        return frames.compactMap { frame in
            var type: String?
            var data: [String: Any]?
            for line in frame.split(separator: "\n") {
                if line.hasPrefix("event: ") { type = String(line.dropFirst(7)) }
                if line.hasPrefix("data: ") {
                    data = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any]
                }
            }
            guard let type, let data else { return nil }
            return Event(type: type, data: data)
        }
    }

    func close() {
        reading.withLock { $0?.cancel() }
    }
}
