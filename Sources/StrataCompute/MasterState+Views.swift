import StrataCore

extension MasterState {
    /// How the API shows a job.
    public func view(ofJob jobId: String) -> ComputeAPI.JobView? {
        guard let job = jobs[jobId] else { return nil }
        let jobAttempts = attempts(ofJob: jobId)
        var running = 0
        var pending = 0
        for slot in job.slots {
            switch slot {
            case .pending: if job.state == .running { pending += 1 }
            case .active: running += 1
            case .done: break
            }
        }
        var local = 0
        var remote = 0
        var bytesLocal: UInt64 = 0
        var bytesRemote: UInt64 = 0
        for attempt in jobAttempts where attempt.state == .finished {
            if attempt.isNodeLocal { local += 1 } else { remote += 1 }
            bytesLocal += attempt.bytesReadLocal
            bytesRemote += attempt.bytesReadRemote
        }
        return ComputeAPI.JobView(
            id: jobId, user: job.spec.user, state: job.state, arguments: job.spec.arguments, inputs: job.spec.inputs,
            output: job.spec.output, resources: job.spec.resources, maxAttempts: job.spec.maxAttempts,
            localityWaitMs: job.spec.localityWaitMs, image: job.spec.image, service: job.spec.service, labels: job.spec.labels, submittedAtMs: job.spec.submittedAtMs, notBefore: job.spec.notBeforeMs, endedAtMs: job.endedAtMs,
            message: job.message, tasks: job.slots.count, finishedTasks: job.finishedTasks, runningTasks: running,
            pendingTasks: pending, attempts: jobAttempts.count, failedAttempts: jobAttempts.count { $0.state == .failed },
            nodeLocalTasks: local, remoteTasks: remote, bytesReadLocal: bytesLocal, bytesReadRemote: bytesRemote)
    }

    /// A job's attempts, by split and attempt number.
    public func attempts(ofJob jobId: String) -> [TaskAttempt] {
        (attemptIdsByJob[jobId] ?? []).compactMap { attempts[$0] }.sorted { ($0.index, $0.attempt) < ($1.index, $1.attempt) }
    }

    /// Service tasks in submission order: those with `label` (`key`, `value`) if given, and
    /// only those not ended when `activeOnly`.
    public func serviceViews(label: (key: String, value: String)?, activeOnly: Bool) -> [ComputeAPI.ServiceView] {
        jobOrder.compactMap { jobId in
            guard let job = jobs[jobId], let service = job.spec.service else { return nil }
            if let label, service.labels[label.key] != label.value { return nil }
            if activeOnly, job.state.isTerminal { return nil }
            guard let view = view(ofJob: jobId) else { return nil }
            return ComputeAPI.ServiceView(job: view, task: attempts(ofJob: jobId).last.map { self.view(ofTask: $0) })
        }
    }

    /// Jobs in submission order, those with `label` only and, with `activeOnly`, only those not
    /// ended.
    public func jobViews(label: (key: String, value: String)?, activeOnly: Bool) -> [ComputeAPI.JobView] {
        jobOrder.compactMap { jobId in
            guard let job = jobs[jobId] else { return nil }
            if let label, !job.spec.hasLabel(label.key, label.value) { return nil }
            if activeOnly, job.state.isTerminal { return nil }
            return view(ofJob: jobId)
        }
    }

    public func view(ofTask attempt: TaskAttempt) -> ComputeAPI.TaskView {
        let info = agents[attempt.agentId]?.info
        let split = jobs[attempt.jobId].flatMap { $0.splits.indices.contains(attempt.index) ? $0.splits[attempt.index] : nil }
        return ComputeAPI.TaskView(attempt: attempt, agentHostname: info?.hostname, agentAddress: info?.address, split: split)
    }

    public func agentViews(now: MonotonicInstant) -> [ComputeAPI.AgentView] {
        agents.keys.sorted().compactMap { agentId in
            let agent = agents[agentId]!
            guard let info = agent.info else { return nil }
            var used = Resources.zero
            for taskId in agent.tasks {
                if let attempt = attempts[taskId], let job = jobs[attempt.jobId] { used += job.spec.resources }
            }
            return ComputeAPI.AgentView(
                info: info, active: !agent.isLost, used: used, tasks: agent.tasks.count,
                lastSeenSecondsAgo: Double((now - agent.lastSeen).components.seconds))
        }
    }
}
