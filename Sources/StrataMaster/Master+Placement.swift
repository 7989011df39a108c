import StrataCompute
import StrataCore

extension Master {
    /// One placement round over the state: pending splits go to agents as `Placer` decides
    /// (resources, constraints, fair shares, locality with delay scheduling). Returns the
    /// placements and the next instant a held-back task stops waiting for a local slot.
    static func place(
        _ state: inout MasterState, now: MonotonicInstant
    ) -> ([TaskPlacement], MonotonicInstant?) {
        let pending = state.pendingTasks
        guard !pending.isEmpty else { return ([], nil) }
        let agents = state.activeAgents.map {
            PlacementAgent(info: $0.info, available: $0.available, availablePorts: $0.info.ports.subtracting(state.portsInUse(agentId: $0.info.id)))
        }
        guard !agents.isEmpty else { return ([], nil) }
        var placer = Placer(agents: agents)
        for (attempt, resources) in state.unfinishedAttempts {
            let group = state.jobs[attempt.jobId]?.spec.constraintGroup ?? attempt.jobId
            placer.addRunning(group: group, user: attempt.user, agentId: attempt.agentId, needs: resources)
        }
        var byId: [String: MasterState.PendingTask] = [:]
        let tasks = pending.map { task -> PlacementTask in
            let id = "\(task.jobId)/\(task.index)"
            byId[id] = task
            return PlacementTask(
                id: id, group: task.spec.constraintGroup, user: task.spec.user, needs: task.spec.resources, portCount: task.spec.service?.portCount ?? 0,
                constraints: task.spec.constraints, preferredDataNodes: task.split.dataNodes, waitingSince: task.waitingSince,
                localityWaitMs: task.spec.localityWaitMs)
        }
        let round = placer.place(tasks, now: now)
        let placements = round.decisions.compactMap { decision -> TaskPlacement? in
            guard let task = byId[decision.taskId] else { return nil }
            return TaskPlacement(jobId: task.jobId, index: task.index, agentId: decision.agentId, isNodeLocal: decision.isNodeLocal, ports: decision.ports)
        }
        return (placements, round.nextLocalityDeadline)
    }

    /// Why a job's tasks could never run on the agents registered now; nil if they could (or no
    /// agent has registered yet: they may still come).
    func neverPlaceableReason(_ spec: JobSpec) -> String? {
        state.withLock { state in
            let agents = state.activeAgents.map {
                PlacementAgent(info: $0.info, available: $0.info.resources, availablePorts: $0.info.ports)
            }
            guard !agents.isEmpty else { return nil }
            let placer = Placer(agents: agents)
            let task = PlacementTask(
                id: "probe", group: spec.constraintGroup, user: spec.user, needs: spec.resources, portCount: spec.service?.portCount ?? 0,
                constraints: spec.constraints,
                preferredDataNodes: [], waitingSince: .zero, localityWaitMs: spec.localityWaitMs)
            return placer.neverPlaceableReason(task)
        }
    }
}
