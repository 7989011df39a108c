import Foundation
import Glibc
import NIOPosix
import StrataClient
import StrataTestKit
import StrataWire
import Synchronization
import Testing

/// The seeded fault run: writers and readers work against a cluster of real processes while
/// data nodes are killed (SIGKILL) and restarted and replica files get bytes flipped, at random.
/// Every file whose close was acknowledged must read back with the right checksum, no read
/// may return wrong bytes, and once the faults stop fsck must report HEALTHY.
///
/// The run prints its seed; `STRATA_FAULT_SEED=N` replays the same choices, and
/// `STRATA_FAULT_SECONDS` sets how long faults go on at least (default 45 s; longer until
/// enough faults and files have happened, at most four times as long).
@Suite(.serialized) struct FaultRunProcessTests {

    /// What the workers did, shared between their tasks.
    actor Ledger {
        /// Files whose close returned, with how to make their bytes again (`bytes(count, seed)`).
        var acknowledged: [String: (count: Int, seed: UInt64)] = [:]
        var failedWrites: [String] = []
        var reads = 0
        var readErrors: [String] = []
        var wrongReads: [String] = []

        func closed(_ path: String, count: Int, seed: UInt64) { acknowledged[path] = (count, seed) }
        func writeFailed(_ message: String) { failedWrites.append(message) }
        func pick(_ index: Int) -> (String, (count: Int, seed: UInt64))? {
            guard !acknowledged.isEmpty else { return nil }
            let keys = acknowledged.keys.sorted()
            let key = keys[index % keys.count]
            return (key, acknowledged[key]!)
        }
        func read(_ path: String, ok: Bool, error: String?) {
            reads += 1
            if let error { readErrors.append("\(path): \(error)") }
            if !ok && error == nil { wrongReads.append(path) }
        }
    }

    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        var result = [UInt8]()
        result.reserveCapacity(count + 8)
        while result.count < count {
            // Half text-like (compressible), half noise.
            let word = generator.next()
            if word % 2 == 0 {
                result += Array("GET /item/\(word % 997) 200 \(word % 31)ms\n".utf8)
            } else {
                withUnsafeBytes(of: word) { result += $0 }
            }
        }
        return Array(result.prefix(count))
    }

    @Test func seededFaultRun() async throws {
        let seed = ProcessInfo.processInfo.environment["STRATA_FAULT_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64(UInt32.max))
        let seconds = ProcessInfo.processInfo.environment["STRATA_FAULT_SECONDS"].flatMap(Double.init) ?? 45
        print("strata fault run: seed \(seed) (replay with STRATA_FAULT_SEED=\(seed)), \(seconds) s of faults")
        var random = SeededGenerator(seed: seed)
        let nodeCount = 5
        let cluster = try ProcessCluster(dataNodes: nodeCount, heartbeatTimeoutSeconds: 3)
        try cluster.waitUntilReady(dataNodes: nodeCount)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var configuration = DFSClientConfiguration(user: cluster.superuser)
        configuration.nameNodePort = cluster.nameNodePort
        configuration.retryWindowSeconds = 20
        let client = DFSClient(configuration: configuration, group: group)
        let ledger = Ledger()
        // The run lasts at least `seconds`, and until enough has happened to mean something (as
        // many faults as seconds / 5, ten closed files): on a machine so busy that the workers or
        // this loop get little time, it runs longer rather than end having done little. It never
        // runs past four times `seconds`.
        let minimumFaults = max(1, Int(seconds / 5))
        let minimumFiles = 10
        let earliestStop = Date().addingTimeInterval(seconds)
        let latestStop = Date().addingTimeInterval(seconds * 4)
        let stopped = StopFlag()

        // Writers: files of 0 B to 3 MiB in 1 MiB blocks, some flushed midway.
        let writerSeeds = (0..<3).map { _ in random.next() }
        let readerSeeds = (0..<2).map { _ in random.next() }
        let workers = Task {
            await withTaskGroup(of: Void.self) { tasks in
                for (writer, writerSeed) in writerSeeds.enumerated() {
                    tasks.addTask {
                        var choices = SeededGenerator(seed: writerSeed)
                        var index = 0
                        while !stopped.isSet {
                            let path = "/faults/w\(writer)/f\(index)"
                            index += 1
                            let size = Int(choices.next() % (3 << 20))
                            let dataSeed = choices.next()
                            let data = Self.bytes(size, seed: dataSeed)
                            do {
                                let stream = try await client.create(path, blockSize: 1 << 20)
                                let half = size / 2
                                try await stream.write(Array(data[0..<half]))
                                if choices.next() % 2 == 0 { try await stream.hflush() }
                                try await stream.write(Array(data[half...]))
                                try await stream.close()
                                await ledger.closed(path, count: size, seed: dataSeed)
                            } catch {
                                await ledger.writeFailed("\(path): \(error)")
                            }
                        }
                    }
                }
                for readerSeed in readerSeeds {
                    tasks.addTask {
                        var choices = SeededGenerator(seed: readerSeed)
                        while !stopped.isSet {
                            guard let (path, expected) = await ledger.pick(Int(choices.next() % 1_000_000)) else {
                                try? await Task.sleep(for: .milliseconds(100))
                                continue
                            }
                            do {
                                let data = try await client.readAll(path)
                                await ledger.read(path, ok: data == Self.bytes(expected.count, seed: expected.seed), error: nil)
                            } catch {
                                await ledger.read(path, ok: false, error: "\(error)")
                            }
                        }
                    }
                }
            }
        }

        // Faults: at most one data node down at a time, and at most one corrupted replica per
        // block, so every block keeps a good replica on a running node.
        var down: Int?
        var corruptedBlocks: Set<UInt64> = []
        var faults: [String] = []
        while Date() < latestStop {
            let closedFiles = await ledger.acknowledged.count
            let enough = faults.count >= minimumFaults && closedFiles >= minimumFiles
            if enough && Date() >= earliestStop { break }
            try await Task.sleep(for: .milliseconds(500 + Int(random.next() % 1500)))
            switch random.next() % 3 {
            case 0 where down == nil:
                let victim = Int(random.next() % UInt64(nodeCount))
                cluster.killDataNode(victim)
                down = victim
                faults.append("kill -9 data node \(victim + 1)")
            case 0, 1:
                if let node = down {
                    try await cluster.startDataNode(node)
                    down = nil
                    faults.append("restart data node \(node + 1)")
                }
            default:
                let running = (0..<nodeCount).filter { $0 != down }
                let node = running[Int(random.next() % UInt64(running.count))]
                let candidates = cluster.replicaFiles(onDataNode: node).filter { $0.isFinalized && !corruptedBlocks.contains($0.blockId) }
                guard !candidates.isEmpty else { continue }
                let replica = candidates.sorted { $0.path < $1.path }[Int(random.next() % UInt64(candidates.count))]
                guard let handle = FileHandle(forUpdatingAtPath: replica.path) else { continue }
                let size = handle.seekToEndOfFile()
                guard size > 64 else {
                    handle.closeFile()
                    continue
                }
                let offset = 32 + random.next() % (size - 32)
                handle.seek(toFileOffset: offset)
                let old = handle.readData(ofLength: 1).first ?? 0
                handle.seek(toFileOffset: offset)
                handle.write(Data([old ^ 0x5A]))
                handle.closeFile()
                corruptedBlocks.insert(replica.blockId)
                faults.append("flip byte \(offset) of block \(replica.blockId) on data node \(node + 1)")
            }
        }
        stopped.set()
        await workers.value
        if let node = down { try await cluster.startDataNode(node) }
        print("strata fault run: \(faults.count) faults: \(faults.joined(separator: "; "))")

        let acknowledged = await ledger.acknowledged
        let failedWrites = await ledger.failedWrites
        let readErrors = await ledger.readErrors
        let wrongReads = await ledger.wrongReads
        print("strata fault run: \(acknowledged.count) files closed, \(failedWrites.count) writes failed, \(await ledger.reads) reads")
        #expect(acknowledged.count >= minimumFiles, "too few files written to mean anything (seed \(seed))")
        #expect(faults.count >= minimumFaults, "too few faults to mean anything (seed \(seed))")
        #expect(wrongReads.isEmpty, "reads returned wrong bytes (seed \(seed)): \(wrongReads)")
        #expect(readErrors.isEmpty, "reads of acknowledged files failed (seed \(seed)): \(readErrors.prefix(5))")
        // What the cluster's logs say of the blocks that could not be read.
        for blockId in Set(readErrors.compactMap { $0.firstMatch(of: /Could not obtain block: (\d+)/).map { String($0.1) } }).sorted() {
            print("strata fault run: block \(blockId) in the logs:\n" + cluster.logLines(containing: blockId).joined(separator: "\n"))
        }
        #expect(failedWrites.isEmpty, "writes failed (seed \(seed)): \(failedWrites.prefix(5))")

        // Recovery: every block back to full health.
        let healthy = try secondsUntil(timeoutSeconds: 150, intervalSeconds: 0.5) {
            let report = try cluster.fsck("/")
            return report["healthy"] as? Bool == true && jsonCount(report, "underReplicatedBlocks") == 0
                && jsonCount(report, "openFiles") == 0
        }
        let report = try cluster.fsck("/")
        #expect(healthy != nil, "fsck after the faults (seed \(seed)): \(report)")
        // Every acknowledged file, read again from scratch.
        for (path, expected) in acknowledged.sorted(by: { $0.key < $1.key }) {
            let data = try await client.readAll(path)
            #expect(data == Self.bytes(expected.count, seed: expected.seed), "\(path) after recovery (seed \(seed))")
        }
        await client.close()
        try await group.shutdownGracefully()
    }
}

/// Set once, read by many tasks: the fault run's workers stop when it is set.
final class StopFlag: Sendable {
    private let flag = Mutex(false)
    var isSet: Bool { flag.withLock { $0 } }
    func set() { flag.withLock { $0 = true } }
}
