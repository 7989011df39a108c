import Foundation
import Synchronization

/// Request counts, latencies and bytes moved by one HTTP server, in Prometheus' text format
/// (written by hand: a few counters and one histogram do not need a metrics library).
public final class HTTPMetrics: Sendable {
    /// Latency histogram bucket bounds, in seconds.
    static let bucketBounds: [Double] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120]
    /// Distinct operation names tracked; anything beyond (a client sending made-up ops) is
    /// counted as `other`, so the exposition stays bounded.
    static let maximumOperations = 64

    struct Operation {
        var countByStatus: [Int: UInt64] = [:]
        var buckets = [UInt64](repeating: 0, count: HTTPMetrics.bucketBounds.count)
        var count: UInt64 = 0
        var sumSeconds: Double = 0
    }

    private let operations = Mutex<[String: Operation]>([:])
    private let bytesRead = Atomic<UInt64>(0)
    private let bytesWritten = Atomic<UInt64>(0)

    public init() {}

    func record(operation name: String, status: Int, seconds: Double) {
        operations.withLock { operations in
            let key = operations[name] != nil || operations.count < Self.maximumOperations ? name : "other"
            var operation = operations[key] ?? Operation()
            operation.countByStatus[status, default: 0] += 1
            operation.count += 1
            operation.sumSeconds += seconds
            for (index, bound) in Self.bucketBounds.enumerated() where seconds <= bound { operation.buckets[index] += 1 }
            operations[key] = operation
        }
    }

    func addBytesRead(_ count: Int) { bytesRead.add(UInt64(count), ordering: .relaxed) }
    func addBytesWritten(_ count: Int) { bytesWritten.add(UInt64(count), ordering: .relaxed) }

    /// A gauge or counter a server adds to its exposition.
    public struct Sample: Sendable {
        var name: String
        var help: String
        var type: String
        var labels: String
        var value: Double

        public init(name: String, help: String, type: String = "gauge", labels: String = "", value: Double) {
            self.name = name
            self.help = help
            self.type = type
            self.labels = labels
            self.value = value
        }
    }

    /// The exposition: HTTP metrics under `prefix`, then `samples` (grouped by name).
    func exposition(prefix: String, samples: [Sample]) -> String {
        var text = ""
        let snapshot = operations.withLock { $0 }
        let names = snapshot.keys.sorted()
        text += "# HELP \(prefix)_requests_total WebHDFS requests by operation and HTTP status.\n"
        text += "# TYPE \(prefix)_requests_total counter\n"
        for name in names {
            for (status, count) in snapshot[name]!.countByStatus.sorted(by: { $0.key < $1.key }) {
                text += "\(prefix)_requests_total{op=\"\(name)\",code=\"\(status)\"} \(count)\n"
            }
        }
        text += "# HELP \(prefix)_request_duration_seconds Time to answer a request (to the response head for streamed bodies).\n"
        text += "# TYPE \(prefix)_request_duration_seconds histogram\n"
        for name in names {
            let operation = snapshot[name]!
            for (index, bound) in Self.bucketBounds.enumerated() {
                text += "\(prefix)_request_duration_seconds_bucket{op=\"\(name)\",le=\"\(Self.format(bound))\"} \(operation.buckets[index])\n"
            }
            text += "\(prefix)_request_duration_seconds_bucket{op=\"\(name)\",le=\"+Inf\"} \(operation.count)\n"
            text += "\(prefix)_request_duration_seconds_sum{op=\"\(name)\"} \(Self.format(operation.sumSeconds))\n"
            text += "\(prefix)_request_duration_seconds_count{op=\"\(name)\"} \(operation.count)\n"
        }
        text += "# HELP \(prefix)_bytes_read_total File bytes sent to WebHDFS clients.\n"
        text += "# TYPE \(prefix)_bytes_read_total counter\n"
        text += "\(prefix)_bytes_read_total \(bytesRead.load(ordering: .relaxed))\n"
        text += "# HELP \(prefix)_bytes_written_total File bytes received from WebHDFS clients.\n"
        text += "# TYPE \(prefix)_bytes_written_total counter\n"
        text += "\(prefix)_bytes_written_total \(bytesWritten.load(ordering: .relaxed))\n"
        var described: Set<String> = []
        for sample in samples {
            if described.insert(sample.name).inserted {
                text += "# HELP \(sample.name) \(sample.help)\n# TYPE \(sample.name) \(sample.type)\n"
            }
            text += "\(sample.name)\(sample.labels.isEmpty ? "" : "{\(sample.labels)}") \(Self.format(sample.value))\n"
        }
        return text
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
