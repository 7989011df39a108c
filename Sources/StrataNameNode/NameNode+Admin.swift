import Foundation
import StrataCore
import StrataWire

extension NameNode {
    /// The file in the name node's directory that lists, one node id a line, the data nodes an
    /// administrator asked to decommission (HDFS keeps them in its exclude file), so that a
    /// restarted name node keeps them out of service.
    static let decommissionListFileName = "decommissioned-nodes"

    /// `strata dfsadmin decommission|recommission NODE`: superusers only. Decommissioning starts
    /// at once (the node takes no new replicas); it completes in the replication monitor once
    /// every block of the node has its replication on other nodes. Returns the node as it is now.
    func setAdminState(_ request: Strata_Wire_AdminStateRequest, caller: Caller) throws -> Strata_Wire_DatanodeInfo {
        try state.withLock { (state) throws(RemoteException) in
            guard caller.user == configuration.superuser || caller.groups.contains(configuration.supergroup) else {
                throw RemoteException.accessDenied("Access denied for user \(caller.user). Superuser privilege is required")
            }
            let index: UInt16
            switch state.blockManager.resolveNode(request.node) {
            case .found(let found):
                index = found
            case .unknown:
                throw RemoteException.illegalArgument(
                    "No data node \(request.node.isEmpty ? "named" : "'\(request.node)'") is known to the name node: "
                        + "name it by node id, host:transfer-port, or a host running one data node (see strata dfsadmin report)")
            case .ambiguous(let addresses):
                throw RemoteException.illegalArgument(
                    "'\(request.node)' names \(addresses.count) data nodes (\(addresses.joined(separator: ", "))): "
                        + "name one by node id or host:transfer-port")
            }
            let before = state.blockManager.decommissionRequests
            switch request.action {
            case .decommission: state.blockManager.startDecommission(index)
            case .recommission: state.blockManager.stopDecommission(index)
            case .UNRECOGNIZED(let value): throw RemoteException.illegalArgument("unknown admin action \(value)")
            }
            if state.blockManager.decommissionRequests != before {
                do {
                    try saveDecommissionList(state.blockManager.decommissionRequests)
                } catch {
                    // Without the list on disk the change would not survive a restart: undo it.
                    switch request.action {
                    case .decommission: state.blockManager.stopDecommission(index)
                    default: state.blockManager.startDecommission(index)
                    }
                    throw RemoteException.io("could not record the decommissioned nodes: \(error)")
                }
            }
            state.replicationScanNeeded = true
            let info = state.blockManager.nodeInfo(index)
            logger.notice(
                request.action == .decommission ? "data node decommission requested" : "data node recommissioned",
                metadata: ["node": "\(info.nodeID)", "address": "\(info.ipAddress):\(info.transferPort)", "adminState": "\(info.adminState)"])
            return info
        }
    }

    /// Writes the decommission list durably: a temporary file, fsync, rename, fsync of the
    /// directory.
    func saveDecommissionList(_ nodeIds: Set<String>) throws(SystemCallError) {
        let path = configuration.directory + "/" + Self.decommissionListFileName
        let temporary = path + ".tmp"
        let file = try LocalFile(path: temporary, mode: .createOrTruncate)
        try file.write(Array(nodeIds.sorted().map { $0 + "\n" }.joined().utf8), at: 0)
        try file.synchronize()
        try file.close()
        guard rename(temporary, path) == 0 else { throw SystemCallError(call: "rename", path: temporary, errorNumber: errno) }
        try LocalFile.synchronizeDirectory(configuration.directory)
    }

    /// Reads the decommission list at start-up (empty when there is none).
    func loadDecommissionList() -> Set<String> {
        let path = configuration.directory + "/" + Self.decommissionListFileName
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return Set(text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }
}
