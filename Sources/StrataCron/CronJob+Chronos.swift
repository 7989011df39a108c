/// Reading and writing Chronos' job JSON.
extension CronJob {
    /// Reads a job from a request body (`POST /v1/scheduler/iso8601` or `/dependency`).
    /// `nowMs` is the wall time a repeating interval with an empty start starts at.
    public static func parse(_ bytes: some Collection<UInt8>, nowMs: Int64) throws(CronError) -> CronJob {
        try parse(json: try CronJSON.parse(bytes), nowMs: nowMs)
    }

    /// Reads a job from parsed JSON, with Chronos' defaults for every field left out (or
    /// `null`). Unknown fields, and Chronos fields Strata does not use (`uris`, `fetch`,
    /// `executor`, `constraints`, ...), are ignored; so are the statistics (`successCount`,
    /// `errorCount`, `lastSuccess`, `lastError`, `errorsSinceLastSuccess`), which the service
    /// keeps itself. Numbers may be given as strings (`"cpus": "0.5"`), as Chronos' reader
    /// takes them.
    public static func parse(json: CronJSON, nowMs: Int64) throws(CronError) -> CronJob {
        guard case .object = json else {
            throw CronError(.wrongType, "a job is a JSON object")
        }
        let reader = Reader(json: json)
        guard let name = try reader.string("name") else { throw CronError(.missingField, "a job needs a \"name\"") }
        try checkName(name)
        let container = try reader.container()
        let command = try reader.string("command") ?? ""
        guard !command.isEmpty || container != nil else {
            throw CronError(.missingField, "job \"\(name)\" needs a \"command\" (or a \"container\" whose image runs on its own)")
        }
        guard command.utf8.count <= CronJobLimits.maximumCommandBytes else {
            throw CronError(.invalidValue, "the command of job \"\(name)\" is longer than \(CronJobLimits.maximumCommandBytes) bytes")
        }
        var job = CronJob(name: name, command: command)
        job.container = container
        job.shell = try reader.bool("shell") ?? true
        job.arguments = try reader.strings("arguments") ?? []
        job.scheduleTimeZone = try reader.string("scheduleTimeZone") ?? ""
        let scheduleText = try reader.string("schedule")
        let parents = try reader.strings("parents")
        switch (scheduleText, parents) {
        case (.some, .some):
            throw CronError(.scheduleAndParents, "job \"\(name)\" has both a \"schedule\" and \"parents\": a job runs on a schedule or after its parents, not both")
        case (nil, nil):
            throw CronError(.neitherScheduleNorParents, "job \"\(name)\" needs a \"schedule\" or \"parents\"")
        case (.some(let text), nil):
            job.schedule = try normalizedSchedule(text, timeZone: job.scheduleTimeZone, nowMs: nowMs)
        case (nil, .some(let names)):
            guard !names.isEmpty else {
                throw CronError(.neitherScheduleNorParents, "dependent job \"\(name)\" has no parents")
            }
            for parent in names { try checkName(parent, what: "parent") }
            var unique: [String] = []
            for parent in names where !unique.contains(parent) { unique.append(parent) }
            job.parents = unique
            if !job.scheduleTimeZone.isEmpty {
                do {
                    _ = try ScheduleTimeZone(identifier: job.scheduleTimeZone)
                } catch {
                    throw CronError(.unknownTimeZone, error.message)
                }
            }
        }
        if let epsilon = try reader.string("epsilon") {
            do {
                _ = try CatchUpPolicy(epsilon: epsilon)
            } catch {
                throw CronError(.invalidValue, "invalid epsilon of job \"\(name)\": \(error.message)")
            }
            job.epsilon = epsilon
        }
        job.retries = try reader.integer("retries", in: 0...CronJobLimits.maximumRetries) ?? CronJobLimits.defaultRetries
        // Chronos takes a missing or zero amount as its configured default.
        job.cpus = try reader.resource("cpus") ?? CronJobLimits.defaultCpus
        job.mem = try reader.resource("mem") ?? CronJobLimits.defaultMemMB
        job.disk = try reader.resource("disk") ?? CronJobLimits.defaultDiskMB
        job.owner = try reader.string("owner") ?? ""
        job.ownerName = try reader.string("ownerName") ?? ""
        job.description = try reader.string("description") ?? ""
        job.disabled = try reader.bool("disabled") ?? false
        job.softError = try reader.bool("softError") ?? false
        job.runAsUser = try reader.string("runAsUser") ?? ""
        job.environmentVariables = try reader.environmentVariables()
        if let policy = try reader.string("concurrencyPolicy") {
            guard let parsed = ConcurrencyPolicy.allCases.first(where: { $0.rawValue.lowercased() == policy.lowercased() }) else {
                throw CronError(.invalidValue, "unknown concurrencyPolicy \"\(policy)\" of job \"\(name)\": expected Allow, Forbid or Replace")
            }
            job.concurrencyPolicy = parsed
        }
        let historyLimits = 0...CronJobLimits.maximumHistoryLimit
        job.successfulHistoryLimit = try reader.integer("successfulHistoryLimit", in: historyLimits) ?? CronJobLimits.defaultSuccessfulHistoryLimit
        job.failedHistoryLimit = try reader.integer("failedHistoryLimit", in: historyLimits) ?? CronJobLimits.defaultFailedHistoryLimit
        job.startingDeadlineSeconds = try reader.integer(
            "startingDeadlineSeconds", in: 0...Int(CronJobLimits.maximumStartingDeadlineSeconds))
        if let path = try reader.string("inputPath") {
            guard path.hasPrefix("/"), !path.contains("\0"), !path.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) else {
                throw CronError(.invalidValue, "the inputPath of job \"\(name)\" must be an absolute DFS path without . or .. components, not \"\(path)\"")
            }
            job.inputPath = path
        }
        return job
    }

    /// Chronos' job name rule (`JobUtils.jobNamePattern`, `[\w\s.#_-]+` in Chronos 2): ASCII
    /// letters, digits, `_`, space, `.`, `#` and `-`. Other white space (tabs, line breaks) is
    /// refused, as it would break the graph/csv and graph/dot renderings.
    public static func isValidName(_ name: String) -> Bool {
        guard !name.isEmpty, name.count <= CronJobLimits.maximumNameLength else { return false }
        return name.unicodeScalars.allSatisfy { scalar in
            switch scalar {
            case "a"..."z", "A"..."Z", "0"..."9", "_", " ", ".", "#", "-": true
            default: false
            }
        }
    }

    static func checkName(_ name: String, what: String = "job") throws(CronError) {
        guard isValidName(name) else {
            throw CronError(
                .invalidName,
                "the \(what) name \"\(name)\" is invalid: allowed are 1 to \(CronJobLimits.maximumNameLength) ASCII letters, digits, spaces and . # _ - (Chronos' [\\w\\s.#_-]+)")
        }
    }

    /// The schedule as stored: parsed (so an invalid one is refused with the parser's message)
    /// and, for a repeating interval, with its start written out.
    static func normalizedSchedule(_ text: String, timeZone: String, nowMs: Int64) throws(CronError) -> String {
        let schedule: Schedule
        do {
            schedule = try Schedule.parse(text, timeZone: timeZone, nowMs: nowMs)
        } catch {
            throw CronError(error.kind == .unknownTimeZone ? .unknownTimeZone : .invalidSchedule, error.message)
        }
        switch schedule {
        case .repeatingInterval(let interval): return interval.description
        case .cron: return text.trimmingWhitespace()
        }
    }

    // MARK: - Writing

    /// The job as Chronos' API returns it (`GET /v1/scheduler/jobs`), fields in the order
    /// Chronos' serializer writes them, with the statistics the service keeps (zeros and empty
    /// dates without). Dependent jobs have `parents`, scheduled jobs `schedule` and
    /// `scheduleTimeZone`.
    public func chronosJSON(stats: CronJobStats? = nil) -> CronJSON {
        let stats = stats ?? CronJobStats()
        var members: [CronJSON.Member] = [
            .init("name", .string(name)),
            .init("command", .string(command)),
            .init("shell", .boolean(shell)),
            .init("epsilon", .string(epsilon)),
            .init("executor", .string("")),
            .init("executorFlags", .string("")),
            .init("retries", .integer(Int64(retries))),
            .init("owner", .string(owner)),
            .init("ownerName", .string(ownerName)),
            .init("description", .string(description)),
            .init("successCount", .integer(stats.successCount)),
            .init("errorCount", .integer(stats.errorCount)),
            .init("lastSuccess", .string(stats.lastSuccessMs.map(chronosTimestamp) ?? "")),
            .init("lastError", .string(stats.lastErrorMs.map(chronosTimestamp) ?? "")),
            .init("cpus", .number(cpus)),
            .init("disk", .number(disk)),
            .init("mem", .number(mem)),
            .init("disabled", .boolean(disabled)),
            .init("softError", .boolean(softError)),
            .init("errorsSinceLastSuccess", .integer(stats.errorsSinceLastSuccess)),
            .init("uris", .array([])),
            .init("fetch", .array([])),
            .init("environmentVariables", .array(environmentVariables.map { .object(["name": .string($0.name), "value": .string($0.value)]) })),
            .init("arguments", .array(arguments.map { .string($0) })),
            .init("highPriority", .boolean(false)),
            .init("runAsUser", .string(runAsUser)),
        ]
        if let container {
            members.append(.init("container", .object([
                "type": .string(container.type), "image": .string(container.image), "forcePullImage": .boolean(container.forcePullImage),
            ])))
        }
        members.append(.init("constraints", .array([])))
        members.append(.init("concurrencyPolicy", .string(concurrencyPolicy.rawValue)))
        members.append(.init("successfulHistoryLimit", .integer(Int64(successfulHistoryLimit))))
        members.append(.init("failedHistoryLimit", .integer(Int64(failedHistoryLimit))))
        if let startingDeadlineSeconds { members.append(.init("startingDeadlineSeconds", .integer(Int64(startingDeadlineSeconds)))) }
        if let inputPath { members.append(.init("inputPath", .string(inputPath))) }
        if let schedule {
            members.append(.init("schedule", .string(schedule)))
            members.append(.init("scheduleTimeZone", .string(scheduleTimeZone)))
        } else {
            members.append(.init("parents", .array(parents.map { .string($0) })))
        }
        return .object(members)
    }
}

/// A wall time as Joda-Time's `DateTime.toString` writes it in UTC, the form of Chronos'
/// `lastSuccess` and `lastError`: `2013-03-15T13:02:14.243Z`, always with milliseconds.
public func chronosTimestamp(_ wallTimeMs: Int64) -> String {
    var text = formatWallTime(wallTimeMs, dateSeparator: "-", timeSeparator: ":")
    if wallTimeMs % 1000 == 0 { text += ".000" }
    return text + "Z"
}

/// Reads fields of a job object, refusing wrong types with the field's name.
private struct Reader {
    let json: CronJSON

    func value(_ key: String) -> CronJSON? {
        guard let value = json[key], value != .null else { return nil }
        return value
    }

    func kindName(_ value: CronJSON) -> String {
        switch value {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .integer, .number: "a number"
        case .boolean: "a boolean"
        case .null: "null"
        }
    }

    func wrongType(_ key: String, _ expected: String, _ value: CronJSON) -> CronError {
        CronError(.wrongType, "field \"\(key)\" must be \(expected), not \(kindName(value))")
    }

    func string(_ key: String) throws(CronError) -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let text) = value else { throw wrongType(key, "a string", value) }
        return text
    }

    func bool(_ key: String) throws(CronError) -> Bool? {
        guard let value = value(key) else { return nil }
        switch value {
        case .boolean(let flag): return flag
        case .string("true"): return true
        case .string("false"): return false
        default: throw wrongType(key, "true or false", value)
        }
    }

    func number(_ key: String) throws(CronError) -> Double? {
        guard let value = value(key) else { return nil }
        switch value {
        case .integer(let whole): return Double(whole)
        case .number(let number): return number
        case .string(let text):
            guard let number = Double(text.trimmingWhitespace()), number.isFinite else { throw wrongType(key, "a number", value) }
            return number
        default: throw wrongType(key, "a number", value)
        }
    }

    func integer(_ key: String, in range: ClosedRange<Int>) throws(CronError) -> Int? {
        guard let number = try number(key) else { return nil }
        guard number == number.rounded(), abs(number) < 1e15 else {
            throw CronError(.wrongType, "field \"\(key)\" must be a whole number, not \(number)")
        }
        let whole = Int(number)
        guard range.contains(whole) else {
            throw CronError(.invalidValue, "field \"\(key)\" must be between \(range.lowerBound) and \(range.upperBound), not \(whole)")
        }
        return whole
    }

    /// A resource amount: negative is refused; zero or missing is the default.
    func resource(_ key: String) throws(CronError) -> Double? {
        guard let amount = try number(key) else { return nil }
        guard amount >= 0 else { throw CronError(.invalidValue, "field \"\(key)\" must not be negative, not \(amount)") }
        return amount == 0 ? nil : amount
    }

    func array(_ key: String) throws(CronError) -> [CronJSON]? {
        guard let value = value(key) else { return nil }
        guard case .array(let elements) = value else { throw wrongType(key, "an array", value) }
        guard elements.count <= CronJobLimits.maximumListCount else {
            throw CronError(.invalidValue, "field \"\(key)\" has more than \(CronJobLimits.maximumListCount) elements")
        }
        return elements
    }

    func strings(_ key: String) throws(CronError) -> [String]? {
        guard let elements = try array(key) else { return nil }
        var result: [String] = []
        for (index, element) in elements.enumerated() {
            guard case .string(let text) = element else { throw wrongType("\(key)[\(index)]", "a string", element) }
            result.append(text)
        }
        return result
    }

    func environmentVariables() throws(CronError) -> [CronJob.EnvironmentVariable] {
        guard let elements = try array("environmentVariables") else { return [] }
        var result: [CronJob.EnvironmentVariable] = []
        for (index, element) in elements.enumerated() {
            let path = "environmentVariables[\(index)]"
            guard case .object = element else { throw wrongType(path, "an object with a name and a value", element) }
            let entry = Reader(json: element)
            guard let name = try entry.string("name"), !name.isEmpty, !name.contains("=") else {
                throw CronError(.invalidValue, "\(path) needs a \"name\" that is not empty and has no =")
            }
            result.append(.init(name: name, value: try entry.string("value") ?? ""))
        }
        return result
    }

    func container() throws(CronError) -> CronJob.Container? {
        guard let value = value("container") else { return nil }
        guard case .object = value else { throw wrongType("container", "an object", value) }
        let fields = Reader(json: value)
        let type = (try fields.string("type") ?? "DOCKER").uppercased()
        guard ["DOCKER", "MESOS"].contains(type) else {
            throw CronError(.invalidValue, "unknown container type \"\(type)\": expected DOCKER or MESOS")
        }
        guard let image = try fields.string("image"), !image.isEmpty else {
            throw CronError(.missingField, "a container needs an \"image\" (an image in Strata's image store, as name:tag or name@sha256:...)")
        }
        guard !image.contains(where: { $0.isWhitespace }), image.utf8.count <= 1024 else {
            throw CronError(.invalidValue, "invalid container image \"\(image)\"")
        }
        return .init(type: type, image: image, forcePullImage: try fields.bool("forcePullImage") ?? false)
    }
}
