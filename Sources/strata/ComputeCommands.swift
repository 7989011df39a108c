import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import StrataAgent
import StrataClient
import StrataCluster
import StrataCompute
import StrataCore
import StrataMaster

struct MasterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "master", abstract: "Run the resource master (agents, jobs, tasks; HTTP API) until SIGTERM or Ctrl-C.",
        discussion: "Its state lives in the DFS under /system/master: a master restarted anywhere continues its jobs.")

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "HTTP port.")
    var port = 5050

    @Option(name: .customLong("namenode"), help: "Name node address host:port.")
    var nameNode = "127.0.0.1:8020"

    @Option(help: "Seconds without a heartbeat before an agent is lost.")
    var agentTimeout: Double = 15

    @Option(help: "The superuser, who may kill anyone's jobs (default: the user running the master).")
    var superuser: String?

    /// Only the cluster secret is kept there: the master's state is on the DFS.
    @OptionGroup var secret: DaemonSecretOptions

    @Flag(help: "Log debug messages.")
    var verbose = false

    func validate() throws {
        guard agentTimeout >= 1 && agentTimeout <= 3600 else { throw ValidationError("--agent-timeout must be between 1 and 3600 seconds") }
    }

    func run() async throws {
        let logger = makeLogger(verbose: verbose)
        let (nameNodeHost, nameNodePort) = try parseAddress(nameNode, defaultPort: 8020)
        var configuration = MasterConfiguration()
        configuration.host = host
        configuration.port = port
        configuration.agentTimeoutMs = Int64(agentTimeout * 1000)
        configuration.superuser = superuser ?? operatingSystemUser()
        configuration.token = try secret.secretIfExposed(host: host, daemon: "master")
        var dfs = DFSClientConfiguration(user: configuration.superuser)
        dfs.nameNodeHost = nameNodeHost
        dfs.nameNodePort = nameNodePort
        try await runDaemon("master", logger: logger) { group in
            MasterService(master: Master(configuration: configuration, dfs: dfs, group: group, logger: logger), group: group, logger: logger)
        }
    }
}

/// The cluster secret a daemon listening beyond loopback requires (nil on loopback):
/// `STRATA_TOKEN`; else the file `--secret-file` names (an agent given its master's secret);
/// else `cluster-secret` in the daemon's own directory, made (random, mode 0600) at its first
/// start. A secret made here is also written to `~/.strata/token` when that file does not exist,
/// so the CLI of the user who started the daemon finds it.
func clusterSecretIfExposed(host: String, directory: String, secretFile: String?) throws -> String? {
    let loopback = host == "localhost" || host == "::1" || host.hasPrefix("127.")
    if loopback { return nil }
    if let token = ProcessInfo.processInfo.environment["STRATA_TOKEN"], !token.isEmpty { return token }
    func read(_ path: String) throws -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read the cluster secret \(path)") }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw ValidationError("the cluster secret \(path) is empty") }
        return token
    }
    if let secretFile {
        guard let token = try read(secretFile) else { throw ValidationError("no cluster secret at \(secretFile)") }
        return token
    }
    let path = directory + "/cluster-secret"
    if let token = try read(path) { return token }
    var generator = SystemRandomNumberGenerator()
    let token = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    try writeSecret(token, to: path)
    printError("strata: listening on \(host): every request needs the cluster secret, made in \(path)")
    let userCopy = userStrataDirectory() + "/token"
    if !FileManager.default.fileExists(atPath: userCopy) {
        try writeSecret(token, to: userCopy)
        printError("strata: and copied to \(userCopy) for the CLI (others use STRATA_TOKEN or that file)")
    }
    return token
}

/// Writes a secret readable by its owner only (its directory made 0700 if missing).
private func writeSecret(_ token: String, to path: String) throws {
    let directory = (path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    guard FileManager.default.createFile(atPath: path, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600]) else {
        throw ValidationError("cannot write the cluster secret to \(path)")
    }
}

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Run an agent (runs tasks as processes in cgroups or runc containers) until SIGTERM or Ctrl-C.")

    @Option(name: .customLong("work-dir"), help: "Sandboxes and the agent's id.")
    var workDirectory: String

    @Option(help: "The master's address host:port.")
    var master = "127.0.0.1:5050"

    @Option(name: .customLong("namenode"), help: "Name node address host:port (tasks read their input and write their output there).")
    var nameNode = "127.0.0.1:8020"

    @Option(help: "Address to listen on (and to advertise).")
    var host = "127.0.0.1"

    @Option(help: "HTTP port.")
    var port = 5051

    @Option(help: "The hostname constraints match on.")
    var hostname = ProcessInfo.processInfo.hostName

    @Option(name: .customLong("datanode-id"), help: "The id of the data node on this machine (what makes tasks node-local).")
    var dataNodeId: String?

    @Option(help: "Resources to offer, Mesos style: cpus:4;mem:8192;disk:20000 (those not given: measured).")
    var resources: String?

    @Option(name: .customLong("attributes"), help: "Attributes, Mesos style: rack:r1;zone:a (or key=value pairs).")
    var attributes: String?

    @Flag(help: "Let tasks run as root (uid 0).")
    var allowRootTasks = false

    @Option(name: .customLong("secret-file"), help: "A file holding the cluster secret (the master's) when listening beyond loopback; default: WORK_DIR/cluster-secret, made at first start.")
    var secretFile: String?

    @Flag(help: "Log debug messages.")
    var verbose = false

    func run() async throws {
        let logger = makeLogger(verbose: verbose)
        let (nameNodeHost, nameNodePort) = try parseAddress(nameNode, defaultPort: 8020)
        var configuration = AgentConfiguration(workDirectory: workDirectory, masterAddress: master)
        configuration.host = host
        configuration.port = port
        configuration.hostname = hostname
        configuration.dataNodeId = dataNodeId
        configuration.allowRootTasks = allowRootTasks
        configuration.token = try clusterSecretIfExposed(host: host, directory: workDirectory, secretFile: secretFile)
        if let resources { configuration.resourceOverrides = try parseResourceOverrides(resources, option: "--resources") }
        if let attributes { configuration.attributes = try parseAttributes(attributes) }
        var dfs = DFSClientConfiguration(user: operatingSystemUser())
        dfs.nameNodeHost = nameNodeHost
        dfs.nameNodePort = nameNodePort
        try await runDaemon("agent", logger: logger) { group in
            AgentService(agent: try Agent(configuration: configuration, dfs: dfs, group: group, logger: logger), group: group, logger: logger)
        }
    }

    func parseAttributes(_ text: String) throws -> [String: String] {
        var attributes: [String: String] = [:]
        for part in text.split(whereSeparator: { $0 == ";" || $0 == "," }) {
            let pair = part.split(maxSplits: 1, whereSeparator: { $0 == ":" || $0 == "=" }).map(String.init)
            guard pair.count == 2, !pair[0].isEmpty else { throw ValidationError("--attributes: '\(part)' is not key:value") }
            attributes[pair[0]] = pair[1]
        }
        return attributes
    }
}

/// `--resources` (an agent) or `--agent-resources` (`cluster up`), Mesos style.
func parseResourceOverrides(_ text: String, option: String) throws -> ResourceOverrides {
    do {
        return try ResourceOverrides.parse(text)
    } catch {
        throw ValidationError("\(option): \(error)")
    }
}

struct MasterOption: ParsableArguments {
    @Option(help: "The master's address host:port (default: STRATA_MASTER, else 127.0.0.1:5050).")
    var master: String?
}

struct JobCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job", abstract: "Data-local batch jobs: one task per input block, run beside the block.",
        subcommands: [JobSubmitCommand.self, JobStatusCommand.self, JobListCommand.self, JobKillCommand.self])
}

struct JobSubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit", abstract: "Submit a job: strata job submit --input /logs --output /out -- grep -c ERROR",
        discussion: """
            Each task gets its block's lines on stdin (a line crossing a block boundary goes to the task of the block \
            it starts in) and its stdout becomes OUTPUT/part-NNNNN; OUTPUT/_SUCCESS marks a finished job.
            """)

    @OptionGroup var target: MasterOption

    @Option(name: .customLong("input"), parsing: .upToNextOption, help: "Input files, directories (their files) or globs in the DFS.")
    var inputs: [String] = []

    @Option(help: "Output directory in the DFS (must not exist).")
    var output: String

    @Option(help: "CPUs per task.")
    var cpus: Double = JobSpec.defaultResources.cpus

    @Option(help: "Memory per task, in MB (a task over it is killed).")
    var mem: Double = JobSpec.defaultResources.memMB

    @Option(help: "Failed attempts a task may make before the job fails.")
    var maxAttempts = JobSpec.defaultMaxAttempts

    @Option(help: "Seconds a task waits for a slot beside its block before running elsewhere.")
    var localityWait: Double = Double(JobSpec.defaultLocalityWaitMs) / 1000

    @Option(name: .customLong("constraint"), help: "A placement constraint, Marathon style: hostname:UNIQUE, rack:LIKE:r1 (repeatable).")
    var constraints: [String] = []

    @Option(help: "Run tasks in a runc container from this root filesystem directory (on every agent).")
    var rootfs: String?

    @Option(help: "Run tasks in a runc container from this image in the cluster (REPO:TAG or REPO@sha256:...; strata image ls). The command after -- replaces the image's Cmd; without one the image's Entrypoint and Cmd run.")
    var image: String?

    @Option(name: .customLong("env"), help: "KEY=VALUE for the task's environment (repeatable).")
    var environment: [String] = []

    @Flag(help: "Wait for the job to end, showing progress, and print its summary.")
    var wait = false

    @Flag(help: "Print machine-readable JSON.")
    var json = false

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments, after --.")
    var command: [String] = []

    var arguments: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one --input PATH") }
        guard !arguments.isEmpty || image != nil else { throw ValidationError("give the command to run after --, e.g. -- grep -c ERROR") }
        guard image == nil || rootfs == nil else { throw ValidationError("--image and --rootfs do not go together") }
        guard cpus > 0 else { throw ValidationError("--cpus must be more than 0") }
        guard mem >= 4 else { throw ValidationError("--mem must be at least 4 (MB)") }
        guard (1...100).contains(maxAttempts) else { throw ValidationError("--max-attempts must be between 1 and 100") }
        guard localityWait >= 0 && localityWait <= 3600 else { throw ValidationError("--locality-wait must be between 0 and 3600 seconds") }
        for constraint in constraints {
            do { _ = try Constraint(parsing: constraint) } catch { throw ValidationError("--constraint: \(error)") }
        }
        for pair in environment where !pair.contains("=") { throw ValidationError("--env: '\(pair)' is not KEY=VALUE") }
        // A process task's command must exist; a container's is looked up in its root filesystem.
        if rootfs == nil, image == nil, !commandExists(arguments[0]) {
            throw ValidationError("command '\(arguments[0])' not found")
        }
    }

    func commandExists(_ command: String) -> Bool {
        if command.contains("/") { return FileManager.default.isExecutableFile(atPath: command) }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        let directories = path.split(separator: ":").map(String.init) + ["/usr/local/sbin", "/usr/sbin", "/sbin"]
        return directories.contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(command)") }
    }

    func run() async throws {
        var submission = ComputeAPI.JobSubmission(arguments: arguments, inputs: inputs, output: output)
        submission.cpus = cpus
        submission.memMB = mem
        submission.maxAttempts = maxAttempts
        submission.localityWaitMs = Int64(localityWait * 1000)
        submission.constraints = try constraints.map { try Constraint(parsing: $0) }
        submission.rootFilesystem = rootfs
        submission.image = image
        submission.environment = Dictionary(environment.map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            return (parts[0], parts.count > 1 ? parts[1] : "")
        }, uniquingKeysWith: { $1 })
        try await ComputeClient.run("job submit", master: target.master) { client in
            let job: ComputeAPI.JobView = try await client.post("/api/v1/jobs", submission)
            guard wait else {
                print(json ? try JSONOutput.encode(job) : "\(job.id) submitted: \(job.tasks) tasks")
                return
            }
            if !json { print("\(job.id) submitted: \(job.tasks) tasks") }
            let final = try await waitForJob(job.id, client: client, showProgress: !json && isatty(1) == 1)
            if json { print(try JSONOutput.encode(final)) } else { printSummary(final) }
            if final.state != .finished { throw ExitCode(1) }
        }
    }
}

/// Watches a job until it ends, drawing a progress line on a terminal: each request is answered
/// by the master at its next change of state (or after 10 s), so the CLI returns as soon as the
/// job has ended rather than at its next poll.
func waitForJob(_ jobId: String, client: ComputeClient, showProgress: Bool) async throws -> ComputeAPI.JobView {
    var version: UInt64?
    while true {
        let watch = version.map { "?changedAfter=\($0)&waitMs=10000" } ?? ""
        let detail: ComputeAPI.JobDetail = try await client.get("/api/v1/jobs/\(jobId)\(watch)")
        let job = detail.job
        if showProgress {
            let line = "\r\(job.id): \(job.finishedTasks)/\(job.tasks) tasks finished, \(job.runningTasks) running, \(job.pendingTasks) waiting"
            FileHandle.standardOutput.write(Data(line.utf8))
        }
        if job.state.isTerminal {
            if showProgress { print("") }
            return job
        }
        if let current = detail.stateVersion {
            version = current
        } else {
            // A master without watches: poll.
            try await Task.sleep(for: .milliseconds(250))
        }
    }
}

func printSummary(_ job: ComputeAPI.JobView) {
    print("\(job.id) \(job.state.rawValue)")
    print("  tasks           \(job.finishedTasks)/\(job.tasks) finished, \(job.attempts) attempts (\(job.failedAttempts) failed)")
    print("  locality        \(job.nodeLocalTasks) node-local, \(job.remoteTasks) remote")
    print("  input read      \(job.bytesReadLocal) bytes from local disk, \(job.bytesReadRemote) over the network")
    if let ended = job.endedAtMs {
        print(String(format: "  took            %.1f s", Double(ended - job.submittedAtMs) / 1000))
    }
    print("  output          \(job.output)")
    if let image = job.image { print("  image           \(image.reference) (\(image.manifestDigest))") }
    if let message = job.message, job.state != .finished { print("  \(message.replacingOccurrences(of: "\n", with: "\n  "))") }
}

struct JobStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show a job: its tasks, attempts, where each ran.")

    @OptionGroup var target: MasterOption

    @Argument(help: "The job's id.")
    var jobId: String

    @Flag(help: "Print machine-readable JSON.")
    var json = false

    func run() async throws {
        try await ComputeClient.run("job status", master: target.master) { client in
            let detail: ComputeAPI.JobDetail = try await client.get("/api/v1/jobs/\(jobId)")
            if json {
                print(try JSONOutput.encode(detail))
                return
            }
            printSummary(detail.job)
            print("")
            print(pad("TASK", 22) + pad("STATE", 10) + pad("AGENT", 12) + pad("LOCALITY", 11) + "INPUT")
            for task in detail.tasks {
                let attempt = task.attempt
                let input = task.split.map { "\($0.path)@\($0.offset)+\($0.length)" } ?? ""
                print(pad(attempt.taskId, 22) + pad(attempt.state.shortName, 10) + pad(task.agentHostname ?? attempt.agentId, 12)
                    + pad(attempt.isNodeLocal ? "node-local" : "remote", 11) + input)
                if attempt.state == .failed, let message = attempt.message { print("    \(message)") }
            }
        }
    }
}

func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}

struct JobListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List jobs.")

    @OptionGroup var target: MasterOption

    @Flag(help: "Print machine-readable JSON.")
    var json = false

    func run() async throws {
        try await ComputeClient.run("job ls", master: target.master) { client in
            let jobs: [ComputeAPI.JobView] = try await client.get("/api/v1/jobs")
            if json {
                print(try JSONOutput.encode(jobs))
                return
            }
            print(pad("JOB", 10) + pad("USER", 10) + pad("STATE", 11) + pad("TASKS", 12) + pad("LOCAL", 7) + "COMMAND")
            for job in jobs {
                print(pad(job.id, 10) + pad(job.user, 10) + pad(job.state.rawValue, 11) + pad("\(job.finishedTasks)/\(job.tasks)", 12)
                    + pad("\(job.nodeLocalTasks)", 7) + job.arguments.joined(separator: " "))
            }
        }
    }
}

struct JobKillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Kill a job: its running tasks are killed, no more start.")

    @OptionGroup var target: MasterOption

    @Argument(help: "The job's id.")
    var jobId: String

    func run() async throws {
        try await ComputeClient.run("job kill", master: target.master) { client in
            let job: ComputeAPI.JobView = try await client.post("/api/v1/jobs/\(jobId)/kill", [String: String]())
            print("\(job.id) \(job.state.rawValue)")
        }
    }
}

struct TaskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task", abstract: "Tasks: list them, read their logs, kill them.",
        subcommands: [TaskListCommand.self, TaskLogsCommand.self, TaskKillCommand.self])
}

struct TaskListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List task attempts.")

    @OptionGroup var target: MasterOption

    @Option(help: "Only this job's tasks.")
    var job: String?

    @Flag(help: "Print machine-readable JSON.")
    var json = false

    func run() async throws {
        try await ComputeClient.run("task ls", master: target.master) { client in
            let query = job.map { "?job=\($0.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? $0)" } ?? ""
            let tasks: [ComputeAPI.TaskView] = try await client.get("/api/v1/tasks\(query)")
            if json {
                print(try JSONOutput.encode(tasks))
                return
            }
            print(pad("TASK", 22) + pad("USER", 10) + pad("STATE", 10) + pad("AGENT", 12) + "LOCALITY")
            for task in tasks {
                let attempt = task.attempt
                print(pad(attempt.taskId, 22) + pad(attempt.user, 10) + pad(attempt.state.shortName, 10)
                    + pad(task.agentHostname ?? attempt.agentId, 12) + (attempt.isNodeLocal ? "node-local" : "remote"))
            }
        }
    }
}

struct TaskLogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Print a task's stdout (or stderr) from its sandbox.")

    @OptionGroup var target: MasterOption

    @Argument(help: "The task's id.")
    var taskId: String

    @Flag(help: "Print stderr instead of stdout.")
    var stderr = false

    @Flag(help: "Keep printing what the task writes until it ends.")
    var follow = false

    func run() async throws {
        try await ComputeClient.run("task logs", master: target.master) { client in
            var task: ComputeAPI.TaskView = try await client.get("/api/v1/tasks/\(taskId)")
            guard let agent = task.agentAddress else { throw CLIError("the agent of task \(taskId) is not known to the master") }
            let file = "\(taskId)/\(stderr ? "stderr" : "stdout")"
            var offset: UInt64 = 0
            while true {
                let chunk: ComputeAPI.FileChunk = try await client.get(
                    "/files/read?path=\(file)&offset=\(offset)&length=1048576", at: agent)
                if !chunk.data.isEmpty {
                    FileHandle.standardOutput.write(Data(chunk.data.utf8))
                    offset += UInt64(chunk.data.utf8.count)
                    continue
                }
                guard follow, !task.attempt.state.isTerminal else { return }
                try await Task.sleep(for: .milliseconds(500))
                task = try await client.get("/api/v1/tasks/\(taskId)")
            }
        }
    }
}

struct TaskKillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill", abstract: "Kill a task attempt (a job's task then runs again, as Hadoop's -kill-task).")

    @OptionGroup var target: MasterOption

    @Argument(help: "The task's id.")
    var taskId: String

    func run() async throws {
        try await ComputeClient.run("task kill", master: target.master) { client in
            let _: [String: String] = try await client.post("/api/v1/tasks/\(taskId)/kill", [String: String]())
            print("killing \(taskId)")
        }
    }
}
