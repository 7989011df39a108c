import AsyncHTTPClient
import Foundation
import NIOHTTP1
import StrataCompute
import StrataCore
import StrataCron
import StrataHTTP
import Synchronization

extension CronScheduler {
    var masterURL: String { "http://\(configuration.masterAddress)" }

    func callMaster<Reply: Decodable>(
        _ method: HTTPMethod, _ path: String, user: String? = nil, body: (some Encodable)? = nil as String?, timeoutSeconds: Int64 = 10
    ) async throws -> Reply {
        var url = masterURL + path
        if let user { url += (path.contains("?") ? "&" : "?") + "user.name=" + encode(user) }
        return try await JSONClient.call(http, method, url: url, body: body, token: configuration.token, timeoutSeconds: timeoutSeconds)
    }

    func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    /// The master job id of an attempt of a run: `cron.<job>.<scheduled time>.<attempt, from 1>`, the
    /// job's name reduced to the characters a job id may hold (with a hash of the name when
    /// that changed it, so that `a b` and `a_b` never share ids). The same attempt always gets
    /// the same id: submitting it again after a restart starts nothing new.
    func masterJobId(_ runId: RunId, attempt: Int) -> String {
        let name = runId.jobName
        var safe = String(name.unicodeScalars.map { scalar -> Character in
            let isSafe = scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || scalar == "-" || scalar == "_")
            return isSafe ? Character(scalar) : "_"
        }.prefix(80))
        if safe != name { safe += "-" + String(Self.fnv1a(name), radix: 16) }
        let stamp = formatWallTime(runId.scheduledMs, dateSeparator: "", timeSeparator: "") + "Z"
        // Attempts count from 1 here, as the master's do.
        return "\(configuration.name).\(safe).\(stamp).\(attempt + 1)"
    }

    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }

    /// What a run's task runs: Chronos' `command` through `/bin/sh -c` (a manual run's
    /// arguments appended), or with `shell: false` the command and its `arguments` as an
    /// argument vector.
    func submission(_ runId: RunId, attempt: Int, job: CronJob, arguments: String?) -> ComputeAPI.JobSubmission {
        var argv: [String]
        if job.command.isEmpty, job.container != nil {
            // An image job with no command runs what its image names (entrypoint and cmd).
            argv = job.arguments + (arguments.map { $0.split(separator: " ").map(String.init) } ?? [])
        } else if job.shell {
            argv = ["/bin/sh", "-c", arguments.map { job.command + " " + $0 } ?? job.command]
        } else {
            argv = (job.command.isEmpty ? [] : [job.command]) + job.arguments
            if let arguments { argv += arguments.split(separator: " ").map(String.init) }
        }
        var output = ""
        var inputs: [String] = []
        if let input = job.inputPath {
            inputs = [input]
            output = "/user/\(taskUser(of: job))/.cron/\(masterJobId(runId, attempt: attempt))"
        }
        var submission = ComputeAPI.JobSubmission(arguments: argv, inputs: inputs, output: output)
        var environment: [String: String] = [:]
        for variable in job.environmentVariables { environment[variable.name] = variable.value }
        environment["CHRONOS_JOB_NAME"] = job.name
        environment["CHRONOS_JOB_OWNER"] = job.owner
        environment["CHRONOS_RESOURCE_MEM"] = "\(job.mem)"
        environment["CHRONOS_RESOURCE_CPU"] = "\(job.cpus)"
        environment["CHRONOS_RESOURCE_DISK"] = "\(job.disk)"
        environment["STRATA_CRON_RUN"] = runId.description
        environment["STRATA_CRON_SCHEDULED_MS"] = "\(runId.scheduledMs)"
        submission.environment = environment
        submission.cpus = job.cpus
        submission.memMB = job.mem
        submission.diskMB = job.disk
        // The cron service retries a run itself (`retries`): the master runs each attempt once.
        submission.maxAttempts = 1
        submission.image = job.container?.image
        if job.inputPath == nil { submission.service = ServiceTask(portCount: 0) }
        submission.id = masterJobId(runId, attempt: attempt)
        submission.labels = [
            CronLabels.service: configuration.name, CronLabels.job: job.name, CronLabels.run: runId.description,
            CronLabels.attempt: "\(attempt + 1)",
        ]
        return submission
    }

    /// The user a job's runs run as: `runAsUser`, else the owner when it is a plain user name
    /// (Chronos' owner is often an e-mail address), else the service's task user.
    func taskUser(of job: CronJob) -> String {
        if !job.runAsUser.isEmpty { return job.runAsUser }
        return configuration.taskUser
    }

    // MARK: - Starting, killing, reconciling

    func start(_ runId: RunId, attempt: Int, job: CronJob, arguments: String?) async {
        let id = masterJobId(runId, attempt: attempt)
        tracked.withLock { $0[id] = (runId, attempt) }
        var body = submission(runId, attempt: attempt, job: job, arguments: arguments)
        // A scheduled run's first attempt never starts before its scheduled time: submitted
        // ahead, the master and its agent hold its task until then. (A retry, or a manual or
        // dependent run, starts when it is submitted.)
        if attempt == 0, state.withLock({ $0.runs[runId]?.kind }) == .scheduled { body.notBefore = runId.scheduledMs }
        do {
            let view: ComputeAPI.JobView = try await callMaster(.POST, "/api/v1/jobs", user: taskUser(of: job), body: body)
            let lateness = clock.wallTimeMs - runId.scheduledMs
            counters.withLock { counters in
                counters.submitted += 1
                counters.submitLatenessMs.append(lateness)
                if counters.submitLatenessMs.count > 1000 { counters.submitLatenessMs.removeFirst(counters.submitLatenessMs.count - 1000) }
            }
            logger.info("run submitted", metadata: ["run": "\(runId)", "attempt": "\(attempt)", "job": "\(view.id)"])
            if view.state.isTerminal { await ended(id, view: view, task: nil) }
        } catch {
            tracked.withLock { _ = $0.removeValue(forKey: id) }
            counters.withLock { $0.submitFailures += 1 }
            logger.warning("the master did not take a run", metadata: ["run": "\(runId)", "attempt": "\(attempt)", "error": "\(error)"])
            _ = try? await handle { state, now, wall in
                (state.runEnded(runId, attempt: attempt, outcome: .failed, message: "the master did not take it: \(error)", now: now, wallTimeMs: wall), ())
            }
        }
    }

    func kill(_ runId: RunId, attempt: Int) async {
        let id = masterJobId(runId, attempt: attempt)
        do {
            let _: ComputeAPI.JobView = try await callMaster(.POST, "/api/v1/jobs/\(id)/kill", user: configuration.superuser)
        } catch let error as APIError where error.status == .notFound {
            // Never submitted (or its start failed): it ends here.
            _ = try? await handle { state, now, wall in
                (state.runEnded(runId, attempt: attempt, outcome: .killed, message: "killed before it started", now: now, wallTimeMs: wall), ())
            }
        } catch {
            logger.warning("could not kill a run's task", metadata: ["run": "\(runId)", "job": "\(id)", "error": "\(error)"])
        }
    }

    /// After a restart: how the master has the attempt's job. Unknown: submitted now (the
    /// service stopped between logging the start and submitting it). Ended: reported. Else
    /// followed by the watch.
    func reconcile(_ runId: RunId, attempt: Int) async {
        let id = masterJobId(runId, attempt: attempt)
        while !Task.isCancelled {
            do {
                let detail: ComputeAPI.JobDetail = try await callMaster(.GET, "/api/v1/jobs/\(id)")
                if detail.job.state.isTerminal {
                    // Ended while the service was down: reported like any end it follows.
                    tracked.withLock { $0[id] = (runId, attempt) }
                    await ended(id, view: detail.job, task: detail.tasks.last)
                } else {
                    tracked.withLock { $0[id] = (runId, attempt) }
                }
                return
            } catch let error as APIError where error.status == .notFound {
                _ = try? await handle { state, now, wall in (state.runNotLaunched(runId, attempt: attempt, now: now, wallTimeMs: wall), ()) }
                return
            } catch {
                logger.warning("could not ask the master about a run; asking again", metadata: ["job": "\(id)", "error": "\(error)"])
                try? await clock.sleep(milliseconds: 500)
            }
        }
    }

    // MARK: - Following the master

    /// Watches the master's active jobs with the service's label; a tracked job that leaves
    /// the list is looked up for how it ended.
    func watchLoop() async {
        let label = "\(CronLabels.service)=\(configuration.name)"
        var version: UInt64?
        var lastWatch: MonotonicInstant?
        while !Task.isCancelled {
            if let lastWatch {
                try? await clock.sleep(until: lastWatch.advanced(byMilliseconds: configuration.watchMinimumIntervalMs))
            }
            lastWatch = clock.now
            do {
                var path = "/api/v1/jobs/watch?label=\(encode(label))&active=true"
                if let version { path += "&changedAfter=\(version)&waitMs=\(configuration.watchWaitMs)" }
                let list: ComputeAPI.JobList = try await callMaster(.GET, path, timeoutSeconds: configuration.watchWaitMs / 1000 + 10)
                version = list.stateVersion
                let active = Set(list.jobs.map(\.id))
                let gone = tracked.withLock { tracked in tracked.keys.filter { !active.contains($0) } }
                await ended(await endedJobs(gone))
                stateChanges.signal()
            } catch {
                if Task.isCancelled { return }
                logger.warning("watching the master's jobs failed; trying again", metadata: ["error": "\(error)"])
                try? await clock.sleep(milliseconds: 500)
            }
        }
    }

    /// How the master has the jobs that left the active list: the ended ones with their last
    /// task. Looked up a few at a time (as many as the HTTP client keeps connections to the
    /// master); a job the master does not know yet (submitted meanwhile) or could not be asked
    /// about stays tracked for the next answer.
    func endedJobs(_ ids: [String]) async -> [(id: String, view: ComputeAPI.JobView, task: ComputeAPI.TaskView?)] {
        await withTaskGroup(of: (String, ComputeAPI.JobDetail?).self) { group in
            var waiting = ids.makeIterator()
            func lookUp(_ id: String) {
                group.addTask {
                    do {
                        let detail: ComputeAPI.JobDetail = try await self.callMaster(.GET, "/api/v1/jobs/\(id)")
                        return (id, detail)
                    } catch let error as APIError where error.status == .notFound {
                        return (id, nil)
                    } catch {
                        self.logger.warning("could not ask the master how a run's job ended", metadata: ["job": "\(id)", "error": "\(error)"])
                        return (id, nil)
                    }
                }
            }
            for _ in 0..<Self.concurrentLookUps { if let id = waiting.next() { lookUp(id) } }
            var ended: [(id: String, view: ComputeAPI.JobView, task: ComputeAPI.TaskView?)] = []
            for await (id, detail) in group {
                if let detail, detail.job.state.isTerminal { ended.append((id, detail.job, detail.tasks.last)) }
                if let next = waiting.next() { lookUp(next) }
            }
            return ended
        }
    }

    /// Master jobs looked up at once when many end together (AsyncHTTPClient's connections to
    /// one host).
    static let concurrentLookUps = 8

    /// Reports how a tracked attempt's master job ended.
    func ended(_ id: String, view: ComputeAPI.JobView, task: ComputeAPI.TaskView?) async {
        await ended([(id, view, task)])
    }

    /// Reports how tracked attempts' master jobs ended, all in one change of the state (one
    /// append to the log when a minute's runs end together).
    func ended(_ jobs: [(id: String, view: ComputeAPI.JobView, task: ComputeAPI.TaskView?)]) async {
        var ends: [(runId: RunId, attempt: Int, outcome: CronRunOutcome, agentId: String?, message: String?)] = []
        for (id, view, task) in jobs {
            guard let (runId, attempt) = tracked.withLock({ $0.removeValue(forKey: id) }) else { continue }
            let outcome: CronRunOutcome
            switch view.state {
            case .finished: outcome = .succeeded
            case .killed: outcome = .killed
            default: outcome = task?.attempt.state == .lost ? .lost : .failed
            }
            counters.withLock { $0.ended[outcome.rawValue, default: 0] += 1 }
            logger.info("run ended", metadata: ["run": "\(runId)", "attempt": "\(attempt)", "outcome": "\(outcome.rawValue)"])
            ends.append((runId, attempt, outcome, task?.attempt.agentId, task?.attempt.message ?? view.message))
        }
        guard !ends.isEmpty else { return }
        _ = try? await handle { state, now, wall in
            var combined = CronState.Outcome()
            for end in ends {
                combined.append(
                    state.runEnded(
                        end.runId, attempt: end.attempt, outcome: end.outcome, agentId: end.agentId, message: end.message, now: now, wallTimeMs: wall))
            }
            return (combined, ())
        }
    }
}
