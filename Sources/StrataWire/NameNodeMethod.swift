/// The methods of the name node's RPC protocol. The raw value is the name a call carries on the
/// wire (`RequestHeader.method`), so callers and the name node's dispatch name methods by case
/// while the wire keeps its strings. A name the name node does not know is answered with
/// `RpcNoSuchMethodException`.
public enum NameNodeMethod: String, CaseIterable, Sendable {
    // Clients: namespace reads.
    case getFileInfo
    case getListing
    case getContentSummary
    case getBlockLocations
    case getServerDefaults
    case fsck
    case getDatanodeReport

    // Clients: namespace changes and writes.
    case mkdirs
    case create
    case addBlock
    case abandonBlock
    case complete
    case append
    case rename
    case renameLegacy
    case concat
    case truncate
    case delete
    case setReplication
    case setPermission
    case setOwner
    case setTimes
    case renewLease
    case recoverLease
    case reportBadBlocks
    case updateBlockForPipeline
    case updatePipeline

    // Administration.
    case safeMode
    case setAdminState

    // Data nodes.
    case registerDatanode
    case sendHeartbeat
    case blockReport
    case blockReceivedAndDeleted
    case commitBlockSynchronization
}
