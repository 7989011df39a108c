import Foundation
import StrataCore

/// HDFS's retry cache for ClientProtocol's at-most-once methods (`create`, `append`, `delete`,
/// `rename`, `rename2`, `concat`, `updatePipeline`): a Hadoop client that lost its connection or
/// timed out calls again with the same client id and call id, and must get the first call's
/// answer rather than run it twice (a retried `create` would otherwise fail with
/// FileAlreadyExistsException on the file it just created; a retried `delete` would answer false).
///
/// The decisions only: keyed by (client id, call id), a call is run, or waits for the same call
/// still running, or gets the answer it got. Only successes are kept (a failed call runs again
/// when retried, as in HDFS), for `expiryMs` (HDFS's `dfs.namenode.retrycache.expirytime.millis`,
/// 10 minutes) and at most `capacity` of them, oldest dropped first.
struct HadoopRetryCache<Running: Sendable, Answer: Sendable>: Sendable {
    struct Key: Hashable, Sendable {
        var clientId: Data
        var callId: Int32
    }

    enum Lookup {
        /// Not seen (or its earlier run failed, or expired): run it, and `start` it here.
        case run
        /// The same call is running: wait for it.
        case wait(Running)
        /// The same call succeeded: its answer.
        case answered(Answer)
    }

    static var atMostOnceMethods: Set<String> { ["create", "append", "delete", "rename", "rename2", "concat", "updatePipeline"] }

    let expiryMs: Int64
    let capacity: Int
    private enum Entry {
        case running(Running)
        case answered(Answer, expires: MonotonicInstant)
    }
    private var entries: [Key: Entry] = [:]
    /// Answered keys in the order they expire (oldest first), from `head` on.
    private var expiring: [(key: Key, expires: MonotonicInstant)] = []
    private var head = 0

    init(expiryMs: Int64 = 600_000, capacity: Int = 100_000) {
        self.expiryMs = expiryMs
        self.capacity = capacity
    }

    /// Answers kept now.
    var answeredCount: Int { expiring.count - head }

    mutating func lookup(_ key: Key, now: MonotonicInstant) -> Lookup {
        dropExpired(now: now)
        switch entries[key] {
        case .running(let running)?: return .wait(running)
        case .answered(let answer, _)?: return .answered(answer)
        case nil: return .run
        }
    }

    mutating func start(_ key: Key, running: Running) {
        entries[key] = .running(running)
    }

    /// The call ended: with its answer, kept for retries, or nil when it failed.
    mutating func finish(_ key: Key, answer: Answer?, now: MonotonicInstant) {
        guard let answer else {
            entries[key] = nil
            return
        }
        let expires = now.advanced(byMilliseconds: expiryMs)
        entries[key] = .answered(answer, expires: expires)
        expiring.append((key, expires))
        while answeredCount > capacity { dropOldest() }
        dropExpired(now: now)
    }

    private mutating func dropExpired(now: MonotonicInstant) {
        while head < expiring.count, expiring[head].expires <= now { dropOldest() }
    }

    private mutating func dropOldest() {
        let oldest = expiring[head]
        head += 1
        // A key answered again later (after an expiry) has a newer entry: that one stays.
        if case .answered(_, let expires)? = entries[oldest.key], expires == oldest.expires { entries[oldest.key] = nil }
        if head > 1024 && head * 2 > expiring.count {
            expiring.removeFirst(head)
            head = 0
        }
    }
}
