import Dispatch
import Logging
import StrataBlockFormat
import StrataCore
import StrataWire
import Synchronization

/// A data node's block scanner (HDFS's `VolumeScanner`): a background task that reads every
/// finished replica and verifies every frame (header, stored and raw CRC32C, decompression), at
/// most `scanBytesPerSecond` stored bytes a second. A damaged replica is reported to the name
/// node, which stops listing it, copies the block from a good replica and then deletes it.
///
/// Each replica is scanned once, then again no sooner than `scanPeriodMs` later (or as soon as
/// its generation stamp changes: an append or a recovery rewrote it). A replica found corrupt is
/// not scanned again; it is reported again every block report interval while this node still
/// holds it, so a name node that restarted (and forgot) learns of it again.
///
/// The scanner reads in the node's I/O thread pool, never on an event loop, and a batch is at
/// most `maximumBatchBytes`, so it never holds a pool thread for long.
public final class BlockScanner: Sendable {
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let bytes = Atomic<Int>(0)
    private let replicas = Atomic<Int>(0)
    private let corruptFinds = Atomic<Int>(0)
    private let passes = Atomic<Int>(0)

    /// Stored bytes (frame headers and payloads) read and verified since the node started.
    public var bytesScanned: Int { bytes.load(ordering: .relaxed) }
    /// Replicas verified to their end (good or damaged).
    public var replicasScanned: Int { replicas.load(ordering: .relaxed) }
    /// Replicas found damaged (each counted once, however often it is reported again).
    public var corruptReplicasFound: Int { corruptFinds.load(ordering: .relaxed) }
    /// Passes completed: a pass scans every replica that was due when it started.
    public var passesCompleted: Int { passes.load(ordering: .relaxed) }
    /// Whether the scanner task runs (it does not when the rate is 0).
    public var isRunning: Bool { task.withLock { $0 != nil } }

    /// Most stored bytes one trip to the thread pool reads.
    static let maximumBatchBytes = 1 << 20
    /// How long an idle scanner waits before it lists the store again, to find replicas appended
    /// to or recovered: a millisecond per replica, between 1 and 30 s, so listing costs about a
    /// thousand replicas a second at most.
    static func idleRelistIntervalMs(replicaCount: Int) -> Int64 {
        min(30_000, max(1_000, Int64(replicaCount)))
    }
    /// New and deleted replicas change the store's count, which an idle scanner watches; it lists
    /// again that soon at the earliest (a tenth of a millisecond per replica, at least 200 ms), so
    /// a node taking writes all the time is not listed over and over.
    static func idleRelistOnChangeMs(replicaCount: Int) -> Int64 {
        min(idleRelistIntervalMs(replicaCount: replicaCount), max(idlePollIntervalMs, Int64(replicaCount / 10)))
    }
    static let idlePollIntervalMs: Int64 = 200
    /// How soon a replica that could not be read (an I/O error) is tried again.
    static let unreadableRetryMs: Int64 = 30_000

    init() {}

    func start(_ node: DataNode) {
        guard node.configuration.scanBytesPerSecond > 0 else { return }
        task.withLock { task in
            guard task == nil else { return }
            task = Task { [self] in await self.run(node) }
        }
    }

    /// Asks the scanner to stop; it makes no new reads or reports after this.
    func cancel() {
        task.withLock { $0?.cancel() }
    }

    /// Stops the scanner and waits for it: no scanner read is in flight once this returns.
    func stop() async {
        let running = task.withLock { task -> Task<Void, Never>? in
            defer { task = nil }
            return task
        }
        running?.cancel()
        await running?.value
    }

    // MARK: - The loop

    /// What scanning one replica found.
    enum Outcome: Equatable {
        case good
        case corrupt(String)
        /// Deleted, appended to or recovered since it was listed: not judged this time.
        case changed
        /// Could not be read for a reason other than its content (an I/O error): tried next pass.
        case unreadable(String)
    }

    private func run(_ node: DataNode) async {
        let configuration = node.configuration
        var limiter = ScanRateLimiter(bytesPerSecond: configuration.scanBytesPerSecond)
        var schedule = ScanSchedule(periodMs: configuration.scanPeriodMs)
        let decoder = FrameDecoder()
        node.logger.info("block scanner started", metadata: [
            "bytesPerSecond": "\(configuration.scanBytesPerSecond)", "periodMs": "\(configuration.scanPeriodMs)"])
        while !Task.isCancelled {
            let finished = Self.finishedReplicas(node.store)
            schedule.retain(finished)
            for replica in schedule.corruptToReport(finished, now: Self.nowMs(node), intervalMs: configuration.blockReportIntervalMs) {
                guard !Task.isCancelled else { return }
                await node.reportCorrupt(replica.id, reason: replica.reason)
                schedule.recordReported(replica.id, now: Self.nowMs(node))
            }
            let due = schedule.due(finished, now: Self.nowMs(node))
            if due.isEmpty {
                let now = Self.nowMs(node)
                await idle(
                    node, until: min(schedule.nextDueMs(finished) ?? .max, now + Self.idleRelistIntervalMs(replicaCount: finished.count)),
                    orOnChangeAfter: now + Self.idleRelistOnChangeMs(replicaCount: finished.count))
                continue
            }
            for replica in due {
                guard !Task.isCancelled else { return }
                let outcome = await scan(replica, node: node, limiter: &limiter, decoder: decoder)
                switch outcome {
                case .good:
                    replicas.add(1, ordering: .relaxed)
                    schedule.recordScanned(replica, now: Self.nowMs(node))
                case .corrupt(let reason):
                    schedule.recordCorrupt(replica, reason: reason, now: Self.nowMs(node))
                    guard !Task.isCancelled else { return }
                    await node.reportCorrupt(replica.id, reason: "block scanner: " + reason)
                    replicas.add(1, ordering: .relaxed)
                    corruptFinds.add(1, ordering: .relaxed)
                case .changed:
                    // Its new state (if any) is listed under a new generation stamp and is due at
                    // once; this keeps a replica that looks changed every time from being retried
                    // without pause.
                    schedule.recordScanned(replica, now: Self.nowMs(node))
                case .unreadable(let reason):
                    // Not judged: tried again after a while rather than at once.
                    schedule.recordDeferred(replica, untilMs: Self.nowMs(node) + Self.unreadableRetryMs)
                    node.logger.warning("block scanner could not read replica", metadata: ["block": "\(replica.id)", "error": "\(reason)"])
                }
            }
            if !Task.isCancelled { passes.add(1, ordering: .relaxed) }
        }
    }

    /// Sleeps until `wakeMs`, or from `changeMs` on, as soon as replicas are added or deleted.
    private func idle(_ node: DataNode, until wakeMs: Int64, orOnChangeAfter changeMs: Int64) async {
        let count = node.store.count
        while !Task.isCancelled && Self.nowMs(node) < wakeMs && (Self.nowMs(node) < changeMs || node.store.count == count) {
            let step = min(Self.idlePollIntervalMs, max(1, wakeMs - Self.nowMs(node)))
            try? await node.clock.sleep(milliseconds: step)
        }
    }

    /// Verifies every frame of one replica, reading at most as fast as the limiter allows.
    private func scan(
        _ replica: ScanSchedule.Replica, node: DataNode, limiter: inout ScanRateLimiter, decoder: FrameDecoder
    ) async -> Outcome {
        let store = node.store
        let id = replica.id
        let snapshot: ReplicaSnapshot
        do {
            snapshot = try await node.threadPool.runIfActive { try store.openForReading(id) }
        } catch let error as BlockFormatError where error.isCorruption {
            return await confirm(.corrupt(error.description), replica, node: node)
        } catch {
            return await confirm(.unreadable("\(error)"), replica, node: node)
        }
        let reader = snapshot.reader
        guard reader.header.generationStamp == replica.generationStamp, reader.isFinished else { return .changed }
        let frameCount = reader.frameCount
        var index = 0
        while index < frameCount {
            // A batch: whole frames up to the limiter's burst (at least one frame).
            var end = index
            var batchBytes = 0
            let batchLimit = min(Self.maximumBatchBytes, limiter.burstBytes)
            while end < frameCount {
                let length = reader.frameLength(ofFrame: end)
                if end > index && batchBytes + length > batchLimit { break }
                batchBytes += length
                end += 1
            }
            while true {
                let wait = limiter.reserve(batchBytes, now: Self.nowSeconds(node))
                if wait <= 0 { break }
                do {
                    try await node.clock.sleep(for: .seconds(wait))
                } catch {
                    return .changed
                }
            }
            let first = index
            let last = end
            let failure: BlockFormatError?
            do {
                failure = try await node.threadPool.runIfActive { Self.verify(snapshot, frames: first..<last, decoder: decoder) }
            } catch {
                // The pool is shutting down.
                return .changed
            }
            bytes.add(batchBytes, ordering: .relaxed)
            if let failure {
                return await confirm(failure.isCorruption ? .corrupt(failure.description) : .unreadable(failure.description), replica, node: node)
            }
            index = end
        }
        return await confirm(.good, replica, node: node)
    }

    /// A finding counts only if the replica is still the one that was listed: writers that
    /// rewrite a replica in place (append, recovery) change its generation stamp under the file
    /// lock, so looking under that lock sees their change once they are done.
    /// The lock is taken in the thread pool: a writer may hold it for a packet's disk writes.
    private func confirm(_ outcome: Outcome, _ replica: ScanSchedule.Replica, node: DataNode) async -> Outcome {
        let store = node.store
        let current = try? await node.threadPool.runIfActive { store.withFileLock(replica.id) { store.replica(replica.id) } }
        guard let current, current.isFinalized, current.generationStamp == replica.generationStamp else { return .changed }
        return outcome
    }

    /// Decodes frames of a replica, checking every checksum; the first failure, or nil.
    static func verify(_ snapshot: ReplicaSnapshot, frames: Range<Int>, decoder: FrameDecoder) -> BlockFormatError? {
        let reader = snapshot.reader
        var raw = [UInt8](repeating: 0, count: reader.rawFrameSize)
        for index in frames {
            do throws(BlockFormatError) {
                let frame = try snapshot.storedFrame(index)
                let expected = reader.rawLength(ofFrame: index)
                let header = try frame.withBytes { (stored) throws(BlockFormatError) in
                    try raw.withMutableBytes { (output) throws(BlockFormatError) in
                        try decoder.decode(frame: stored, maximumRawLength: reader.rawFrameSize, into: output)
                    }
                }
                if Int(header.rawLength) != expected {
                    throw BlockFormatError(
                        .invalidFrameHeader, "frame holds \(header.rawLength) raw bytes, the block layout needs \(expected)",
                        path: reader.path, blockId: reader.header.blockId, frameIndex: index, fileOffset: reader.frameOffsets[index])
                }
            } catch {
                var located = error
                located.path = located.path ?? reader.path
                located.blockId = located.blockId ?? reader.header.blockId
                located.frameIndex = located.frameIndex ?? index
                located.fileOffset = located.fileOffset ?? reader.frameOffsets[index]
                return located
            }
        }
        return nil
    }

    static func finishedReplicas(_ store: BlockStore) -> [ScanSchedule.Replica] {
        store.report().compactMap { reported in
            reported.state == .finalized
                ? ScanSchedule.Replica(id: reported.block.blockID, generationStamp: reported.block.generationStamp) : nil
        }
    }

    /// Milliseconds on the node clock's monotonic time line.
    static func nowMs(_ node: DataNode) -> Int64 { node.clock.now.milliseconds(since: .zero) }
    static func nowSeconds(_ node: DataNode) -> Double { Double(node.clock.now.nanoseconds) / 1e9 }
}

extension DataNode {
    /// Starts the block scanner when `scanBytesPerSecond` is above 0.
    func startScanner() {
        scanner.start(self)
    }
}

/// A token bucket over stored bytes read. Tokens accrue at `bytesPerSecond` from the first
/// request, up to `burstBytes`; a request waits until the bucket holds it (or, for a request
/// larger than the bucket, a full bucket) and then takes it, possibly into debt. So the bytes
/// granted within `t` seconds of the first request never exceed `bytesPerSecond * t` plus the
/// amount by which one request exceeds `burstBytes` (for the scanner: at most one frame).
public struct ScanRateLimiter: Sendable {
    public let bytesPerSecond: Int
    /// What may be read at once after an idle time: a tenth of a second's worth, as HDFS's
    /// throttler measures in periods of 100 ms.
    public let burstBytes: Int
    private var tokens: Double = 0
    private var lastSeconds: Double?

    public init(bytesPerSecond: Int) {
        precondition(bytesPerSecond > 0, "a scan rate limiter needs a positive rate")
        self.bytesPerSecond = bytesPerSecond
        burstBytes = max(1, bytesPerSecond / 10)
    }

    /// Seconds to wait before `bytes` may be read; 0 when they may be read now, in which case
    /// they are taken from the bucket.
    public mutating func reserve(_ bytes: Int, now: Double) -> Double {
        if let lastSeconds {
            tokens = min(Double(burstBytes), tokens + max(0, now - lastSeconds) * Double(bytesPerSecond))
        }
        lastSeconds = now
        let needed = Double(min(bytes, burstBytes))
        // Half a byte of slack: waiting exactly the time returned must always be enough, however
        // the floating-point sums round.
        if tokens + 0.5 >= needed {
            tokens -= Double(bytes)
            return 0
        }
        return (needed - tokens) / Double(bytesPerSecond)
    }
}

/// Which replicas the scanner reads next, and which it has found damaged. Pure logic: the
/// scanner hands it the finished replicas and the time.
struct ScanSchedule {
    struct Replica: Hashable {
        var id: UInt64
        var generationStamp: UInt64
    }

    struct Scanned {
        var generationStamp: UInt64
        /// When it may be scanned again.
        var dueAtMs: Int64
    }

    struct Corrupt {
        var generationStamp: UInt64
        var reason: String
        var reportedAtMs: Int64
    }

    /// A replica is scanned again no sooner than this after its last scan.
    let periodMs: Int64
    private(set) var scanned: [UInt64: Scanned] = [:]
    private(set) var corrupt: [UInt64: Corrupt] = [:]

    init(periodMs: Int64) {
        self.periodMs = periodMs
    }

    /// Replicas to scan now, in order: never scanned (or rewritten since) first, by block id,
    /// then the longest unscanned. Replicas found corrupt are not scanned again.
    func due(_ finished: [Replica], now: Int64) -> [Replica] {
        var fresh: [Replica] = []
        var stale: [(Replica, Int64)] = []
        for replica in finished where corrupt[replica.id]?.generationStamp != replica.generationStamp {
            guard let last = scanned[replica.id], last.generationStamp == replica.generationStamp else {
                fresh.append(replica)
                continue
            }
            if now >= last.dueAtMs { stale.append((replica, last.dueAtMs)) }
        }
        fresh.sort { $0.id < $1.id }
        stale.sort { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0.id < $1.0.id) }
        return fresh + stale.map(\.0)
    }

    /// When the next of `finished` falls due; nil when none will (all corrupt, or none at all).
    func nextDueMs(_ finished: [Replica]) -> Int64? {
        var next: Int64?
        for replica in finished where corrupt[replica.id]?.generationStamp != replica.generationStamp {
            guard let last = scanned[replica.id], last.generationStamp == replica.generationStamp else { return .min }
            next = min(next ?? last.dueAtMs, last.dueAtMs)
        }
        return next
    }

    mutating func recordScanned(_ replica: Replica, now: Int64) {
        recordDeferred(replica, untilMs: now.addingReportingOverflow(periodMs).overflow ? .max : now + periodMs)
    }

    /// Not scanned again before `untilMs`.
    mutating func recordDeferred(_ replica: Replica, untilMs: Int64) {
        scanned[replica.id] = Scanned(generationStamp: replica.generationStamp, dueAtMs: untilMs)
        corrupt[replica.id] = nil
    }

    mutating func recordCorrupt(_ replica: Replica, reason: String, now: Int64) {
        scanned[replica.id] = Scanned(generationStamp: replica.generationStamp, dueAtMs: .max)
        corrupt[replica.id] = Corrupt(generationStamp: replica.generationStamp, reason: reason, reportedAtMs: now)
    }

    mutating func recordReported(_ id: UInt64, now: Int64) {
        corrupt[id]?.reportedAtMs = now
    }

    /// Corrupt replicas still held, whose last report is `intervalMs` old: to report again.
    func corruptToReport(_ finished: [Replica], now: Int64, intervalMs: Int64) -> [(id: UInt64, reason: String)] {
        finished.compactMap { replica in
            guard let entry = corrupt[replica.id], entry.generationStamp == replica.generationStamp,
                now - entry.reportedAtMs >= intervalMs
            else { return nil }
            return (replica.id, "block scanner: " + entry.reason)
        }
    }

    /// Forgets replicas no longer held, so the records stay as large as the store.
    mutating func retain(_ finished: [Replica]) {
        guard scanned.count + corrupt.count > 0 else { return }
        let held = Set(finished.map(\.id))
        scanned = scanned.filter { held.contains($0.key) }
        corrupt = corrupt.filter { held.contains($0.key) }
    }
}
