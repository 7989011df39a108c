/// What the cron API answers with, rendered from the state as Chronos renders it. Pure: the
/// HTTP shell writes these out as they are.
extension CronState {
    /// A job as Chronos' JSON, with its statistics; nil if there is no such job.
    public func jobJSON(_ name: String) -> CronJSON? {
        jobs[name].map { $0.chronosJSON(stats: statuses[name]?.stats) }
    }

    /// `GET /v1/scheduler/jobs`: every job, by name.
    public func jobsJSON() -> CronJSON {
        .array(jobs.keys.sorted().compactMap(jobJSON))
    }

    /// `GET /v1/scheduler/jobs/search`: the jobs whose name contains `name` and whose command
    /// contains `command` (each ignored when nil or empty), and also any job whose name or
    /// command contains `any`; case-insensitive, as Chronos compares them. Chronos lets `any`
    /// only add jobs, so a search with `any` alone returns every job there; here `any` alone
    /// returns the jobs it matches, as its documentation describes. Sorted by name, then
    /// `offset` jobs skipped and at most `limit` returned (Chronos' defaults: 0 and 10).
    public func search(name: String? = nil, command: String? = nil, any: String? = nil, limit: Int? = nil, offset: Int? = nil) -> [CronJob] {
        func term(_ text: String?) -> String? {
            guard let text, !text.isEmpty else { return nil }
            return text.lowercased()
        }
        let nameTerm = term(name)
        let commandTerm = term(command)
        let anyTerm = term(any)
        let matching = jobs.values.sorted { $0.name < $1.name }.filter { job in
            let jobName = job.name.lowercased()
            let jobCommand = job.command.lowercased()
            var valid = true
            if let nameTerm, !jobName.contains(nameTerm) { valid = false }
            if let commandTerm, !jobCommand.contains(commandTerm) { valid = false }
            if let anyTerm {
                let matchesAny = jobName.contains(anyTerm) || jobCommand.contains(anyTerm)
                if nameTerm == nil, commandTerm == nil { return matchesAny }
                if !valid, matchesAny { valid = true }
            }
            return valid
        }
        let start = min(max(offset ?? 0, 0), matching.count)
        let count = max(limit ?? CronJobLimits.defaultSearchLimit, 0)
        return Array(matching[start..<min(matching.count, start + min(count, matching.count))])
    }

    /// The jobs `search` finds, as Chronos' JSON.
    public func searchJSON(name: String? = nil, command: String? = nil, any: String? = nil, limit: Int? = nil, offset: Int? = nil) -> CronJSON {
        .array(search(name: name, command: command, any: any, limit: limit, offset: offset).compactMap { jobJSON($0.name) })
    }

    /// Chronos' job state for graph/csv: `running` while an attempt runs, `queued` while a
    /// failed attempt waits to retry, else `idle`.
    public func jobState(_ name: String) -> String {
        let inFlight = runs(of: name)
        if inFlight.contains(where: { $0.state == .running }) { return "running" }
        if !inFlight.isEmpty { return "queued" }
        return "idle"
    }

    /// The dependency edges, parent to child, sorted.
    public var dependencyEdges: [(parent: String, child: String)] {
        jobs.values.flatMap { job in job.parents.map { (parent: $0, child: job.name) } }
            .sorted { ($0.parent, $0.child) < ($1.parent, $1.child) }
    }

    /// `GET /v1/scheduler/graph/dot` (text/plain): the dependency graph as JGraphT's
    /// `DOTExporter` writes it for Chronos, vertices numbered from 1 (here in name order) and
    /// labelled with the job names:
    ///
    ///     digraph G {
    ///       1 [ label="extract" ];
    ///       2 [ label="load" ];
    ///       1 -> 2;
    ///     }
    public func graphDot() -> String {
        let names = jobs.keys.sorted()
        let number = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0 + 1) })
        var text = "digraph G {\n"
        for name in names { text += "  \(number[name]!) [ label=\"\(name)\" ];\n" }
        for edge in dependencyEdges {
            guard let from = number[edge.parent], let to = number[edge.child] else { continue }
            text += "  \(from) -> \(to);\n"
        }
        return text + "}\n"
    }

    /// `GET /v1/scheduler/graph/csv` (text/plain), as Chronos' `Exporter` writes it: a line
    /// `node,<name>,<last state>,<state>` per job (`fresh`, `success` or `failure`; `idle`,
    /// `queued` or `running`), then `link,<parent>,<child>` per dependency.
    public func graphCSV() -> String {
        var text = ""
        for name in jobs.keys.sorted() {
            text += "node,\(name),\(statuses[name]?.stats.lastState ?? "fresh"),\(jobState(name))\n"
        }
        for edge in dependencyEdges { text += "link,\(edge.parent),\(edge.child)\n" }
        return text
    }

    /// `GET /v1/scheduler/jobs/summary`: Chronos' `JobSummaryWrapper`, `{"jobs": [...]}` in
    /// name order, each with its `status` (the last run's: `fresh`, `success` or `failure`),
    /// `state` (`idle`, `queued` or `running`), `schedule` (empty for a dependent job),
    /// `parents` and `disabled`. (Chronos fills `status` and `state` this way round.)
    public func jobsSummaryJSON() -> CronJSON {
        var summaries: [CronJSON] = []
        for name in jobs.keys.sorted() {
            guard let job = jobs[name] else { continue }
            summaries.append(.object([
                "name": .string(name), "status": .string(statuses[name]?.stats.lastState ?? "fresh"),
                "state": .string(jobState(name)), "schedule": .string(job.schedule ?? ""),
                "parents": .array(job.parents.map { .string($0) }), "disabled": .boolean(job.disabled),
            ]))
        }
        return .object(["jobs": .array(summaries)])
    }

    /// `GET /v1/scheduler/stats/{percentile}`: Chronos' `StatsResource`: every job with the
    /// statistic `percentile` of its run times (a key of `jobStatJSON`'s histogram:
    /// `99thPercentile`, `98thPercentile`, `95thPercentile`, `75thPercentile`, `median`, `mean`),
    /// as `{"jobNameLabel": name, "time": seconds}`, slowest first. Another name matches no
    /// statistic and gives an empty list, as in Chronos.
    public func statsJSON(_ percentile: String) -> CronJSON {
        var rows: [(name: String, milliseconds: Double)] = []
        for name in jobs.keys.sorted() {
            guard let value = runTimeStatistics(name)?.first(where: { $0.key == percentile })?.value else { continue }
            rows.append((name, value))
        }
        rows.sort { $0.milliseconds != $1.milliseconds ? $0.milliseconds > $1.milliseconds : $0.name < $1.name }
        return .array(rows.map { .object(["jobNameLabel": .string($0.name), "time": .number($0.milliseconds / 1000)]) })
    }

    /// The statistics of a job's run times in milliseconds (of the successful runs history
    /// keeps), by Chronos' names, and how many runs they cover; nil for an unknown job.
    func runTimeStatistics(_ name: String) -> [(key: String, value: Double)]? {
        guard jobs[name] != nil, let status = statuses[name] else { return nil }
        let durations = status.succeeded.compactMap { entry in entry.startedAtMs.map { Double(entry.endedAtMs - $0) } }.sorted()
        return [
            ("75thPercentile", Self.quantile(0.75, of: durations)), ("95thPercentile", Self.quantile(0.95, of: durations)),
            ("98thPercentile", Self.quantile(0.98, of: durations)), ("99thPercentile", Self.quantile(0.99, of: durations)),
            ("median", Self.quantile(0.5, of: durations)), ("mean", durations.isEmpty ? 0 : durations.reduce(0, +) / Double(durations.count)),
            ("count", Double(durations.count)),
        ]
    }

    /// `GET /v1/scheduler/job/stat/{name}`: Chronos' `JobStatWrapper`: a `histogram` of the run
    /// times (milliseconds, of the successful runs history keeps) and `taskStatHistory`, the
    /// runs in flight and the finished runs history keeps, latest first. Chronos writes the
    /// median as `mean`; here `mean` is the mean.
    public func jobStatJSON(_ name: String) throws(CronError) -> CronJSON {
        guard let statistics = runTimeStatistics(name), let status = statuses[name] else { throw Self.notFound(name) }
        let histogram: CronJSON = .object(statistics.map { statistic in
            CronJSON.Member(statistic.key, statistic.key == "count" ? .integer(Int64(statistic.value)) : .number(statistic.value))
        })
        var tasks: [CronJSON] = []
        for run in runs(of: name).reversed() {
            tasks.append(.object([
                "taskId": .string(Self.taskId(run.id, attempt: run.attempt)), "jobName": .string(name), "slaveId": .string(""),
                "startTime": .string(Self.statTime(run.attemptStartedAtMs)), "endTime": .string("N/A"),
                "status": .string(run.state == .running ? "Running" : "Idle"),
            ]))
        }
        for entry in (status.succeeded + status.failed).sorted(by: { ($0.endedAtMs, $0.runId) > ($1.endedAtMs, $1.runId) }) {
            var members: [CronJSON.Member] = [
                .init("taskId", .string(Self.taskId(entry.runId, attempt: max(entry.attempts - 1, 0)))),
                .init("jobName", .string(name)),
                .init("slaveId", .string(entry.agentId ?? "")),
                .init("startTime", .string(entry.startedAtMs.map(Self.statTime) ?? "N/A")),
                .init("endTime", .string(Self.statTime(entry.endedAtMs))),
            ]
            if let started = entry.startedAtMs { members.append(.init("duration", .string(Self.statDuration(entry.endedAtMs - started)))) }
            members.append(.init("status", .string(entry.status == .succeeded ? "Success" : "Fail")))
            tasks.append(.object(members))
        }
        return .object(["histogram": histogram, "taskStatHistory": .array(tasks)])
    }

    /// A job's kept history (`strata cron history NAME`), latest first, with its counts.
    public func historyJSON(_ name: String) throws(CronError) -> CronJSON {
        guard jobs[name] != nil, let status = statuses[name] else { throw Self.notFound(name) }
        let entries: [CronJSON] = status.history.map { entry in
            var members: [CronJSON.Member] = [
                .init("runId", .string(entry.runId.description)),
                .init("scheduledTime", .string(chronosTimestamp(entry.runId.scheduledMs))),
                .init("status", .string(entry.status.rawValue)),
            ]
            if let kind = entry.kind { members.append(.init("kind", .string(kind.rawValue))) }
            members.append(.init("attempts", .integer(Int64(entry.attempts))))
            if let started = entry.startedAtMs { members.append(.init("startedAt", .string(chronosTimestamp(started)))) }
            members.append(.init("endedAt", .string(chronosTimestamp(entry.endedAtMs))))
            if let agent = entry.agentId { members.append(.init("agentId", .string(agent))) }
            if let message = entry.message { members.append(.init("message", .string(message))) }
            return .object(members)
        }
        let inFlight: [CronJSON] = runs(of: name).map { run in
            .object([
                "runId": .string(run.id.description), "kind": .string(run.kind.rawValue), "attempt": .integer(Int64(run.attempt)),
                "state": .string(run.state == .running ? "running" : "waitingToRetry"), "startedAt": .string(chronosTimestamp(run.startedAtMs)),
            ])
        }
        let stats = status.stats
        return .object([
            "name": .string(name), "successCount": .integer(stats.successCount), "errorCount": .integer(stats.errorCount),
            "missedCount": .integer(stats.missedCount), "skippedCount": .integer(stats.skippedCount), "inFlight": .array(inFlight),
            "history": .array(entries),
        ])
    }

    /// The next `count` fire times of a scheduled job after `afterMs` (`strata cron next NAME
    /// --count N`), fewer if its schedule ends; a dependent job has none (refused).
    public func nextFireTimes(_ name: String, after afterMs: Int64, count: Int) throws(CronError) -> [Int64] {
        guard let job = jobs[name] else { throw Self.notFound(name) }
        guard let schedule = schedules[name] else {
            throw CronError(.invalidValue, "job \"\(name)\" is a dependent job: it runs after \(job.parents.joined(separator: ", ")), not at set times")
        }
        guard (1...CronLimits.maximumListedFireTimes).contains(count) else {
            throw CronError(.invalidValue, "count must be between 1 and \(CronLimits.maximumListedFireTimes)")
        }
        return schedule.next(after: afterMs, count: count)
    }

    /// Dropwizard metrics' `UniformSnapshot.getValue`: the quantile of sorted values,
    /// interpolated between neighbours.
    static func quantile(_ quantile: Double, of sorted: [Double]) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let position = quantile * Double(sorted.count + 1)
        let index = Int(position)
        if index < 1 { return sorted[0] }
        if index >= sorted.count { return sorted[sorted.count - 1] }
        let lower = sorted[index - 1]
        let upper = sorted[index]
        return lower + (position - position.rounded(.down)) * (upper - lower)
    }

    /// Chronos' `MM/dd/yy HH:mm:ss` (UTC).
    static func statTime(_ wallTimeMs: Int64) -> String {
        let text = formatWallTime(wallTimeMs - wallTimeMs % 1000, dateSeparator: "-", timeSeparator: ":")
        // YYYY-MM-DDThh:mm:ss
        let characters = Array(text)
        let year = String(characters[2..<4])
        let month = String(characters[5..<7])
        let day = String(characters[8..<10])
        return "\(month)/\(day)/\(year) \(String(characters[11..<19]))"
    }

    /// A run time as Joda's period formatter in Chronos' stat serializer writes it: hours and
    /// minutes when not zero, then seconds always (`1h2m3s`, `2h0s`, `45s`).
    static func statDuration(_ milliseconds: Int64) -> String {
        let seconds = max(milliseconds, 0) / 1000
        var text = ""
        if seconds >= 3600 { text += "\(seconds / 3600)h" }
        if seconds / 60 % 60 > 0 { text += "\(seconds / 60 % 60)m" }
        return text + "\(seconds % 60)s"
    }
}
