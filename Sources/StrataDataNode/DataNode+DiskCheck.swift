import Foundation
import Glibc
import Logging
import NIOPosix
import StrataWire
import Synchronization

/// Watches the volume that holds a data node's replicas. A probe creates a small file in the
/// replica directory, writes it, fsyncs it, reads it back and removes it (HDFS's disk checker
/// does the same); an error other than "no space" means the volume failed (read-only, I/O
/// errors, directory gone). The name node places no new replicas on a node whose volume failed
/// and copies its blocks elsewhere; the node keeps serving what it can still read. A probe that
/// succeeds again puts the node back in service.
///
/// Probes run on the node's I/O thread pool, never on the heartbeat path: a heartbeat reports
/// the last result, and a probe that hangs (a dead disk) is reported as a failure once it has
/// run for `probeTimeoutMs`.
final class VolumeChecker: Sendable {
    struct Status: Equatable, Sendable {
        var failed = false
        /// What failed, for the name node and the operator.
        var reason = ""
        /// The last probe ran out of space: the volume works but takes nothing more.
        var full = false
    }

    private struct State {
        var status = Status()
        var probeStartedMs: Int64?
        var lastProbeMs: Int64 = 0
    }

    let directory: String
    let probeIntervalMs: Int64
    let probeTimeoutMs: Int64
    private let logger: Logger
    private let state = Mutex(State())

    /// The probe file, next to the replica directories (the block store ignores other names).
    var probePath: String { directory + "/current/volume-check" }

    init(directory: String, probeIntervalMs: Int64, probeTimeoutMs: Int64 = 30_000, logger: Logger) {
        self.directory = directory
        self.probeIntervalMs = probeIntervalMs
        self.probeTimeoutMs = probeTimeoutMs
        self.logger = logger
    }

    /// What is known of the volume at `now`; starts a probe on `pool` when one is due.
    func status(now: Int64, pool: NIOThreadPool) -> Status {
        let (status, startProbe) = state.withLock { state -> (Status, Bool) in
            if let started = state.probeStartedMs {
                guard now - started > probeTimeoutMs else { return (state.status, false) }
                var hung = state.status
                hung.failed = true
                hung.reason = "the volume check of \(directory) has not finished within \(probeTimeoutMs / 1000) s"
                return (hung, false)
            }
            guard now - state.lastProbeMs >= probeIntervalMs else { return (state.status, false) }
            state.probeStartedMs = now
            return (state.status, true)
        }
        if startProbe {
            let directory = self.directory
            let path = probePath
            Task {
                let result = (try? await pool.runIfActive { Self.probe(directory: directory, path: path) })
                    ?? Status(failed: true, reason: "the volume check of \(directory) could not run", full: false)
                self.record(result, startedMs: now)
            }
        }
        return status
    }

    private func record(_ result: Status, startedMs: Int64) {
        let previous = state.withLock { state -> Status in
            let previous = state.status
            state.status = result
            state.probeStartedMs = nil
            state.lastProbeMs = startedMs
            return previous
        }
        if result.failed && !previous.failed {
            logger.error("data volume failed: the name node will place no new replicas here", metadata: [
                "directory": "\(directory)", "reason": "\(result.reason)"])
        } else if !result.failed && previous.failed {
            logger.notice("data volume works again", metadata: ["directory": "\(directory)"])
        }
        if result.full && !previous.full {
            logger.warning("data volume is full", metadata: ["directory": "\(directory)"])
        }
    }

    /// One check of the volume: the replica directories are usable, and a small file can be
    /// created, written, synced, read back and removed.
    static func probe(directory: String, path: String) -> Status {
        for subdirectory in [directory + "/current/finalized", directory + "/current/rbw"] {
            if access(subdirectory, R_OK | W_OK | X_OK) != 0 { return failure("access", subdirectory, errno) }
        }
        let pattern = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let descriptor = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if descriptor < 0 { return failure("create", path, errno) }
        var outcome = Status()
        let written = pattern.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
        if written != pattern.count {
            outcome = written < 0 ? failure("write", path, errno) : failure("write", path, ENOSPC)
        } else if fsync(descriptor) != 0 {
            outcome = failure("fsync", path, errno)
        } else {
            var back = [UInt8](repeating: 0, count: pattern.count)
            let read = back.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
            if read < 0 {
                outcome = failure("read", path, errno)
            } else if read != pattern.count || back != pattern {
                outcome = Status(failed: true, reason: "read \(path): the bytes read back differ from those written", full: false)
            }
        }
        close(descriptor)
        if unlink(path) != 0 && !outcome.failed && !outcome.full { outcome = failure("remove", path, errno) }
        return outcome
    }

    /// Running out of space is not a failure of the volume; any other error is.
    static func failure(_ operation: String, _ path: String, _ code: Int32) -> Status {
        if code == ENOSPC || code == EDQUOT { return Status(failed: false, reason: "", full: true) }
        return Status(failed: true, reason: "\(operation) \(path): \(String(cString: strerror(code))) (\(errorName(code)))", full: false)
    }

    static func errorName(_ code: Int32) -> String {
        switch code {
        case EROFS: "EROFS"
        case EIO: "EIO"
        case EACCES: "EACCES"
        case EPERM: "EPERM"
        case ENOENT: "ENOENT"
        case ENOTDIR: "ENOTDIR"
        case ENOSPC: "ENOSPC"
        case EDQUOT: "EDQUOT"
        default: "errno \(code)"
        }
    }
}

extension DataNode {
    /// The volume checker of this node's heartbeat loop: probes about once per heartbeat, at
    /// most once a second.
    func makeVolumeChecker() -> VolumeChecker {
        VolumeChecker(directory: configuration.directory, probeIntervalMs: max(1_000, configuration.heartbeatIntervalMs), logger: logger)
    }

    /// Puts the volume's state into a heartbeat: a failed volume is named, and a full one has no
    /// space remaining whatever the file system's counters say.
    func reportVolume(_ status: VolumeChecker.Status, in heartbeat: inout Strata_Wire_HeartbeatRequest) {
        heartbeat.volumeFailed = status.failed
        heartbeat.volumeFailure = status.reason
        if status.full { heartbeat.remaining = 0 }
    }
}
