import StrataCore

/// The master's placement decisions, with no I/O: which pending task goes to which agent.
///
/// The master builds a `Placer` from its agents' free resources, tells it about the tasks
/// already running (`addRunning`), and calls `place` with the pending tasks; each decision
/// takes its resources and ports inside the `Placer`, so a later call sees them gone.
///
/// How a round goes:
/// - Users take turns by Dominant Resource Fairness: the next task considered is the earliest
///   pending task of the user whose dominant share of the cluster (running tasks plus those
///   placed so far this round) is smallest; ties go to the earlier task.
/// - A task with preferred data nodes goes to the least loaded agent beside one of them that has
///   room and satisfies its constraints (node-local). If there is none, it is held back until its
///   locality wait (counted from `waitingSince`) runs out, in case one frees up (delay
///   scheduling); after that, or at once for a task without preferences, it goes to the least
///   loaded acceptable agent anywhere.
/// - Constraints follow Marathon: see `Constraint.Operator` and PlacementConstraints.swift.
///
/// "Least loaded" is the highest smallest-free-fraction of any resource (an agent idle in cpus but
/// full in memory is full), found through `PlacementAgentIndex` without visiting every agent.
public struct Placer: Sendable {
    struct AgentState: Sendable {
        var info: AgentInfo
        var available: Resources
        var freePorts: [PortRange]
        var freePortCount: Int

        func fits(_ needs: Resources, portCount: Int) -> Bool {
            available.fits(needs) && portCount <= freePortCount
        }

        var leaf: PlacementAgentIndex.Node {
            PlacementAgentIndex.Node(
                cpus: available.cpus, memMB: available.memMB, diskMB: available.diskMB, ports: freePortCount,
                score: PlacementAgentIndex.score(available: available, total: info.resources))
        }

        /// Takes the lowest `count` free ports.
        mutating func takePorts(_ count: Int) -> [Int] {
            precondition(count <= freePortCount, "an agent gives out only the ports it has free")
            var ports: [Int] = []
            ports.reserveCapacity(count)
            while ports.count < count {
                let range = freePorts[0]
                let taken = min(range.count, count - ports.count)
                ports.append(contentsOf: range.begin..<(range.begin + taken))
                if taken == range.count {
                    freePorts.removeFirst()
                } else {
                    freePorts[0] = PortRange(range.begin + taken, range.end)
                }
            }
            freePortCount -= count
            return ports
        }
    }

    /// What happened to one task in a round.
    enum Outcome {
        case placed(PlacementDecision)
        case waitingForLocality(until: MonotonicInstant)
        case noRoom
    }

    /// One user's turn in the Dominant Resource Fairness order: smallest share first, then the
    /// earliest pending task.
    struct UserTurn: HeapOrdered {
        var share: Double
        var position: Int
        var user: Int

        func precedes(_ other: UserTurn) -> Bool {
            share < other.share || (share == other.share && position < other.position)
        }
    }

    /// How many task shapes that found no room a round remembers (see `place`).
    static let rememberedNoRoomShapes = 32

    var agents: [AgentState]
    let agentIndexById: [String: Int]
    let agentsByDataNode: [String: [Int]]
    /// The cluster's total resources, which DRF shares are fractions of.
    let clusterTotal: Resources
    var index: PlacementAgentIndex
    /// What each user's running and placed tasks hold.
    var usageByUser: [String: Resources] = [:]
    var groupSlotByName: [String: Int] = [:]
    var groups: [PlacementGroup] = []
    var fieldSlotByName: [String: Int] = [:]
    var fields: [PlacementFieldValues] = []
    var patternSlotByKey: [PlacementPatternKey: Int] = [:]
    /// Per pattern, whether each value of its field matches it; nil for a pattern that is not a
    /// valid regular expression.
    var patternMatches: [[Bool]?] = []
    /// The index search's scratch space, kept so that searches allocate nothing.
    var frontier: [PlacementAgentIndex.Candidate] = []

    public init(agents: [PlacementAgent]) {
        var indexById: [String: Int] = [:]
        var byDataNode: [String: [Int]] = [:]
        var total = Resources.zero
        self.agents = agents.enumerated().map { position, agent in
            precondition(indexById.updateValue(position, forKey: agent.info.id) == nil, "agent \(agent.info.id) is given twice")
            if let dataNode = agent.info.dataNodeId { byDataNode[dataNode, default: []].append(position) }
            total += agent.info.resources
            return AgentState(
                info: agent.info, available: agent.available, freePorts: agent.availablePorts,
                freePortCount: agent.availablePorts.reduce(0) { $0 + $1.count })
        }
        agentIndexById = indexById
        agentsByDataNode = byDataNode
        clusterTotal = total
        index = PlacementAgentIndex(leaves: self.agents.map(\.leaf))
    }

    /// A task already running (or launched): counts toward its user's DRF share and its group's
    /// constraints. Its resources are not taken again: the agents' `available` already leaves
    /// them out. A task on an agent this `Placer` does not know counts toward the share only.
    public mutating func addRunning(group: String, user: String, agentId: String, needs: Resources) {
        usageByUser[user, default: .zero] += needs
        if let agent = agentIndexById[agentId] {
            recordTask(group: groupSlot(for: group), agent: agent)
        }
    }

    /// Places as many pending tasks as fit; decisions consume the agents' resources and ports
    /// inside the `Placer`. Every task ends up in exactly one of the round's lists.
    public mutating func place(_ pending: [PlacementTask], now: MonotonicInstant) -> PlacementRound {
        var round = PlacementRound()
        var userSlotByName: [String: Int] = [:]
        var userNames: [String] = []
        var queues: [[Int]] = []
        for (position, task) in pending.enumerated() {
            if let user = userSlotByName[task.user] {
                queues[user].append(position)
            } else {
                userSlotByName[task.user] = userNames.count
                userNames.append(task.user)
                queues.append([position])
            }
        }
        var usage = userNames.map { usageByUser[$0] ?? .zero }
        var nextInQueue = [Int](repeating: 0, count: userNames.count)
        var turns: [UserTurn] = []
        for user in userNames.indices {
            turns.heapPush(UserTurn(share: usage[user].dominantShare(of: clusterTotal), position: queues[user][0], user: user))
        }
        // Free resources only shrink during a round, so a task without constraints that found no
        // room anywhere means no later task needing at least as much in every dimension can
        // find any either: it is answered without a search.
        var noRoomShapes: [(needs: Resources, portCount: Int)] = []

        round.decisions.reserveCapacity(pending.count)
        while let turn = turns.heapPop() {
            let user = turn.user
            let task = pending[queues[user][nextInQueue[user]]]
            nextInQueue[user] += 1
            switch placeOne(task, now: now, noRoomShapes: &noRoomShapes) {
            case .placed(let decision):
                round.decisions.append(decision)
                usage[user] += task.needs
            case .waitingForLocality(let deadline):
                round.waitingForLocality.append(task.id)
                round.nextLocalityDeadline = min(round.nextLocalityDeadline ?? deadline, deadline)
            case .noRoom:
                round.noRoom.append(task.id)
            }
            if nextInQueue[user] < queues[user].count {
                let share = usage[user].dominantShare(of: clusterTotal)
                turns.heapPush(UserTurn(share: share, position: queues[user][nextInQueue[user]], user: user))
            }
        }
        for user in userNames.indices { usageByUser[userNames[user]] = usage[user] }
        return round
    }

    mutating func placeOne(
        _ task: PlacementTask, now: MonotonicInstant, noRoomShapes: inout [(needs: Resources, portCount: Int)]
    ) -> Outcome {
        let group = groupSlot(for: task.group)
        let rules = task.constraints.isEmpty ? [] : prepareRules(task.constraints, group: group)
        if rules.contains(where: \.isNever) { return .noRoom }

        if !task.preferredDataNodes.isEmpty {
            var best: Int?
            var bestScore = -Double.infinity
            var anyLocalAgent = false
            for dataNode in task.preferredDataNodes {
                guard let local = agentsByDataNode[dataNode] else { continue }
                anyLocalAgent = true
                for agent in local where agents[agent].fits(task.needs, portCount: task.portCount) {
                    let score = index.nodes[index.leafBase + agent].score
                    guard score > bestScore || (score == bestScore && best.map { agent < $0 } ?? true) else { continue }
                    guard rules.isEmpty || satisfies(rules, group: group, agent: agent) else { continue }
                    best = agent
                    bestScore = score
                }
            }
            if let best { return .placed(commit(task, group: group, agent: best)) }
            // Waiting only makes sense if a preferred data node has an agent that could free up.
            if anyLocalAgent, task.localityWaitMs > 0, now < task.localityDeadline {
                return .waitingForLocality(until: task.localityDeadline)
            }
        }

        if rules.isEmpty, noRoomShapes.contains(where: { task.needs.fits($0.needs) && task.portCount >= $0.portCount }) {
            return .noRoom
        }
        var frontier = self.frontier
        self.frontier = []
        let found = index.best(fitting: task.needs, portCount: task.portCount, frontier: &frontier) { agent in
            rules.isEmpty || satisfies(rules, group: group, agent: agent)
        }
        self.frontier = frontier
        guard let found else {
            if rules.isEmpty {
                if noRoomShapes.count == Self.rememberedNoRoomShapes { noRoomShapes.removeFirst() }
                noRoomShapes.append((task.needs, task.portCount))
            }
            return .noRoom
        }
        return .placed(commit(task, group: group, agent: found))
    }

    /// Gives `agent`'s resources and ports to `task` and counts it toward its group.
    mutating func commit(_ task: PlacementTask, group: Int, agent: Int) -> PlacementDecision {
        agents[agent].available -= task.needs
        let ports = agents[agent].takePorts(task.portCount)
        index.update(agent: agent, to: agents[agent].leaf)
        recordTask(group: group, agent: agent)
        let isNodeLocal = agents[agent].info.dataNodeId.map { task.preferredDataNodes.contains($0) } ?? false
        return PlacementDecision(taskId: task.id, agentId: agents[agent].info.id, ports: ports, isNodeLocal: isNodeLocal)
    }
}
