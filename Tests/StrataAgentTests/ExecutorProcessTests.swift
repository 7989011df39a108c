import Foundation
import Logging
import StrataCompute
import Testing

@testable import StrataAgent

/// A task executor under a cgroup parent of its own (`strata-test-<random>`) and a temporary
/// directory for sandboxes and files; `withExecutorFixture` kills what is left, removes both
/// and checks that nothing stayed behind.
final class ExecutorFixture: Sendable {
    let parent: String
    let directory: String
    let executor: TaskExecutor

    /// Real cgroups and setuid need root and a cgroup file system.
    static let canRun = getuid() == 0 && FileManager.default.fileExists(atPath: "/sys/fs/cgroup")
    static let canRunContainers = canRun && FileManager.default.isExecutableFile(atPath: "/usr/bin/busybox")
        && ["/usr/sbin/runc", "/usr/bin/runc"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    static let cgroupV2 = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")

    init(allowRootTasks: Bool = false) throws {
        parent = "strata-test-\(UInt64.random(in: 0...UInt64.max) & 0xFFFF_FFFF_FFFF)"
        var template = Array("/tmp/strata-executor-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw FixtureError("mkdtemp failed") }
        directory = String(cString: made)
        executor = Self.executor(parent: parent, allowRootTasks: allowRootTasks, stateDirectory: "\(directory)/state")
    }

    /// Another executor over the same cgroups and runc state: an agent after a restart.
    func restartedExecutor() -> TaskExecutor {
        Self.executor(parent: parent, allowRootTasks: false, stateDirectory: "\(directory)/state")
    }

    private static func executor(parent: String, allowRootTasks: Bool, stateDirectory: String) -> TaskExecutor {
        var logger = Logger(label: "strata.executor.test")
        logger.logLevel = .debug
        return TaskExecutor(cgroupParent: parent, allowRootTasks: allowRootTasks, logger: logger, stateDirectory: stateDirectory)
    }

    /// A new sandbox directory, writable by every user (tasks run as nobody).
    func sandbox(_ name: String = "sandbox") throws -> String {
        let path = "\(directory)/\(name)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, 0o777)
        return path
    }

    func file(_ name: String, _ contents: String) throws -> String {
        let path = "\(directory)/\(name)"
        try contents.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }

    func read(_ path: String) -> String {
        (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    /// Waits for a task to write `contents` to a file. Nothing tells when it has, so the file is
    /// read every 10 ms, for at most 30 seconds.
    func waitForFile(_ path: String, toRead contents: String) async throws {
        for _ in 0..<3000 {
            if read(path) == contents { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw FixtureError("\(path) never read \(contents.debugDescription), but \(read(path).debugDescription)")
    }

    /// A task's cgroup directory in one hierarchy (`memory`, `cpu`; ignored on v2).
    func cgroupDirectory(_ controller: String, taskId: String) -> String {
        Self.cgroupV2 ? "/sys/fs/cgroup/\(parent)/\(taskId)" : "/sys/fs/cgroup/\(controller)/\(parent)/\(taskId)"
    }

    /// Whether any hierarchy still has the task's cgroup.
    func cgroupExists(taskId: String) -> Bool {
        ["memory", "cpu", "cpuacct", "pids", "freezer"].contains {
            FileManager.default.fileExists(atPath: cgroupDirectory($0, taskId: taskId))
        }
    }

    func launch(
        _ taskId: String, _ arguments: [String], user: String = "nobody", sandbox: String, standardInput: String? = nil,
        resources: Resources = Resources(cpus: 0.1, memMB: 64), container: ContainerSpec? = nil
    ) async throws -> RunningTask {
        try await executor.launch(
            TaskLaunch(
                taskId: taskId, arguments: arguments, user: user, sandbox: sandbox, standardInput: standardInput,
                resources: resources, container: container))
    }

    func cleanUp() async {
        await executor.killAll(gracePeriodMs: 0)
        for id in executor.leftoverTaskIds() { await executor.killLeftovers(taskId: id) }
        let removed = executor.removeParentCgroupIfUnused()
        try? FileManager.default.removeItem(atPath: directory)
        #expect(removed, "cgroup parent \(parent) or runc state was left behind")
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func withExecutorFixture(
    allowRootTasks: Bool = false, _ body: (ExecutorFixture) async throws -> Void
) async throws {
    let fixture = try ExecutorFixture(allowRootTasks: allowRootTasks)
    do {
        try await body(fixture)
    } catch {
        await fixture.cleanUp()
        throw error
    }
    await fixture.cleanUp()
}

func launchError(_ body: () async throws -> RunningTask) async -> LaunchError? {
    do {
        let task = try await body()
        await task.kill(gracePeriodMs: 0)
        return nil
    } catch let error as LaunchError {
        return error
    } catch {
        return nil
    }
}

@Suite(.enabled(if: ExecutorFixture.canRun, "needs root and cgroups"), .timeLimit(.minutes(2)))
struct ExecutorProcessTests {
    @Test func aCommandThatExitsWithZeroFinishes() async throws {
        try await withExecutorFixture { fixture in
            let task = try await fixture.launch("zero", ["true"], sandbox: try fixture.sandbox())
            let outcome = await task.wait()
            #expect(outcome == TaskOutcome(state: .finished, exitCode: 0, message: "exited with status 0"))
            #expect(!fixture.cgroupExists(taskId: "zero"))
        }
    }

    @Test func aCommandThatExitsWithThreeFailsWithThatStatus() async throws {
        try await withExecutorFixture { fixture in
            let task = try await fixture.launch("three", ["sh", "-c", "exit 3"], sandbox: try fixture.sandbox())
            let outcome = await task.wait()
            #expect(outcome.state == .failed)
            #expect(outcome.exitCode == 3)
            #expect(outcome.signal == nil)
            #expect(outcome.reason == "REASON_COMMAND_EXECUTOR_FAILED")
            #expect(outcome.message == "exited with status 3")
        }
    }

    @Test func theStandardInputFileIsReadAndStandardOutputAndErrorAreKeptInTheSandbox() async throws {
        try await withExecutorFixture { fixture in
            let sandbox = try fixture.sandbox()
            let input = try fixture.file("input", "one\ntwo\nthree\n")
            let task = try await fixture.launch(
                "wc", ["sh", "-c", "wc -l; echo complaint >&2"], sandbox: sandbox, standardInput: input)
            #expect(await task.wait().state == .finished)
            #expect(fixture.read("\(sandbox)/stdout").trimmingCharacters(in: .whitespacesAndNewlines) == "3")
            #expect(fixture.read("\(sandbox)/stderr") == "complaint\n")
        }
    }

    @Test func withoutAStandardInputFileTheTaskReadsNothingAndRunsInItsSandbox() async throws {
        try await withExecutorFixture { fixture in
            let sandbox = try fixture.sandbox()
            let task = try await fixture.launch("cwd", ["sh", "-c", "cat; pwd"], sandbox: sandbox)
            #expect(await task.wait().state == .finished)
            #expect(fixture.read("\(sandbox)/stdout") == "\(sandbox)\n")
        }
    }

    @Test func theTaskRunsAsTheUserItNames() async throws {
        try await withExecutorFixture { fixture in
            let sandbox = try fixture.sandbox()
            let task = try await fixture.launch("whoami", ["sh", "-c", "id -u; id -g"], user: "nobody", sandbox: sandbox)
            #expect(await task.wait().state == .finished)
            let nobody = try #require(HostUser.lookUp("nobody"))
            #expect(fixture.read("\(sandbox)/stdout") == "\(nobody.uid)\n\(nobody.gid)\n")
        }
    }

    @Test func rootIsRefusedUnlessTheAgentAllowsRootTasks() async throws {
        try await withExecutorFixture { fixture in
            let error = await launchError { try await fixture.launch("as-root", ["id", "-u"], user: "root", sandbox: try fixture.sandbox()) }
            #expect(error?.reason == "REASON_TASK_INVALID")
            #expect(error?.message.contains("would run as root") == true)
            #expect(!fixture.cgroupExists(taskId: "as-root"))
        }
        try await withExecutorFixture(allowRootTasks: true) { fixture in
            let sandbox = try fixture.sandbox()
            let task = try await fixture.launch("as-root", ["id", "-u"], user: "root", sandbox: sandbox)
            #expect(await task.wait().state == .finished)
            #expect(fixture.read("\(sandbox)/stdout") == "0\n")
        }
    }

    @Test func anUnknownUserAndAMissingCommandAreLaunchErrorsThatLeaveNothingBehind() async throws {
        try await withExecutorFixture { fixture in
            let sandbox = try fixture.sandbox()
            let unknownUser = await launchError {
                try await fixture.launch("no-user", ["true"], user: "no-such-user-strata", sandbox: sandbox)
            }
            #expect(unknownUser?.message == "user 'no-such-user-strata' does not exist on this agent's host")
            let missingCommand = await launchError {
                try await fixture.launch("no-command", ["no-such-command-strata", "x"], sandbox: sandbox)
            }
            #expect(missingCommand?.message.hasPrefix("command 'no-such-command-strata' not found") == true)
            let badId = await launchError { try await fixture.launch("../escape", ["true"], sandbox: sandbox) }
            #expect(badId?.reason == "REASON_TASK_INVALID")
            #expect(fixture.executor.leftoverTaskIds().isEmpty)
        }
    }

    @Test func aTaskThatAllocatesPastItsMemoryLimitFailsWithTheMemoryReason() async throws {
        try await withExecutorFixture { fixture in
            let task = try await fixture.launch(
                "hungry", ["sh", "-c", #"x=$(head -c 100000000 /dev/zero | tr "\0" a); echo done"#],
                sandbox: try fixture.sandbox(), resources: Resources(cpus: 0.5, memMB: 32))
            let outcome = await task.wait()
            #expect(outcome.state == .failed)
            #expect(outcome.reason == "REASON_CONTAINER_LIMITATION_MEMORY")
            #expect(outcome.message.hasPrefix("Memory limit exceeded: requested 32 MB, peak "), "\(outcome.message)")
            #expect(!fixture.cgroupExists(taskId: "hungry"))
        }
    }

    @Test func cpuSharesAndTheMemoryLimitAreSetWhileTheTaskRuns() async throws {
        try await withExecutorFixture { fixture in
            let task = try await fixture.launch(
                "limits", ["sleep", "1000"], sandbox: try fixture.sandbox(), resources: Resources(cpus: 0.5, memMB: 48))
            if ExecutorFixture.cgroupV2 {
                let directory = fixture.cgroupDirectory("cpu", taskId: "limits")
                #expect(fixture.read("\(directory)/cpu.weight") == "\(TaskCgroup.cpuWeight(forShares: 512))\n")
                #expect(fixture.read("\(directory)/memory.max") == "\(48 << 20)\n")
            } else {
                #expect(fixture.read("\(fixture.cgroupDirectory("cpu", taskId: "limits"))/cpu.shares") == "512\n")
                #expect(fixture.read("\(fixture.cgroupDirectory("memory", taskId: "limits"))/memory.limit_in_bytes") == "\(48 << 20)\n")
            }
            await task.kill(gracePeriodMs: 0)
        }
    }

    @Test func theCommandStartsInsideItsCgroups() async throws {
        try await withExecutorFixture { fixture in
            let sandbox = try fixture.sandbox()
            let task = try await fixture.launch("inside", ["cat", "/proc/self/cgroup"], sandbox: sandbox)
            #expect(await task.wait().state == .finished)
            let lines = fixture.read("\(sandbox)/stdout").split(separator: "\n")
            let wanted = ExecutorFixture.cgroupV2 ? ["0::"] : [":memory:", ":cpu:", ":pids:", ":freezer:"]
            for controller in wanted {
                let line = lines.first { $0.contains(controller) }
                #expect(line?.hasSuffix(":/\(fixture.parent)/inside") == true, "\(controller) \(line ?? "missing")")
            }
        }
    }

    @Test func killEndsASleepingTaskAsKilledAndRemovesItsCgroup() async throws {
        try await withExecutorFixture { fixture in
            let task = try await fixture.launch("sleeper", ["sleep", "1000"], sandbox: try fixture.sandbox())
            #expect(fixture.cgroupExists(taskId: "sleeper"))
            await task.kill()
            let outcome = await task.wait()
            #expect(outcome.state == .killed)
            #expect(outcome.reason == "REASON_TASK_KILLED")
            #expect(outcome.signal == SIGTERM)
            #expect(!fixture.cgroupExists(taskId: "sleeper"))
            #expect(fixture.executor.runningTask("sleeper") == nil)
        }
    }

    @Test func aTaskThatIgnoresSIGTERMIsKilledAfterTheGrace() async throws {
        try await withExecutorFixture { fixture in
            let sandbox = try fixture.sandbox()
            let task = try await fixture.launch(
                "stubborn", ["sh", "-c", "trap '' TERM; echo ready; sleep 1000 & wait"], sandbox: sandbox)
            try await fixture.waitForFile("\(sandbox)/stdout", toRead: "ready\n")
            await task.kill(gracePeriodMs: 200)
            let outcome = await task.wait()
            #expect(outcome.state == .killed)
            #expect(outcome.signal == SIGKILL)
            #expect(!fixture.cgroupExists(taskId: "stubborn"))
        }
    }

    @Test func whatTheMainProcessLeavesRunningIsKilledWhenItEnds() async throws {
        try await withExecutorFixture { fixture in
            let sandbox = try fixture.sandbox()
            let task = try await fixture.launch("daemonizer", ["sh", "-c", "sleep 1000 & echo $!"], sandbox: sandbox)
            #expect(await task.wait().state == .finished)
            let background = try #require(Int32(fixture.read("\(sandbox)/stdout").trimmingCharacters(in: .whitespacesAndNewlines)))
            // Gone, or a zombie its new parent has yet to reap.
            let status = fixture.read("/proc/\(background)/stat")
            #expect(status.isEmpty || status.contains(") Z "), "\(status)")
            #expect(!fixture.cgroupExists(taskId: "daemonizer"))
        }
    }

    /// A task has ended once none of its processes is left, what it left running included
    /// (what it held is free then, and an agent reports it); `wait` gives the same outcome once
    /// its cgroup is gone as well, and the executor runs the task until then.
    @Test func aTaskHasEndedOnceNoProcessIsLeftAndIsDoneOnceItsCgroupIsGone() async throws {
        try await withExecutorFixture { fixture in
            let sandbox = try fixture.sandbox()
            let task = try await fixture.launch("two-phases", ["sh", "-c", "sleep 1000 & echo $!"], sandbox: sandbox)
            let ended = await task.waitUntilEnded()
            #expect(ended == TaskOutcome(state: .finished, exitCode: 0, message: "exited with status 0"))
            let background = try #require(Int32(fixture.read("\(sandbox)/stdout").trimmingCharacters(in: .whitespacesAndNewlines)))
            let status = fixture.read("/proc/\(background)/stat")
            #expect(status.isEmpty || status.contains(") Z "), "\(status)")
            #expect(task.cgroup.pids().isEmpty)
            #expect(await task.wait() == ended)
            #expect(!fixture.cgroupExists(taskId: "two-phases"))
            #expect(fixture.executor.runningTask("two-phases") == nil)
            // Asked again after the end, it answers at once.
            #expect(await task.waitUntilEnded() == ended)
        }
    }

    @Test func anAgentAfterARestartFindsAndKillsWhatTheEarlierOneLeftRunning() async throws {
        try await withExecutorFixture { fixture in
            let task = try await fixture.launch(
                "orphan", ["sh", "-c", "sleep 1000 & sleep 1000"], sandbox: try fixture.sandbox())
            let restarted = fixture.restartedExecutor()
            #expect(restarted.leftoverTaskIds() == ["orphan"])
            await restarted.killLeftovers(taskId: "orphan")
            #expect(!fixture.cgroupExists(taskId: "orphan"))
            #expect(restarted.leftoverTaskIds().isEmpty)
            // The earlier executor's view: its task died of a kill it did not ask for.
            let outcome = await task.wait()
            #expect(outcome.state == .failed)
            #expect(outcome.signal == SIGKILL)
        }
    }
}

/// Tasks made ready ahead and held until released (`TaskLaunch.heldUntilReleased`), as an agent
/// does with a task whose not-before time has not come.
@Suite(.enabled(if: ExecutorFixture.canRun, "needs root and cgroups"), .timeLimit(.minutes(2)))
struct ExecutorHeldTaskTests {
    static func launchHeld(_ fixture: ExecutorFixture, _ taskId: String, _ arguments: [String], sandbox: String) async throws -> RunningTask {
        var launch = TaskLaunch(taskId: taskId, arguments: arguments, user: "nobody", sandbox: sandbox, resources: Resources(cpus: 0.1, memMB: 64))
        launch.heldUntilReleased = true
        return try await fixture.executor.launch(launch)
    }

    /// The argv of a process, from /proc.
    static func commandLine(_ pid: Int32) -> [String] {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return [] }
        return data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func aHeldTaskWaitsInItsCgroupsAndRunsItsCommandOnlyOnceReleased() async throws {
        try await withExecutorFixture { fixture in
            let sandbox = try fixture.sandbox()
            let task = try await Self.launchHeld(fixture, "held", ["sh", "-c", "echo ran"], sandbox: sandbox)
            // Ready: its shell is in its cgroups, waiting at the gate; the command has not run.
            #expect(task.isHeld && task.outcome == nil)
            #expect(fixture.cgroupExists(taskId: "held"))
            #expect(Self.commandLine(task.pid).first == "sh" && Self.commandLine(task.pid).contains("strata-task"))
            #expect(fixture.read("\(sandbox)/stdout").isEmpty)
            #expect(task.release())
            #expect(!task.isHeld && !task.release())
            #expect(await task.wait().state == .finished)
            #expect(fixture.read("\(sandbox)/stdout") == "ran\n")
            #expect(!fixture.cgroupExists(taskId: "held"))
        }
    }

    @Test func aHeldTaskKilledBeforeItsReleaseNeverRunsItsCommand() async throws {
        try await withExecutorFixture { fixture in
            let sandbox = try fixture.sandbox()
            let task = try await Self.launchHeld(fixture, "never", ["sh", "-c", "echo ran"], sandbox: sandbox)
            await task.kill(gracePeriodMs: 0)
            #expect(task.outcome?.state == .killed)
            #expect(!task.release())
            #expect(fixture.read("\(sandbox)/stdout").isEmpty)
            #expect(!fixture.cgroupExists(taskId: "never"))
        }
    }

    @Test func aContainerCannotBeHeld() async throws {
        try await withExecutorFixture { fixture in
            var launch = TaskLaunch(
                taskId: "boxed", arguments: ["true"], user: "nobody", sandbox: try fixture.sandbox(), resources: Resources(cpus: 0.1, memMB: 64),
                container: ContainerSpec(rootFilesystem: fixture.directory))
            launch.heldUntilReleased = true
            let error = await launchError { try await fixture.executor.launch(launch) }
            #expect(error?.reason == "REASON_TASK_INVALID")
        }
    }
}
