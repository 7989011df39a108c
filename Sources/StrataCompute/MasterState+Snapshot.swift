extension MasterState {
    /// Records that, applied to an empty state, rebuild this one's jobs and attempts: what a
    /// snapshot holds, so a long log can be replaced by a short one.
    public func snapshotRecords() -> [MasterRecord] {
        var records: [MasterRecord] = []
        for jobId in jobOrder {
            let job = jobs[jobId]!
            records.append(.submitted(job.spec, job.splits))
            for attempt in attempts(ofJob: jobId) {
                var staged = attempt
                staged.state = .staging
                staged.runningAtMs = nil
                staged.endedAtMs = nil
                records.append(.launched(staged))
                if attempt.state == .running || attempt.state.isTerminal {
                    if let runningAtMs = attempt.runningAtMs, attempt.state != .running {
                        records.append(.updated(TaskUpdate(TaskStatus(taskId: attempt.taskId, state: .running), atMs: runningAtMs)))
                    }
                    let status = TaskStatus(
                        taskId: attempt.taskId, state: attempt.state, exitCode: attempt.exitCode, reason: attempt.reason,
                        message: attempt.message, bytesReadLocal: attempt.bytesReadLocal, bytesReadRemote: attempt.bytesReadRemote,
                        stderrTail: attempt.stderrTail)
                    records.append(.updated(TaskUpdate(status, atMs: attempt.endedAtMs ?? attempt.runningAtMs ?? attempt.stagedAtMs)))
                }
            }
            switch job.state {
            case .finished: records.append(.jobEnded(jobId: jobId, state: .finished, message: job.message, atMs: job.endedAtMs ?? 0))
            case .killed: records.append(.killRequested(jobId: jobId, atMs: job.endedAtMs ?? 0))
            case .running, .committing, .failed: break
            }
        }
        return records
    }
}
