import ArgumentParser
import Foundation
import StrataClient
import StrataWire
import SwiftProtobuf

struct FsckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fsck",
        abstract: "Check block health under a path: replication, missing and corrupt blocks. Exit status 1 when CORRUPT.")

    @OptionGroup var cluster: ClusterOptions

    @Flag(name: [.customLong("files"), .customLong("files", withSingleDash: true)], help: "List every file checked.")
    var listFiles = false

    @Argument(help: "The path to check.")
    var path: String = "/"

    func run() async throws {
        let path = cluster.absolute(path)
        var healthy = true
        try await runShell("fsck", path: path) {
            try await cluster.withClient { client in
                let started = Date()
                let report = try await client.fsck(path, listFiles: listFiles)
                healthy = report.healthy
                if cluster.json {
                    print(try report.jsonString(options: { var options = JSONEncodingOptions(); options.alwaysPrintInt64sAsNumbers = true; return options }()))
                    return
                }
                let (host, port) = try cluster.nameNodeAddress()
                print("Connecting to namenode via \(host):\(port)")
                print("FSCK started by \(cluster.resolvedUser) (auth:SIMPLE) for path \(path) at \(started)")
                for file in report.problemFiles {
                    var notes: [String] = []
                    if file.corrupt { notes.append("CORRUPT") }
                    if file.missing { notes.append("MISSING") }
                    if file.minLiveReplicas < file.replication && !file.corrupt && !file.missing {
                        notes.append("Under replicated: target replicas is \(file.replication) and found \(file.minLiveReplicas) live replica(s)")
                    }
                    print("\(file.path) \(file.length) bytes, replicated: replication=\(file.replication), \(file.blockCount) block(s): "
                        + (notes.isEmpty ? "OK" : notes.joined(separator: ", ")))
                }
                func percent(_ count: UInt64) -> String {
                    report.totalBlocks == 0 ? "0.0 %" : String(format: "%.1f %%", Double(count) * 100 / Double(report.totalBlocks))
                }
                print("")
                print("Status: \(report.healthy ? "HEALTHY" : "CORRUPT")")
                print(" Number of data-nodes:\t\(report.liveDatanodes)")
                print(" Number of dead data-nodes:\t\(report.deadDatanodes)")
                print(" Total dirs:\t\t\(report.totalDirectories)")
                print(" Total size:\t\(report.totalSize) B")
                print(" Total files:\t\(report.totalFiles)\(report.openFiles > 0 ? " (files currently being written: \(report.openFiles))" : "")")
                print(" Total blocks (validated):\t\(report.totalBlocks)" + (report.totalBlocks > 0 ? " (avg. block size \(report.totalSize / max(1, report.totalBlocks)) B)" : ""))
                print(" Minimally replicated blocks:\t\(report.minReplicatedBlocks) (\(percent(report.minReplicatedBlocks)))")
                print(" Over-replicated blocks:\t\(report.overReplicatedBlocks) (\(percent(report.overReplicatedBlocks)))")
                print(" Under-replicated blocks:\t\(report.underReplicatedBlocks) (\(percent(report.underReplicatedBlocks)))")
                print(" Default replication factor:\t\(report.defaultReplication)")
                print(" Average block replication:\t\(String(format: "%.1f", report.averageReplication))")
                print(" Missing blocks:\t\t\(report.missingBlocks)")
                print(" Corrupt blocks:\t\t\(report.corruptBlocks)")
                print(" Stored bytes (all replicas, compressed):\t\(report.storedBytes) B")
                print("FSCK ended at \(Date()) in \(Int(Date().timeIntervalSince(started) * 1000)) milliseconds")
                print("")
                print("The filesystem under path '\(path)' is \(report.healthy ? "HEALTHY" : "CORRUPT")")
            }
        }
        if !healthy { throw ExitCode(1) }
    }
}

struct DFSAdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dfsadmin", abstract: "Administer the file system.",
        subcommands: [SafeModeCommand.self, ReportCommand.self, DecommissionCommand.self, RecommissionCommand.self])
}

struct SafeModeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "safemode", abstract: "Show, enter or leave safe mode (get|enter|leave).")

    @OptionGroup var cluster: ClusterOptions

    @Argument(help: "get, enter or leave.")
    var action: String

    func validate() throws {
        guard ["get", "enter", "leave"].contains(action) else { throw ValidationError("safemode takes get, enter or leave") }
    }

    func run() async throws {
        try await runAdmin("safemode") {
            let on = try await cluster.withClient { try await $0.safeMode(action) }
            print("Safe mode is \(on ? "ON" : "OFF")")
        }
    }
}

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Capacity and use of the file system, then every data node: state, decommission status, capacity, used, blocks.",
        discussion: "As `hdfs dfsadmin -report`. --live, --dead and --decommissioning list only those nodes.")

    @OptionGroup var cluster: ClusterOptions

    @Flag(name: [.customLong("live"), .customLong("live", withSingleDash: true)], help: "List live data nodes only.")
    var live = false

    @Flag(name: [.customLong("dead"), .customLong("dead", withSingleDash: true)], help: "List dead data nodes only.")
    var dead = false

    @Flag(
        name: [.customLong("decommissioning"), .customLong("decommissioning", withSingleDash: true)],
        help: "List data nodes being decommissioned only.")
    var decommissioning = false

    func run() async throws {
        try await runAdmin("report") {
            let (nodes, inSafeMode) = try await cluster.withClient { client in
                (try await client.datanodeReport(), try await client.safeMode("get"))
            }
            let all = !live && !dead && !decommissioning
            let liveNodes = nodes.filter { $0.state == "live" }.sorted(by: DatanodeReport.byName)
            let deadNodes = nodes.filter { $0.state != "live" }.sorted(by: DatanodeReport.byName)
            let decommissioningNodes = liveNodes.filter { $0.adminState == "decommissioning" }
            if cluster.json {
                var listed: [Strata_Wire_DatanodeInfo] = []
                if all || live { listed += liveNodes }
                if all || dead { listed += deadNodes }
                if decommissioning && !live { listed += decommissioningNodes }
                print(try JSONOutput.encode(listed.map(DatanodeReport.Entry.init)))
                return
            }
            if inSafeMode { print("Safe mode is ON") }
            print(DatanodeReport.summary(liveNodes))
            print("-------------------------------------------------")
            if all || live {
                print("Live datanodes (\(liveNodes.count)):\n")
                for node in liveNodes { print(DatanodeReport.describe(node)) }
            }
            if all || dead {
                print("Dead datanodes (\(deadNodes.count)):\n")
                for node in deadNodes { print(DatanodeReport.describe(node)) }
            }
            if (all && !decommissioningNodes.isEmpty) || decommissioning {
                print("Decommissioning datanodes (\(decommissioningNodes.count)):\n")
                for node in decommissioningNodes { print(DatanodeReport.describe(node)) }
            }
        }
    }
}

struct DecommissionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decommission",
        abstract: "Decommission a data node: copy its replicas to other nodes, then mark it decommissioned.",
        discussion: """
            NODE is a node id, host:transfer-port, or a host running one data node (as `dfsadmin report` \
            names them). The node takes no new replicas at once and keeps serving reads; it becomes \
            Decommissioned when every block it holds has its replication on other nodes, after which \
            it may be stopped. Needs a superuser; kept across name node restarts.
            """)

    @OptionGroup var cluster: ClusterOptions

    @Argument(help: "The data node: node id, host:port, or host.")
    var node: String

    func run() async throws {
        try await runAdmin("decommission") {
            let info = try await cluster.withClient { try await $0.decommission(node) }
            if cluster.json {
                print(try JSONOutput.encode(DatanodeReport.Entry(info)))
                return
            }
            print("Decommission of \(DatanodeReport.name(info)) (\(info.nodeID)): \(DatanodeReport.decommissionStatus(info))"
                + (info.adminState == "decommissioning" ? ", \(info.blocksToDecommission) block(s) to copy elsewhere" : ""))
        }
    }
}

struct RecommissionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recommission",
        abstract: "Return a decommissioning or decommissioned data node to normal service.",
        discussion: "Blocks that then have more replicas than their replication lose the excess ones. Needs a superuser.")

    @OptionGroup var cluster: ClusterOptions

    @Argument(help: "The data node: node id, host:port, or host.")
    var node: String

    func run() async throws {
        try await runAdmin("recommission") {
            let info = try await cluster.withClient { try await $0.recommission(node) }
            if cluster.json {
                print(try JSONOutput.encode(DatanodeReport.Entry(info)))
                return
            }
            print("Recommission of \(DatanodeReport.name(info)) (\(info.nodeID)): \(DatanodeReport.decommissionStatus(info))")
        }
    }
}

/// Runs a `dfsadmin` command body, printing an error the way `hdfs dfsadmin` does
/// (`decommission: MESSAGE`) and turning it into exit status 1.
func runAdmin(_ command: String, _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as RemoteException {
        printError("\(command): \(error.message)")
        throw ExitCode(1)
    } catch let error as RPCConnectionError {
        printError("\(command): Call to \(error.address) failed: \(error.reason). Is the name node running?")
        throw ExitCode(1)
    }
}

/// How `dfsadmin` shows data nodes: `hdfs dfsadmin -report`'s text, and JSON with every field.
enum DatanodeReport {
    /// One node in `--json` output: every field, numbers as numbers.
    struct Entry: Encodable {
        var nodeId: String
        var name: String
        var hostname: String
        var ipAddress: String
        var transferPort: UInt32
        var httpPort: UInt32
        /// "live" or "dead".
        var state: String
        /// "normal", "decommissioning" or "decommissioned".
        var adminState: String
        var blocksToDecommission: UInt64
        var capacity: UInt64
        var dfsUsed: UInt64
        var nonDfsUsed: UInt64
        var remaining: UInt64
        var blockCount: UInt64
        var volumeFailed: Bool
        var volumeFailure: String
        var lastHeartbeatMs: Int64

        init(_ node: Strata_Wire_DatanodeInfo) {
            nodeId = node.nodeID
            name = DatanodeReport.name(node)
            hostname = node.hostname
            ipAddress = node.ipAddress
            transferPort = node.transferPort
            httpPort = node.httpPort
            state = node.state
            adminState = node.adminState.isEmpty ? "normal" : node.adminState
            blocksToDecommission = node.blocksToDecommission
            capacity = node.capacity
            dfsUsed = node.dfsUsed
            nonDfsUsed = DatanodeReport.nonDfsUsed(node)
            remaining = node.remaining
            blockCount = node.blockCount
            volumeFailed = node.volumeFailed
            volumeFailure = node.volumeFailure
            lastHeartbeatMs = node.lastHeartbeatMs
        }
    }

    static func name(_ node: Strata_Wire_DatanodeInfo) -> String { "\(node.ipAddress):\(node.transferPort)" }

    static func byName(_ first: Strata_Wire_DatanodeInfo, _ second: Strata_Wire_DatanodeInfo) -> Bool {
        (first.ipAddress, first.transferPort, first.nodeID) < (second.ipAddress, second.transferPort, second.nodeID)
    }

    static func nonDfsUsed(_ node: Strata_Wire_DatanodeInfo) -> UInt64 {
        let accounted = node.dfsUsed + node.remaining
        return node.capacity > accounted ? node.capacity - accounted : 0
    }

    static func decommissionStatus(_ node: Strata_Wire_DatanodeInfo) -> String {
        switch node.adminState {
        case "decommissioning": "Decommission in progress"
        case "decommissioned": "Decommissioned"
        default: "Normal"
        }
    }

    /// The totals over live nodes in service (HDFS leaves decommissioning and decommissioned
    /// nodes out of the cluster's capacity).
    static func summary(_ liveNodes: [Strata_Wire_DatanodeInfo]) -> String {
        let counted = liveNodes.filter { $0.adminState.isEmpty || $0.adminState == "normal" }
        let capacity = counted.reduce(0) { $0 + $1.capacity }
        let used = counted.reduce(0) { $0 + $1.dfsUsed }
        let remaining = counted.reduce(0) { $0 + $1.remaining }
        let present = used + remaining
        return """
            Configured Capacity: \(capacity) (\(byteDescription(capacity)))
            Present Capacity: \(present) (\(byteDescription(present)))
            DFS Remaining: \(remaining) (\(byteDescription(remaining)))
            DFS Used: \(used) (\(byteDescription(used)))
            DFS Used%: \(percent(used, of: present))

            """
    }

    /// One node, as HDFS's `DatanodeInfo.getDatanodeReport` prints it (plus Strata's volume and
    /// decommission progress lines), followed by a blank line.
    static func describe(_ node: Strata_Wire_DatanodeInfo) -> String {
        var lines = [
            "Name: \(name(node)) (\(node.nodeID))",
            "Hostname: \(node.hostname.isEmpty ? node.ipAddress : node.hostname)",
            "Decommission Status : \(decommissionStatus(node))",
        ]
        if node.adminState == "decommissioning" { lines.append("Blocks to copy before decommissioned: \(node.blocksToDecommission)") }
        let nonDfs = nonDfsUsed(node)
        lines += [
            "Configured Capacity: \(node.capacity) (\(byteDescription(node.capacity)))",
            "DFS Used: \(node.dfsUsed) (\(byteDescription(node.dfsUsed)))",
            "Non DFS Used: \(nonDfs) (\(byteDescription(nonDfs)))",
            "DFS Remaining: \(node.remaining) (\(byteDescription(node.remaining)))",
            "DFS Used%: \(percent(node.dfsUsed, of: node.capacity))",
            "DFS Remaining%: \(percent(node.remaining, of: node.capacity))",
        ]
        if node.volumeFailed { lines.append("Volume Failures: 1 (\(node.volumeFailure))") }
        lines += [
            "Last contact: \(javaDate(node.lastHeartbeatMs))",
            "Num of Blocks: \(node.blockCount)",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Hadoop's `StringUtils.byteDesc`: `0 B`, `48 KB`, `76.71 GB` (two decimals unless exact).
    static func byteDescription(_ bytes: UInt64) -> String {
        let prefixes = ["", "K", "M", "G", "T", "P", "E"]
        var index = 0
        while index < prefixes.count - 1 && bytes >= UInt64(1) << (10 * UInt64(index + 1)) { index += 1 }
        if index == 0 { return "\(bytes) B" }
        let unit = UInt64(1) << (10 * UInt64(index))
        if bytes % unit == 0 { return "\(bytes / unit) \(prefixes[index])B" }
        return String(format: "%.2f %@B", Double(bytes) / Double(unit), prefixes[index])
    }

    /// `12.34%`, as HDFS prints percentages (0.00% of nothing).
    static func percent(_ part: UInt64, of whole: UInt64) -> String {
        String(format: "%.2f%%", whole == 0 ? 0 : Double(part) * 100 / Double(whole))
    }

    /// Java's `Date.toString()`: `Wed Nov 25 10:00:00 UTC 2026`.
    static func javaDate(_ milliseconds: Int64) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "EEE MMM dd HH:mm:ss zzz yyyy"
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }
}
