/// The agents' free resources in a complete binary tree (a segment tree): each leaf is one agent,
/// each inner node holds the largest free cpus, memory, disk and port count and the best load
/// score found anywhere below it.
///
/// Finding the least loaded agent that fits a task is then a best-first walk from the root: a
/// subtree is entered only if its maxima could hold the task, and subtrees are taken in order of
/// their best score, so the first acceptable leaf reached is the best acceptable agent. When some
/// agent fits, that costs about one root-to-leaf path (log2 of the agents, 13 steps for 5,000);
/// when nothing fits in some dimension the root already says so. Taking a placement updates one
/// leaf-to-root path.
struct PlacementAgentIndex: Sendable {
    struct Node: Sendable {
        var cpus: Double
        var memMB: Double
        var diskMB: Double
        var ports: Int
        /// The best (highest) load score of any agent below: see `score(available:total:)`.
        var score: Double

        /// A node under which no agent exists: it fits nothing.
        static let empty = Node(cpus: -1, memMB: -1, diskMB: -1, ports: -1, score: -.infinity)

        func mightFit(_ needs: Resources, portCount: Int) -> Bool {
            needs.cpus <= cpus + Resources.tolerance && needs.memMB <= memMB + Resources.tolerance
                && needs.diskMB <= diskMB + Resources.tolerance && portCount <= ports
        }

        static func combining(_ left: Node, _ right: Node) -> Node {
            Node(
                cpus: max(left.cpus, right.cpus), memMB: max(left.memMB, right.memMB), diskMB: max(left.diskMB, right.diskMB),
                ports: max(left.ports, right.ports), score: max(left.score, right.score))
        }
    }

    /// A subtree waiting to be walked, ordered by its best score, then by its first agent, so that
    /// among equally loaded agents the earliest one given wins. (Not by node number: that would
    /// put every shallower subtree of equal score first and walk a cluster of idle agents
    /// breadth-first, all of it.)
    struct Candidate: Sendable, HeapOrdered {
        var score: Double
        var node: Int
        /// The agent at the subtree's left edge; subtrees on the frontier never overlap.
        var firstAgent: Int

        func precedes(_ other: Candidate) -> Bool {
            score > other.score || (score == other.score && firstAgent < other.firstAgent)
        }
    }

    func candidate(_ node: Int) -> Candidate {
        // A node at depth d covers leafBase >> d leaves; its first leaf is node << (levels - d).
        let depth = Int.bitWidth - 1 - node.leadingZeroBitCount
        let leftmost = node << (leafBase.trailingZeroBitCount - depth)
        return Candidate(score: nodes[node].score, node: node, firstAgent: leftmost - leafBase)
    }

    /// The index of the first leaf; leaves are `leafBase ..< leafBase + agentCount`.
    let leafBase: Int
    let agentCount: Int
    private(set) var nodes: [Node]

    init(leaves: [Node]) {
        var base = 1
        while base < leaves.count { base *= 2 }
        leafBase = base
        agentCount = leaves.count
        nodes = [Node](repeating: .empty, count: 2 * base)
        for (agent, leaf) in leaves.enumerated() { nodes[base + agent] = leaf }
        var node = base - 1
        while node >= 1 {
            nodes[node] = .combining(nodes[2 * node], nodes[2 * node + 1])
            node -= 1
        }
    }

    /// How lightly loaded an agent is: the smallest free fraction of any resource it has (so one
    /// that is busy in memory but idle in cpus counts as busy). 1 is idle, 0 is full in something.
    static func score(available: Resources, total: Resources) -> Double {
        var score = Double.infinity
        if total.cpus > 0 { score = min(score, available.cpus / total.cpus) }
        if total.memMB > 0 { score = min(score, available.memMB / total.memMB) }
        if total.diskMB > 0 { score = min(score, available.diskMB / total.diskMB) }
        return score == .infinity ? 0 : score
    }

    /// Whether any agent at all might hold `needs` and `portCount` ports (each dimension alone).
    func anyMightFit(_ needs: Resources, portCount: Int) -> Bool {
        agentCount > 0 && nodes[1].mightFit(needs, portCount: portCount)
    }

    /// Sets one agent's free amounts and score and brings the maxima above it up to date.
    mutating func update(agent: Int, to leaf: Node) {
        var node = leafBase + agent
        nodes[node] = leaf
        node /= 2
        while node >= 1 {
            let combined = Node.combining(nodes[2 * node], nodes[2 * node + 1])
            nodes[node] = combined
            node /= 2
        }
    }

    /// The agent with the best score among those with room for `needs` and `portCount` ports for
    /// which `accept` is true, or nil. `frontier` is scratch space the caller keeps between calls
    /// so that a search allocates nothing.
    func best(
        fitting needs: Resources, portCount: Int, frontier: inout [Candidate], accept: (Int) -> Bool
    ) -> Int? {
        guard anyMightFit(needs, portCount: portCount) else { return nil }
        frontier.removeAll(keepingCapacity: true)
        var current: Int? = 1
        while true {
            guard var node = current ?? frontier.heapPop()?.node else { return nil }
            current = nil
            // Go down the better child directly while it is at least as good as anything waiting;
            // the other child, if it might fit, waits on the frontier.
            while node < leafBase {
                let left = 2 * node, right = left + 1
                let leftFits = nodes[left].mightFit(needs, portCount: portCount)
                let rightFits = nodes[right].mightFit(needs, portCount: portCount)
                var next: Candidate
                if leftFits && rightFits {
                    let leftCandidate = candidate(left)
                    let rightCandidate = candidate(right)
                    let (better, worse) = leftCandidate.precedes(rightCandidate) ? (leftCandidate, rightCandidate) : (rightCandidate, leftCandidate)
                    frontier.heapPush(worse)
                    next = better
                } else if leftFits {
                    next = candidate(left)
                } else if rightFits {
                    next = candidate(right)
                } else {
                    break
                }
                if let waiting = frontier.first, waiting.precedes(next) {
                    frontier.heapPush(next)
                    next = frontier.heapPop()!
                }
                node = next.node
            }
            // A leaf whose own amounts fit: its agent has room; ask about the rest.
            if node >= leafBase, nodes[node].mightFit(needs, portCount: portCount), accept(node - leafBase) {
                return node - leafBase
            }
        }
    }
}
