import Foundation
import Glibc
import Synchronization

extension ChildProcess {
    /// Runs a command to its end, or kills it (its whole process group: the child leads a
    /// session of its own) after `timeoutMs`. Returns how it ended, whether it ran out of time,
    /// and what it wrote (stdout and stderr together, at most 64 KiB).
    static func run(_ request: Request, timeoutMs: Int64) async -> (exit: ChildExit, timedOut: Bool, output: String) {
        var request = request
        var pipeDescriptors: [Int32] = [-1, -1]
        guard makePipe(&pipeDescriptors) else { return (.unknown("pipe: \(describe(errno: errno))"), false, "") }
        let nullInput = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { if nullInput >= 0 { close(nullInput) } }
        request.standardInput = nullInput
        request.standardOutput = pipeDescriptors[1]
        request.standardError = pipeDescriptors[1]
        let pid: pid_t
        do {
            pid = try spawn(request)
        } catch {
            close(pipeDescriptors[0])
            close(pipeDescriptors[1])
            return (.unknown(error.message), false, "")
        }
        close(pipeDescriptors[1])
        let readEnd = pipeDescriptors[0]
        let run = TimedRun()
        let timer = Task {
            guard (try? await Task.sleep(for: .milliseconds(max(1, timeoutMs)))) != nil else { return }
            run.state.withLock { state in
                guard !state.reaped else { return }
                state.timedOut = true
                _ = Glibc.kill(-pid, SIGKILL)
            }
        }
        let (exit, output): (ChildExit, [UInt8]) = await withCheckedContinuation { continuation in
            let started = DedicatedThread.start {
                let output = readToEndBlocking(readEnd)
                _ = waitForExitWithoutReaping(pid)
                run.state.withLock { $0.reaped = true }
                continuation.resume(returning: (reap(pid), output))
            }
            if !started {
                _ = Glibc.kill(-pid, SIGKILL)
                close(readEnd)
                continuation.resume(returning: (reap(pid), []))
            }
        }
        timer.cancel()
        return (exit, run.state.withLock { $0.timedOut }, String(decoding: output, as: UTF8.self))
    }

    /// A timed run's state: `reaped` is set under the lock before the child is reaped (from then
    /// on its pid may be reused, and nothing may signal it).
    private final class TimedRun: Sendable {
        let state = Mutex<(reaped: Bool, timedOut: Bool)>((false, false))
    }
}

extension RunningTask {
    /// Runs a command health check beside the task: in its container (`runc exec`) or, for a
    /// process, as its user in its sandbox with its environment. A pass is exit status 0
    /// within `timeoutMs`.
    func runHealthCheck(
        _ command: String, user: HostUser, environment: [String], sandbox: String, timeoutMs: Int64
    ) async -> (passed: Bool, message: String) {
        let request: ChildProcess.Request
        if let container {
            request = ChildProcess.Request(
                executable: container.runcPath,
                arguments: ["runc", "--root", container.stateRoot, "exec"] + environment.flatMap { ["--env", $0] }
                    + [container.id, "/bin/sh", "-c", command],
                environment: ["PATH=\(ChildProcess.defaultPath)"], workingDirectory: nil, standardInput: -1, standardOutput: -1,
                standardError: -1)
        } else {
            guard let setpriv = TaskExecutor.firstExecutable(["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv"]) else {
                return (false, "setpriv (util-linux) is not installed on this agent's host")
            }
            request = ChildProcess.Request(
                executable: setpriv,
                arguments: ["setpriv", "--reuid=\(user.uid)", "--regid=\(user.gid)", "--init-groups", "--", "/bin/sh", "-c", command],
                environment: environment, workingDirectory: sandbox, standardInput: -1, standardOutput: -1, standardError: -1)
        }
        let (exit, timedOut, output) = await ChildProcess.run(request, timeoutMs: timeoutMs)
        let said = output.trimmingCharacters(in: .whitespacesAndNewlines).suffix(512)
        if timedOut { return (false, "the health check did not end within \(timeoutMs) ms") }
        if exit == .exited(0) { return (true, String(said)) }
        return (false, "the health check ended with \(exit)" + (said.isEmpty ? "" : ": \(said)"))
    }
}
