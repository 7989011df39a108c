import Foundation
import Logging
import NIOCore
import StrataBlockFormat
import StrataCore
import StrataWire
import Synchronization

/// How a client reaches the file system and who it is.
public struct DFSClientConfiguration: Sendable {
    public var nameNodeHost: String = "127.0.0.1"
    public var nameNodePort: Int = 8020
    /// The calling user (HDFS simple authentication).
    public var user: String
    /// The data node this client runs on, if any: writes put their first replica there and reads
    /// prefer its replicas.
    public var localNodeId: String = ""
    /// How long reads wait for a block with no reported replica (the name node may have just
    /// restarted), and writes wait out safe mode.
    public var retryWindowSeconds: Double = 30
    /// How long calls keep trying to reach a name node that refuses connections (HDFS retries
    /// connecting for about 10 s).
    public var connectionRetrySeconds: Double = 5
    public var frameOptions = FrameEncoderOptions()
    /// Read replicas on this host straight from their block files (HDFS short-circuit local
    /// reads, `dfs.client.read.shortcircuit`), for reads that write at offsets (`get`); the data
    /// node says where the file is, and checksums are verified as always. Off: every read goes
    /// through the data node.
    public var shortCircuitReads = true
    /// How often the client renews the leases of the files it writes (HDFS: every 30 s, half
    /// the soft limit).
    public var leaseRenewalSeconds: Double = 10
    /// Where the client reports what it recovers from (a failed write pipeline, a bad replica).
    public var logger: Logger = {
        var logger = Logger(label: "strata.client")
        logger.logLevel = .warning
        return logger
    }()

    public init(user: String) {
        self.user = user
    }
}

/// A client of the Strata file system: namespace calls to the name node, block reads and writes
/// with data nodes. Frames are compressed and verified here, on the client's cores.
public final class DFSClient: Sendable {
    public let configuration: DFSClientConfiguration
    /// Identifies this client's leases on files it writes.
    public let clientName: String
    let group: any EventLoopGroup
    let nameNode: ServiceClient
    let codecs: CodecPool
    private let leaseRenewer = Mutex<Task<Void, Never>?>(nil)
    private let cachedDefaults = Mutex<Strata_Wire_ServerDefaults?>(nil)
    let openStreams = Atomic<Int>(0)
    let shortCircuitCount = Atomic<UInt64>(0)
    /// Bytes this client has read straight from replica files on its host (short-circuit reads).
    public var shortCircuitBytes: UInt64 { shortCircuitCount.load(ordering: .relaxed) }
    var logger: Logger { configuration.logger }

    /// Retry windows, back-off waits and lease renewals run on this clock.
    let clock: any Clock

    public init(configuration: DFSClientConfiguration, group: any EventLoopGroup, clock: any Clock = SystemClock()) {
        self.configuration = configuration
        self.group = group
        self.clock = clock
        self.clientName = "Strata_DFSClient_\(UUID().uuidString.prefix(8))"
        self.nameNode = ServiceClient(host: configuration.nameNodeHost, port: configuration.nameNodePort, group: group)
        self.codecs = CodecPool(options: configuration.frameOptions)
    }

    /// Stops renewing leases (waiting for a renewal under way, so none reaches the name node
    /// after this returns) and closes the connection.
    public func close() async {
        let renewer = leaseRenewer.withLock { task -> Task<Void, Never> in
            // A finished placeholder keeps a closed client from starting a renewer again.
            if task == nil { task = Task {} }
            return task!
        }
        renewer.cancel()
        await renewer.value
        await nameNode.close()
    }

    /// Calls the name node; while it is in start-up safe mode, busy (a `RetriableException`: the
    /// call was refused before anything was done, as HDFS clients retry it) or not reachable,
    /// calls are retried for a while rather than failed at once.
    func call<Response: SwiftProtobuf.Message>(
        _ method: NameNodeMethod, _ request: some SwiftProtobuf.Message, retrying: Bool = true
    ) async throws -> Response {
        let deadline = clock.now + .seconds(configuration.retryWindowSeconds)
        let connectionDeadline = clock.now + .seconds(configuration.connectionRetrySeconds)
        var delay = 0.05
        while true {
            do {
                return try await nameNode.call(method, request, user: configuration.user, clientName: clientName)
            } catch let error as RemoteException where retrying && error.exceptionClass == .safeMode && !error.message.contains("manually") {
                if clock.now + .seconds(delay) > deadline { throw error }
            } catch let error as RemoteException where retrying && error.exceptionClass == .retriable {
                if clock.now + .seconds(delay) > deadline { throw error }
            } catch let error as RPCConnectionError where retrying {
                if clock.now + .seconds(delay) > connectionDeadline { throw error }
            }
            try await clock.sleep(for: .seconds(delay))
            delay = min(delay * 2, 1)
        }
    }

    // MARK: - Namespace

    public func status(_ path: String) async throws -> Strata_Wire_FileStatus? {
        var request = Strata_Wire_PathRequest()
        request.path = path
        let response: Strata_Wire_GetFileInfoResponse = try await call(.getFileInfo, request)
        return response.hasStatus ? response.status : nil
    }

    /// Lists a directory (every entry, fetched in batches), or a file as itself.
    public func list(_ path: String) async throws -> [Strata_Wire_FileStatus] {
        var entries: [Strata_Wire_FileStatus] = []
        var request = Strata_Wire_GetListingRequest()
        request.path = path
        while true {
            let response: Strata_Wire_GetListingResponse = try await call(.getListing, request)
            entries += response.entries
            if response.remaining == 0 || response.entries.isEmpty { return entries }
            request.startAfter = (response.entries.last!.path as NSString).lastPathComponent
        }
    }

    /// One batch of a listing (HDFS `LISTSTATUS_BATCH`).
    public func listBatch(_ path: String, startAfter: String, limit: Int) async throws -> Strata_Wire_GetListingResponse {
        var request = Strata_Wire_GetListingRequest()
        request.path = path
        request.startAfter = startAfter
        request.limit = UInt32(limit)
        return try await call(.getListing, request)
    }

    public func mkdirs(_ path: String, permission: UInt16 = 0o755, createParent: Bool = true) async throws {
        var request = Strata_Wire_MkdirsRequest()
        request.path = path
        request.permission = UInt32(permission)
        request.createParent = createParent
        let _: Strata_Wire_BoolResponse = try await call(.mkdirs, request)
    }

    @discardableResult
    public func delete(_ path: String, recursive: Bool) async throws -> Bool {
        var request = Strata_Wire_DeleteRequest()
        request.path = path
        request.recursive = recursive
        let response: Strata_Wire_BoolResponse = try await call(.delete, request)
        return response.result
    }

    public func rename(_ source: String, to destination: String, overwrite: Bool = false) async throws {
        var request = Strata_Wire_RenameRequest()
        request.source = source
        request.destination = destination
        request.overwrite = overwrite
        let _: Strata_Wire_BoolResponse = try await call(.rename, request)
    }

    /// HDFS's original `rename`: into an existing directory, and false (not an error) when the
    /// source is missing, the destination exists or its parent is missing (WebHDFS `RENAME`).
    public func renameLegacy(_ source: String, to destination: String) async throws -> Bool {
        var request = Strata_Wire_RenameRequest()
        request.source = source
        request.destination = destination
        let response: Strata_Wire_BoolResponse = try await call(.renameLegacy, request)
        return response.result
    }

    /// Moves the blocks of `sources`, in order, to the end of `target` and removes the sources
    /// (HDFS `concat`).
    public func concat(_ target: String, sources: [String]) async throws {
        var request = Strata_Wire_ConcatRequest()
        request.target = target
        request.sources = sources
        let _: Strata_Wire_Empty = try await call(.concat, request)
    }

    @discardableResult
    public func setReplication(_ path: String, replication: Int) async throws -> Bool {
        var request = Strata_Wire_SetReplicationRequest()
        request.path = path
        request.replication = UInt32(replication)
        let response: Strata_Wire_BoolResponse = try await call(.setReplication, request)
        return response.result
    }

    public func setPermission(_ path: String, permission: UInt16) async throws {
        var request = Strata_Wire_SetPermissionRequest()
        request.path = path
        request.permission = UInt32(permission)
        let _: Strata_Wire_Empty = try await call(.setPermission, request)
    }

    public func setOwner(_ path: String, owner: String, group: String) async throws {
        var request = Strata_Wire_SetOwnerRequest()
        request.path = path
        request.owner = owner
        request.group = group
        let _: Strata_Wire_Empty = try await call(.setOwner, request)
    }

    public func setTimes(_ path: String, modificationTimeMs: Int64, accessTimeMs: Int64) async throws {
        var request = Strata_Wire_SetTimesRequest()
        request.path = path
        request.modificationTimeMs = modificationTimeMs
        request.accessTimeMs = accessTimeMs
        let _: Strata_Wire_Empty = try await call(.setTimes, request)
    }

    public func contentSummary(_ path: String) async throws -> Strata_Wire_ContentSummary {
        var request = Strata_Wire_PathRequest()
        request.path = path
        return try await call(.getContentSummary, request)
    }

    public func fsck(_ path: String, listFiles: Bool = false) async throws -> Strata_Wire_FsckReport {
        var request = Strata_Wire_FsckRequest()
        request.path = path
        request.listFiles = listFiles
        return try await call(.fsck, request)
    }

    /// The name node's defaults, fetched once per client (they do not change while it runs).
    public func serverDefaults() async throws -> Strata_Wire_ServerDefaults {
        if let cached = cachedDefaults.withLock({ $0 }) { return cached }
        let defaults: Strata_Wire_ServerDefaults = try await call(.getServerDefaults, Strata_Wire_Empty())
        cachedDefaults.withLock { $0 = defaults }
        return defaults
    }

    public func datanodeReport() async throws -> [Strata_Wire_DatanodeInfo] {
        let report: Strata_Wire_DatanodeReport = try await call(.getDatanodeReport, Strata_Wire_Empty())
        return report.nodes
    }

    /// `get`, `enter` or `leave`; returns whether safe mode is on afterwards.
    public func safeMode(_ action: String) async throws -> Bool {
        var request = Strata_Wire_PathRequest()
        request.path = action
        let response: Strata_Wire_BoolResponse = try await call(.safeMode, request, retrying: false)
        return response.result
    }

    public func blockLocations(_ path: String, offset: UInt64 = 0, length: UInt64 = 0) async throws -> Strata_Wire_LocatedBlocks {
        var request = Strata_Wire_GetBlockLocationsRequest()
        request.path = path
        request.offset = offset
        request.length = length
        request.readerNodeID = configuration.localNodeId
        return try await call(.getBlockLocations, request)
    }

    // MARK: - Writing

    /// Creates a file and returns a stream to write it. The file is open for writing (leased to
    /// this client) until the stream is closed.
    public func create(
        _ path: String, overwrite: Bool = false, replication: Int? = nil, blockSize: UInt64? = nil,
        permission: UInt16 = 0o644, createParent: Bool = true
    ) async throws -> DFSOutputStream {
        let response = try await createCall(
            path, overwrite: overwrite, replication: replication, blockSize: blockSize, permission: permission,
            createParent: createParent, close: false)
        let defaults = try await serverDefaults()
        startLeaseRenewal()
        return DFSOutputStream(
            client: self, path: response.status.path, blockSize: response.status.blockSize, rawFrameSize: Int(defaults.rawFrameSize),
            initialLength: 0, lastBlock: nil, continuesLastBlock: false, pendingTail: [], fileId: response.status.fileID)
    }

    /// Takes a file back from a writer that is gone (HDFS `recoverLease`): true when the file is
    /// closed, false while the name node recovers its last block (ask again until true).
    public func recoverLease(_ path: String) async throws -> Bool {
        var request = Strata_Wire_PathRequest()
        request.path = path
        let response: Strata_Wire_BoolResponse = try await call(.recoverLease, request)
        return response.result
    }

    /// Creates an empty, closed file in one call (and one journal commit): what `touchz` does.
    public func createEmpty(
        _ path: String, overwrite: Bool = false, replication: Int? = nil, blockSize: UInt64? = nil,
        permission: UInt16 = 0o644, createParent: Bool = true
    ) async throws {
        _ = try await createCall(
            path, overwrite: overwrite, replication: replication, blockSize: blockSize, permission: permission,
            createParent: createParent, close: true)
    }

    private func createCall(
        _ path: String, overwrite: Bool, replication: Int?, blockSize: UInt64?, permission: UInt16, createParent: Bool, close: Bool
    ) async throws -> Strata_Wire_CreateResponse {
        var request = Strata_Wire_CreateRequest()
        request.path = path
        request.overwrite = overwrite
        request.replication = UInt32(replication ?? 0)
        request.blockSize = blockSize ?? 0
        request.permission = UInt32(permission)
        request.createParent = createParent
        request.close = close
        return try await call(.create, request)
    }

    /// Opens an existing file to add bytes at its end.
    public func append(_ path: String) async throws -> DFSOutputStream {
        var request = Strata_Wire_AppendRequest()
        request.path = path
        let response: Strata_Wire_AppendResponse = try await call(.append, request)
        let defaults = try await serverDefaults()
        let frameSize = Int(defaults.rawFrameSize)
        startLeaseRenewal()
        var tail: [UInt8] = []
        if response.hasLastBlock {
            // New bytes extend the last frame, which is re-encoded whole: fetch its raw bytes.
            // The replicas keep the stamp from before the append until its pipeline reopens
            // them, and a data node serves no replica older than the stamp asked for.
            var block = response.lastBlock
            block.block.generationStamp = response.previousGenerationStamp
            let frameStart = block.block.numBytes - block.block.numBytes % UInt64(frameSize)
            if frameStart < block.block.numBytes {
                tail = try await readBlockRange(block, from: frameStart, to: block.block.numBytes)
            }
        }
        var lastBlock: Strata_Wire_LocatedBlock?
        var continuing = false
        if response.hasLastBlock {
            lastBlock = response.lastBlock
            continuing = true
        } else if response.status.length > 0 {
            // The last block is full: the next one follows it.
            lastBlock = try await blockLocations(response.status.path, offset: response.status.length - 1, length: 1).blocks.last
        }
        return DFSOutputStream(
            client: self, path: response.status.path, blockSize: response.status.blockSize, rawFrameSize: frameSize,
            initialLength: response.status.length, lastBlock: lastBlock, continuesLastBlock: continuing, pendingTail: tail,
            previousGenerationStamp: response.previousGenerationStamp, fileId: response.status.fileID)
    }

    /// Renews this client's leases while it has files open for writing.
    func startLeaseRenewal() {
        leaseRenewer.withLock { task in
            guard task == nil else { return }
            task = Task { [self] in
                while !Task.isCancelled {
                    do { try await clock.sleep(for: .seconds(configuration.leaseRenewalSeconds)) } catch { return }
                    guard !Task.isCancelled else { return }
                    let _: Strata_Wire_Empty? = try? await nameNode.call(.renewLease, Strata_Wire_Empty(), user: configuration.user, clientName: clientName)
                }
            }
        }
    }
}

import SwiftProtobuf
