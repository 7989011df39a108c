/// An amount of an agent's resources, or what a task asks for: Mesos' scalar resources `cpus`,
/// `mem` and `disk` (megabytes). Ports are ranges and go separately (`PortRange`).
public struct Resources: Sendable, Hashable, Codable, CustomStringConvertible {
    public var cpus: Double
    public var memMB: Double
    public var diskMB: Double

    public init(cpus: Double = 0, memMB: Double = 0, diskMB: Double = 0) {
        self.cpus = cpus
        self.memMB = memMB
        self.diskMB = diskMB
    }

    public static let zero = Resources()

    /// Whether `self` (what is free) has room for `needs`. Amounts are compared with a small
    /// tolerance so that sums of fractional CPUs (0.1 + 0.2) free exactly what they took.
    public func fits(_ needs: Resources) -> Bool {
        needs.cpus <= cpus + Self.tolerance && needs.memMB <= memMB + Self.tolerance && needs.diskMB <= diskMB + Self.tolerance
    }

    public static func + (left: Resources, right: Resources) -> Resources {
        Resources(cpus: left.cpus + right.cpus, memMB: left.memMB + right.memMB, diskMB: left.diskMB + right.diskMB)
    }

    public static func - (left: Resources, right: Resources) -> Resources {
        Resources(cpus: left.cpus - right.cpus, memMB: left.memMB - right.memMB, diskMB: left.diskMB - right.diskMB)
    }

    public static func += (left: inout Resources, right: Resources) { left = left + right }
    public static func -= (left: inout Resources, right: Resources) { left = left - right }

    /// The largest fraction of `total` this amount takes of any one resource: its dominant share
    /// (Dominant Resource Fairness). Resources the cluster has none of count as zero.
    public func dominantShare(of total: Resources) -> Double {
        var share = 0.0
        if total.cpus > 0 { share = max(share, cpus / total.cpus) }
        if total.memMB > 0 { share = max(share, memMB / total.memMB) }
        if total.diskMB > 0 { share = max(share, diskMB / total.diskMB) }
        return share
    }

    public var description: String {
        "cpus=\(Self.format(cpus)) mem=\(Self.format(memMB))MB disk=\(Self.format(diskMB))MB"
    }

    static let tolerance = 1e-9

    static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int64(value)) : String(value)
    }
}

/// An inclusive range of ports an agent offers (Mesos `ports:[31000-32000]`).
public struct PortRange: Sendable, Hashable, Codable, CustomStringConvertible {
    public var begin: Int
    public var end: Int

    public init(_ begin: Int, _ end: Int) {
        precondition(begin <= end, "a port range ends after it begins")
        self.begin = begin
        self.end = end
    }

    public var count: Int { end - begin + 1 }
    public func contains(_ port: Int) -> Bool { port >= begin && port <= end }
    public var description: String { "\(begin)-\(end)" }

    /// Parses `31000-32000` (or one port, `8080`).
    public init?(parsing text: Substring) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2,
              let begin = Int(parts[0].trimmingSpaces), let end = Int(parts[parts.count - 1].trimmingSpaces),
              begin >= 0, begin <= end, end <= 65535
        else { return nil }
        self.init(begin, end)
    }
}

extension [PortRange] {
    /// These ranges without `taken` ports: what is left to give out, in order.
    public func subtracting(_ taken: Set<Int>) -> [PortRange] {
        guard !taken.isEmpty else { return self }
        var free: [PortRange] = []
        for range in self {
            var start = range.begin
            for port in taken.filter(range.contains).sorted() {
                if port > start { free.append(PortRange(start, port - 1)) }
                start = port + 1
            }
            if start <= range.end { free.append(PortRange(start, range.end)) }
        }
        return free
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var text = self
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return text
    }
}
