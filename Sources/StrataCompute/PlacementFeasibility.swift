extension Placer {
    /// Why a task could never be placed on this cluster, even with every agent empty: it needs
    /// more than any agent has in total (resources or ports), or no agent with room for it
    /// satisfies its constraints (a LIKE that matches no agent's value, a CLUSTER value no agent
    /// has, an invalid pattern). Nil if some agent could take it. Constraints that depend on the
    /// group's other tasks (UNIQUE, MAX_PER, GROUP_BY, CLUSTER without a value) count as
    /// satisfiable by any agent with the field.
    public func neverPlaceableReason(_ task: PlacementTask) -> String? {
        guard !agents.isEmpty else { return "the cluster has no agents" }
        var matchers: [String: (String) -> Bool] = [:]
        for constraint in task.constraints {
            switch constraint.operator {
            case .like, .unlike:
                guard let pattern = constraint.value else { return "constraint \(constraint) needs a regular expression" }
                guard let matcher = Self.wholeMatcher(pattern) else {
                    return "constraint \(constraint): '\(pattern)' is not a valid regular expression"
                }
                matchers[pattern] = matcher
            case .maxPer:
                guard let limit = constraint.value.flatMap({ Int($0) }), limit >= 1 else {
                    return "constraint \(constraint) needs a positive whole number"
                }
            case .unique, .cluster, .groupBy:
                break
            }
        }

        func satisfies(_ agent: AgentInfo, _ constraint: Constraint) -> Bool {
            let value = agent.value(of: constraint.field)
            switch constraint.operator {
            case .like: return value.map { matchers[constraint.value!]!($0) } ?? false
            case .unlike: return value.map { !matchers[constraint.value!]!($0) } ?? true
            case .cluster: return value != nil && (constraint.value == nil || constraint.value == value)
            case .unique, .groupBy, .maxPer: return value != nil
            }
        }

        let bigEnough = agents.map(\.info).filter {
            $0.resources.fits(task.needs) && $0.ports.reduce(0, { $0 + $1.count }) >= task.portCount
        }
        if bigEnough.isEmpty { return tooBigReason(task) }
        if bigEnough.contains(where: { agent in task.constraints.allSatisfy { satisfies(agent, $0) } }) { return nil }
        for constraint in task.constraints where !agents.contains(where: { satisfies($0.info, constraint) }) {
            let values = Set(agents.compactMap { $0.info.value(of: constraint.field) }).sorted()
            guard !values.isEmpty else { return "no agent satisfies \(constraint): no agent has \(constraint.field)" }
            let shown = values.prefix(10).joined(separator: ", ") + (values.count > 10 ? ", ..." : "")
            return "no agent satisfies \(constraint) (the agents' values of \(constraint.field): \(shown))"
        }
        let listed = task.constraints.map(\.description).joined(separator: " ")
        return "no agent with \(Self.describe(task)) in total satisfies \(listed)"
    }

    /// Which of a task's needs no agent has in total.
    private func tooBigReason(_ task: PlacementTask) -> String {
        let largestCpus = agents.map(\.info.resources.cpus).max()!
        let largestMem = agents.map(\.info.resources.memMB).max()!
        let largestDisk = agents.map(\.info.resources.diskMB).max()!
        let mostPorts = agents.map { $0.info.ports.reduce(0) { $0 + $1.count } }.max()!
        var excess: [String] = []
        if task.needs.cpus > largestCpus + Resources.tolerance {
            excess.append("\(Resources.format(task.needs.cpus)) cpus (the most any agent has is \(Resources.format(largestCpus)))")
        }
        if task.needs.memMB > largestMem + Resources.tolerance {
            excess.append("\(Resources.format(task.needs.memMB)) MB of memory (the most any agent has is \(Resources.format(largestMem)))")
        }
        if task.needs.diskMB > largestDisk + Resources.tolerance {
            excess.append("\(Resources.format(task.needs.diskMB)) MB of disk (the most any agent has is \(Resources.format(largestDisk)))")
        }
        if task.portCount > mostPorts {
            excess.append("\(task.portCount) ports (the most any agent has is \(mostPorts))")
        }
        if excess.isEmpty { return "no single agent has \(Self.describe(task)) in total" }
        return "it needs " + excess.joined(separator: " and ")
    }

    private static func describe(_ task: PlacementTask) -> String {
        task.portCount > 0 ? "\(task.needs) and \(task.portCount) ports" : "\(task.needs)"
    }
}
