import Foundation
import Hummingbird
import StrataCore
import StrataCron
import StrataHTTP

extension CronScheduler {
    /// The cron service's HTTP API: Chronos' REST API under `/v1/scheduler/` and the older
    /// `/scheduler/` (docs/cron.md "The API"):
    ///
    /// - `GET jobs`, `GET jobs/search?name=&command=&any=&limit=&offset=`, `DELETE jobs`
    /// - `POST iso8601` (a scheduled job), `POST dependency` (a dependent job); `PUT` on both as
    ///   the pre-v1 API takes updates: 204
    /// - `GET job/{name}`, `PUT job/{name}[?arguments=]` (run now), `DELETE job/{name}`: 204
    /// - `DELETE task/kill/{name}`: 204
    /// - `GET job/stat/{name}`, `GET graph/dot`, `GET graph/csv`
    /// - Strata's: `PUT job/{name}/suspend`, `PUT job/{name}/resume`, `GET job/{name}/history`,
    ///   `GET job/{name}/next?count=N`
    /// - `GET /ping`, `GET /metrics`
    public func respond(to request: Request) async -> Response {
        let call = APIRequest(request)
        do {
            try call.requireSecret(configuration.token, service: "cron service")
            return try await route(call, request)
        } catch let error as CronError {
            return JSONAPI.response(["message": error.message], status: .init(code: error.status))
        } catch {
            return JSONAPI.error(error)
        }
    }

    func route(_ call: APIRequest, _ request: Request) async throws -> Response {
        var path = call.components
        if call.match(.get, "ping") != nil { return JSONAPI.bytes(Array("pong\n".utf8), contentType: "text/plain") }
        if call.match(.get, "metrics") != nil { return JSONAPI.bytes(Array(metricsText().utf8), contentType: "text/plain; version=0.0.4") }
        // Chronos' leader: this service, the only one.
        if call.match(.get, "leader") != nil {
            return json(.object(["leader": .string("\(configuration.host):\(servingPort.withLock { $0 } ?? configuration.port)")]))
        }
        if path.first == "v1" { path.removeFirst() }
        guard path.first == "scheduler", path.count >= 2 else {
            throw APIError.notFound("no such resource: \(call.method) /\(call.components.joined(separator: "/"))")
        }
        path.removeFirst()
        var routed = call
        routed.components = path
        return try await routeScheduler(routed, request)
    }

    func routeScheduler(_ call: APIRequest, _ request: Request) async throws -> Response {
        if call.match(.get, "jobs") != nil {
            return json(state.withLock { $0.jobsJSON() })
        } else if call.match(.get, "jobs/summary") != nil {
            return json(state.withLock { $0.jobsSummaryJSON() })
        } else if let percentile = call.match(.get, "stats/*")?.first {
            return json(state.withLock { $0.statsJSON(percentile) })
        } else if call.match(.get, "jobs/search") != nil {
            let limit = try call.integer("limit").map { Int(clamping: $0) }
            let offset = try call.integer("offset").map { Int(clamping: $0) }
            return json(state.withLock {
                $0.searchJSON(name: call.query["name"], command: call.query["command"], any: call.query["any"], limit: limit, offset: offset)
            })
        } else if call.match(.delete, "jobs") != nil {
            let names = state.withLock { $0.jobs.keys.sorted() }
            // Children first, so that no parent is removed from under a child.
            for name in names.reversed() {
                _ = try? await handle { state, now, wall in (try state.remove(name, now: now, wallTimeMs: wall).get(), ()) }
            }
            return noContent()
        } else if let kind = call.match(.post, "iso8601") != nil || call.match(.put, "iso8601") != nil ? "iso8601"
                    : call.match(.post, "dependency") != nil || call.match(.put, "dependency") != nil ? "dependency" : nil {
            let body = try await JSONAPI.bodyBytes(of: request)
            // Read at the instant it is stored: an empty start is that instant, so the first
            // run is due at once rather than counted as already handled.
            let job = try await handle { state, now, wall in
                let job = try CronJob.parse(body, nowMs: wall)
                if kind == "iso8601", job.schedule == nil {
                    throw CronError(.neitherScheduleNorParents, "a job posted to iso8601 needs a schedule (dependent jobs go to dependency)")
                }
                if kind == "dependency", job.parents.isEmpty {
                    throw CronError(.neitherScheduleNorParents, "a job posted to dependency needs parents (scheduled jobs go to iso8601)")
                }
                var outcome = try state.put(job, now: now, wallTimeMs: wall).get()
                outcome.append(state.tick(now: now, wallTimeMs: wall))
                return (outcome, job)
            }
            logger.info("cron job stored", metadata: ["job": "\(job.name)"])
            return noContent()
        } else if let name = call.match(.get, "job/stat/*")?.first {
            return json(try state.withLock { state throws(CronError) in try state.jobStatJSON(name) })
        } else if let name = call.match(.delete, "task/kill/*")?.first {
            try await handle { state, now, wall in (try state.kill(name, now: now, wallTimeMs: wall).get(), ()) }
            return noContent()
        } else if call.match(.get, "graph/dot") != nil {
            return JSONAPI.bytes(Array(state.withLock { $0.graphDot() }.utf8), contentType: "text/plain")
        } else if call.match(.get, "graph/csv") != nil {
            return JSONAPI.bytes(Array(state.withLock { $0.graphCSV() }.utf8), contentType: "text/plain")
        } else if let name = call.match(.put, "job/success/*")?.first {
            // Chronos answers 200 with this text (false for a job it does not know).
            let marked: Bool
            do {
                try await handle { state, now, wall in (try state.markSucceeded(name, now: now, wallTimeMs: wall).get(), ()) }
                marked = true
            } catch let error as CronError where error.kind == .jobNotFound {
                marked = false
            }
            return JSONAPI.bytes(Array("marked job \(name) as successful: \(marked)".utf8), contentType: "text/plain")
        } else if let name = call.match(.get, "job/*")?.first {
            guard let job = state.withLock({ $0.jobJSON(name) }) else { throw CronState.notFound(name) }
            return json(job)
        } else if let name = call.match(.put, "job/*")?.first {
            let arguments = call.query["arguments"].flatMap { $0.isEmpty ? nil : $0 }
            try await handle { state, now, wall in (try state.runNow(name, arguments: arguments, now: now, wallTimeMs: wall).get(), ()) }
            return noContent()
        } else if let name = call.match(.delete, "job/*")?.first {
            try await handle { state, now, wall in (try state.remove(name, now: now, wallTimeMs: wall).get(), ()) }
            logger.info("cron job removed", metadata: ["job": "\(name)"])
            return noContent()
        } else if let name = call.match(.put, "job/*/suspend")?.first {
            try await handle { state, now, wall in (try state.suspend(name, now: now, wallTimeMs: wall).get(), ()) }
            return noContent()
        } else if let name = call.match(.put, "job/*/resume")?.first {
            try await handle { state, now, wall in (try state.resume(name, now: now, wallTimeMs: wall).get(), ()) }
            return noContent()
        } else if let name = call.match(.get, "job/*/history")?.first {
            return json(try state.withLock { state throws(CronError) in try state.historyJSON(name) })
        } else if let name = call.match(.get, "job/*/next")?.first {
            let count = Int(clamping: try call.integer("count") ?? 1)
            let wall = clock.wallTimeMs
            let times = try state.withLock { state throws(CronError) in try state.nextFireTimes(name, after: wall, count: count) }
            return json(.array(times.map { .string(formatWallTime($0, dateSeparator: "-", timeSeparator: ":") + "Z") }))
        }
        throw APIError.notFound("no such resource: \(call.method) /scheduler/\(call.components.joined(separator: "/"))")
    }

    func json(_ value: CronJSON) -> Response {
        JSONAPI.bytes(Array(value.serialized.utf8), contentType: "application/json")
    }

    /// Chronos answers changes with 204 and no body (its Python client insists on it).
    func noContent() -> Response {
        JSONAPI.bytes([], status: .noContent, contentType: "application/json")
    }

    /// The service's counts in Prometheus' text format.
    func metricsText() -> String {
        let (jobs, inFlight) = state.withLock { ($0.jobs.count, $0.runs.count) }
        let counts = counters.withLock { $0 }
        var lines = [
            "# TYPE strata_cron_jobs gauge", "strata_cron_jobs \(jobs)",
            "# TYPE strata_cron_runs_in_flight gauge", "strata_cron_runs_in_flight \(inFlight)",
            "# TYPE strata_cron_submissions_total counter", "strata_cron_submissions_total \(counts.submitted)",
            "# TYPE strata_cron_submission_failures_total counter", "strata_cron_submission_failures_total \(counts.submitFailures)",
            "# TYPE strata_cron_runs_ended_total counter",
        ]
        for (outcome, count) in counts.ended.sorted(by: { $0.key < $1.key }) {
            lines.append("strata_cron_runs_ended_total{outcome=\"\(outcome)\"} \(count)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
