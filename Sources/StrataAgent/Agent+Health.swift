import Foundation
import StrataCompute
import StrataCore

extension Agent {
    /// Runs a task's command health check until the task ends (or this is cancelled): each
    /// change of health goes to the master as a status update, and a task whose check failed
    /// `maxConsecutiveFailures` times in a row is killed (docs/compute.md "Command health
    /// checks"). Returns the message to end the task with when it was killed that way.
    func superviseHealth(
        _ check: CommandHealthCheck, order: TaskLaunchOrder, running: RunningTask, sandbox: String
    ) async -> String? {
        guard let user = HostUser.lookUp(order.user) else { return nil }
        var environment = taskEnvironment(order, sandbox: sandbox)
        if environment["PATH"] == nil { environment["PATH"] = ChildProcess.defaultPath }
        let environmentList = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        var verdicts = CommandHealthVerdicts(check: check, runningSince: clock.now)
        while !Task.isCancelled, running.outcome == nil {
            do { try await clock.sleep(until: verdicts.nextCheck) } catch { return nil }
            let startedAt = clock.now
            let (passed, message) = await running.runHealthCheck(
                check.command, user: user, environment: environmentList, sandbox: sandbox, timeoutMs: check.timeoutMs)
            guard !Task.isCancelled, running.outcome == nil else { return nil }
            for verdict in verdicts.record(passed: passed, startedAt: startedAt) {
                switch verdict {
                case .report(let healthy):
                    logger.info("task health changed", metadata: ["task": "\(order.taskId)", "healthy": "\(healthy)", "check": "\(message)"])
                    await report(TaskStatus(
                        taskId: order.taskId, state: .running, reason: Self.healthReason, message: message, healthy: healthy))
                case .kill(let failures):
                    let reason = "killed after \(failures) failed health checks in a row: \(message)"
                    logger.warning("killing an unhealthy task", metadata: ["task": "\(order.taskId)", "check": "\(message)"])
                    await running.kill(gracePeriodMs: configuration.killGracePeriodMs)
                    return reason
                }
            }
        }
        return nil
    }

    /// Mesos' reason on status updates about a task's health.
    static let healthReason = "REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"
}
