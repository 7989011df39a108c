import StrataCompute

/// Amounts an agent is told to offer, Mesos' `--resources` (`cpus:4;mem:8192;disk:20000`): each
/// one given replaces what the agent measures (`Agent.measuredResources`); those not given are
/// still measured. Giving more cpus than the machine has overcommits it, as on Mesos.
public struct ResourceOverrides: Sendable, Equatable {
    public var cpus: Double?
    public var memMB: Double?
    public var diskMB: Double?

    public init(cpus: Double? = nil, memMB: Double? = nil, diskMB: Double? = nil) {
        self.cpus = cpus
        self.memMB = memMB
        self.diskMB = diskMB
    }

    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Parses `name:amount` pairs separated by `;` (or `,`): cpus, mem (MB), disk (MB).
    public static func parse(_ text: String) throws(ParseError) -> ResourceOverrides {
        var overrides = ResourceOverrides()
        for part in text.split(whereSeparator: { $0 == ";" || $0 == "," }) {
            let pair = part.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2, let value = Double(pair[1]), value >= 0, value.isFinite else {
                throw ParseError(description: "'\(part)' is not name:amount (an amount of 0 or more)")
            }
            switch pair[0] {
            case "cpus": overrides.cpus = value
            case "mem": overrides.memMB = value
            case "disk": overrides.diskMB = value
            default: throw ParseError(description: "unknown resource '\(pair[0])' (cpus, mem, disk)")
            }
        }
        return overrides
    }

    /// `measured` with the given amounts in place of its own.
    public func applied(to measured: Resources) -> Resources {
        Resources(cpus: cpus ?? measured.cpus, memMB: memMB ?? measured.memMB, diskMB: diskMB ?? measured.diskMB)
    }
}
