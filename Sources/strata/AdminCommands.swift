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
        commandName: "dfsadmin", abstract: "Administer the file system.", subcommands: [SafeModeCommand.self, ReportCommand.self])
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
        try await runShell("safemode") {
            let on = try await cluster.withClient { try await $0.safeMode(action) }
            print("Safe mode is \(on ? "ON" : "OFF")")
        }
    }
}

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "report", abstract: "List data nodes: state, capacity, used, blocks.")

    @OptionGroup var cluster: ClusterOptions

    func run() async throws {
        try await runShell("report") {
            let nodes = try await cluster.withClient { try await $0.datanodeReport() }
            if cluster.json {
                print("[" + (try nodes.map { try $0.jsonString() }).joined(separator: ",") + "]")
                return
            }
            print("Live datanodes (\(nodes.filter { $0.state == "live" }.count)):")
            for node in nodes {
                print("")
                print("Name: \(node.ipAddress):\(node.transferPort) (\(node.nodeID))")
                print("State: \(node.state)")
                print("Configured Capacity: \(node.capacity) (\(humanSize(node.capacity)))")
                print("DFS Used: \(node.dfsUsed) (\(humanSize(node.dfsUsed)))")
                print("DFS Remaining: \(node.remaining) (\(humanSize(node.remaining)))")
                print("Blocks: \(node.blockCount)")
                print("Last contact: \(Date(timeIntervalSince1970: Double(node.lastHeartbeatMs) / 1000))")
            }
        }
    }
}
