// Marathon's constraints during placement. A constraint names a field (`hostname` or an agent
// attribute); an agent without that attribute fails every operator except UNLIKE, which it passes.
//
// - UNIQUE: no other task of the group on an agent with the same value.
// - CLUSTER with a value: only agents with that value. Without one: the value of the agent the
//   group's first task (running or placed) went to; before that, any agent with the field.
// - LIKE / UNLIKE: the regular expression must (must not) match the whole value.
// - GROUP_BY: only agents whose value has the fewest of the group's tasks among all the values
//   the cluster's agents have, so the group fills the values evenly. (Marathon's optional count
//   of values to expect is not needed: the placer knows every agent.)
// - MAX_PER n: at most n of the group's tasks per value.
//
// Values are interned per field (one small integer per distinct value), regular expressions are
// run once per distinct value, and a group's tasks are counted per value as they are placed, so
// checking an agent is a few array reads.

/// The distinct values one field takes across the agents.
struct PlacementFieldValues: Sendable {
    /// For each agent, the index of its value in `names`; -1 if it has no such attribute.
    var valueIdByAgent: [Int32]
    var names: [String]

    init(field: String, agents: [AgentInfo]) {
        var idByName: [String: Int32] = [:]
        var names: [String] = []
        valueIdByAgent = agents.map { agent in
            guard let value = agent.value(of: field) else { return -1 }
            if let id = idByName[value] { return id }
            let id = Int32(names.count)
            idByName[value] = id
            names.append(value)
            return id
        }
        self.names = names
    }
}

/// How many of one group's tasks are on each value of one field, and the smallest such count
/// (for GROUP_BY), kept up to date in constant time per task.
struct PlacementFieldCounts: Sendable {
    var counts: [Int32]
    /// `histogram[c]`: how many values have exactly `c` of the group's tasks.
    var histogram: [Int32]
    var minimum: Int32 = 0

    init(valueCount: Int) {
        counts = [Int32](repeating: 0, count: valueCount)
        histogram = [Int32(valueCount)]
    }

    mutating func add(value: Int32) {
        let before = Int(counts[Int(value)])
        counts[Int(value)] += 1
        histogram[before] -= 1
        if histogram.count == before + 1 { histogram.append(0) }
        histogram[before + 1] += 1
        if before == Int(minimum), histogram[before] == 0 { minimum += 1 }
    }
}

/// A group's tasks (running and placed) as constraints see them.
struct PlacementGroup: Sendable {
    var tasksByAgent: [Int: Int] = [:]
    /// The agent of the group's first task: CLUSTER without a value keeps the group on its value.
    var firstAgent: Int?
    /// Counts per value, by field slot, for the fields the group's constraints have named so far.
    var countsByField: [PlacementFieldCounts?] = []
}

struct PlacementPatternKey: Hashable, Sendable {
    var field: Int
    var pattern: String
}

/// A task's constraint resolved against the agents' fields, ready to check agents quickly.
enum PlacementRule: Sendable {
    case unique(field: Int)
    case cluster(field: Int, value: Int32)
    case hasField(Int)
    case matches(field: Int, pattern: Int, wanted: Bool)
    case groupBy(field: Int)
    case maxPer(field: Int, limit: Int32)
    /// No agent can satisfy it (a CLUSTER value no agent has, an invalid pattern or limit).
    case never

    var isNever: Bool {
        if case .never = self { true } else { false }
    }
}

extension Placer {
    /// Whether a whole value matches a pattern; nil if the pattern is not a regular expression.
    static func wholeMatcher(_ pattern: String) -> ((String) -> Bool)? {
        guard let regex = try? Regex(pattern) else { return nil }
        return { $0.wholeMatch(of: regex) != nil }
    }

    mutating func groupSlot(for name: String) -> Int {
        if let slot = groupSlotByName[name] { return slot }
        groupSlotByName[name] = groups.count
        groups.append(PlacementGroup())
        return groups.count - 1
    }

    mutating func fieldSlot(for name: String) -> Int {
        if let slot = fieldSlotByName[name] { return slot }
        fieldSlotByName[name] = fields.count
        fields.append(PlacementFieldValues(field: name, agents: agents.map(\.info)))
        return fields.count - 1
    }

    mutating func patternSlot(field: Int, pattern: String) -> Int {
        let key = PlacementPatternKey(field: field, pattern: pattern)
        if let slot = patternSlotByKey[key] { return slot }
        patternSlotByKey[key] = patternMatches.count
        patternMatches.append(Self.wholeMatcher(pattern).map { matcher in fields[field].names.map(matcher) })
        return patternMatches.count - 1
    }

    /// Starts counting `group`'s tasks per value of `field`, from the tasks it has so far.
    mutating func ensureCounts(group: Int, field: Int) {
        if groups[group].countsByField.count <= field {
            groups[group].countsByField.append(contentsOf: repeatElement(nil, count: field + 1 - groups[group].countsByField.count))
        }
        guard groups[group].countsByField[field] == nil else { return }
        var counts = PlacementFieldCounts(valueCount: fields[field].names.count)
        for (agent, tasks) in groups[group].tasksByAgent {
            let value = fields[field].valueIdByAgent[agent]
            guard value >= 0 else { continue }
            for _ in 0..<tasks { counts.add(value: value) }
        }
        groups[group].countsByField[field] = counts
    }

    /// Counts a task of `group` on `agent`.
    mutating func recordTask(group: Int, agent: Int) {
        groups[group].tasksByAgent[agent, default: 0] += 1
        if groups[group].firstAgent == nil { groups[group].firstAgent = agent }
        for field in groups[group].countsByField.indices where groups[group].countsByField[field] != nil {
            let value = fields[field].valueIdByAgent[agent]
            if value >= 0 { groups[group].countsByField[field]!.add(value: value) }
        }
    }

    mutating func prepareRules(_ constraints: [Constraint], group: Int) -> [PlacementRule] {
        constraints.map { constraint in
            let field = fieldSlot(for: constraint.field)
            switch constraint.operator {
            case .unique:
                ensureCounts(group: group, field: field)
                return .unique(field: field)
            case .cluster:
                if let value = constraint.value {
                    guard let id = fields[field].names.firstIndex(of: value) else { return .never }
                    return .cluster(field: field, value: Int32(id))
                }
                if let first = groups[group].firstAgent, fields[field].valueIdByAgent[first] >= 0 {
                    return .cluster(field: field, value: fields[field].valueIdByAgent[first])
                }
                // The first task went to an agent without the field: keep to the value most of
                // the group's tasks are on, if any.
                ensureCounts(group: group, field: field)
                let counts = groups[group].countsByField[field]!.counts
                if let most = counts.indices.max(by: { counts[$0] < counts[$1] }), counts[most] > 0 {
                    return .cluster(field: field, value: Int32(most))
                }
                return .hasField(field)
            case .like, .unlike:
                guard let pattern = constraint.value else { return .never }
                let slot = patternSlot(field: field, pattern: pattern)
                guard patternMatches[slot] != nil else { return .never }
                return .matches(field: field, pattern: slot, wanted: constraint.operator == .like)
            case .groupBy:
                ensureCounts(group: group, field: field)
                return .groupBy(field: field)
            case .maxPer:
                guard let limit = constraint.value.flatMap({ Int32($0) }), limit >= 1 else { return .never }
                ensureCounts(group: group, field: field)
                return .maxPer(field: field, limit: limit)
            }
        }
    }

    /// Whether `agent` satisfies every rule for a task of `group`, given the group's tasks so far.
    func satisfies(_ rules: [PlacementRule], group: Int, agent: Int) -> Bool {
        for rule in rules {
            switch rule {
            case .unique(let field):
                let value = fields[field].valueIdByAgent[agent]
                guard value >= 0, groups[group].countsByField[field]!.counts[Int(value)] == 0 else { return false }
            case .cluster(let field, let wanted):
                guard fields[field].valueIdByAgent[agent] == wanted else { return false }
            case .hasField(let field):
                guard fields[field].valueIdByAgent[agent] >= 0 else { return false }
            case .matches(let field, let pattern, let wanted):
                let value = fields[field].valueIdByAgent[agent]
                let matches = value >= 0 && patternMatches[pattern]![Int(value)]
                // An agent without the field matches nothing: it fails LIKE and passes UNLIKE.
                guard matches == wanted else { return false }
            case .groupBy(let field):
                let value = fields[field].valueIdByAgent[agent]
                let counts = groups[group].countsByField[field]!
                guard value >= 0, counts.counts[Int(value)] == counts.minimum else { return false }
            case .maxPer(let field, let limit):
                let value = fields[field].valueIdByAgent[agent]
                guard value >= 0, groups[group].countsByField[field]!.counts[Int(value)] < limit else { return false }
            case .never:
                return false
            }
        }
        return true
    }
}
