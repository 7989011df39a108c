import StrataCore
import StrataWire

/// Settings that shape the namespace's behaviour.
public struct NamespaceSettings: Sendable {
    /// The user who started the name node: exempt from permission checks, owner of `/`.
    public var superuser: String
    /// Members of this group are superusers too (HDFS `dfs.permissions.superusergroup`).
    public var supergroup: String
    /// HDFS `dfs.permissions.enabled`.
    public var permissionsEnabled: Bool

    public init(superuser: String, supergroup: String = "supergroup", permissionsEnabled: Bool = true) {
        self.superuser = superuser
        self.supergroup = supergroup
        self.permissionsEnabled = permissionsEnabled
    }
}

/// The file system tree: inodes, the blocks of each file, and which files are open for
/// writing. A value type with no I/O and no clock: every mutation is first *prepared* (checked
/// against the tree and the caller's permissions, giving journal edits with every value they
/// set), then *applied*. The name node applies an edit and journals it under one lock; a restart
/// applies the journaled edits again and gets the same tree.
public struct Namespace: Sendable {
    public let settings: NamespaceSettings
    var inodes: [INode]
    /// Free slots of `inodes`, a min-heap (`pushFreeIndex`, `popFreeIndex`).
    var freeIndices: [UInt32] = []
    var strings = StringTable()
    var blocks: [UInt64: BlockRecord] = [:]
    /// Files open for writing: inode index to the writer's client name.
    var writers: [UInt32: String] = [:]
    /// Last blocks reopened by an append, to the generation stamp they had before it. The
    /// append gives such a block a new stamp at once, but its replicas keep the old one until
    /// the appender's pipeline reopens them: until then (or the block is closed, recovered or
    /// put on a new pipeline) they are the file's data, not stale copies.
    var appendBaseStamps: [UInt64: UInt64] = [:]
    /// Sorted child names of directories listed since their last change.
    var sortedChildren: [UInt32: [String]] = [:]
    public internal(set) var nextBlockId: UInt64 = Namespace.firstBlockId
    public internal(set) var nextGenerationStamp: UInt64 = 1001
    public internal(set) var fileCount = 0
    public internal(set) var directoryCount = 1

    static let rootIndex: UInt32 = 0

    public init(settings: NamespaceSettings, now: Int64 = 0) {
        self.settings = settings
        var strings = StringTable()
        let root = INode(
            name: "", parent: 0, isDirectory: true, replication: 0, permission: 0o755,
            owner: strings.intern(settings.superuser), group: strings.intern(settings.supergroup),
            modificationTime: now, accessTime: 0, blockSize: 0, blocks: BlockList(), children: [:])
        self.inodes = [root]
        self.strings = strings
    }

    // MARK: - Resolution

    /// The inodes along a path: `indices[i]` is the inode named by the first `i` components
    /// (`indices[0]` is the root). Stops at the first missing component, or after a file.
    struct Resolution {
        var components: [String]
        var indices: [UInt32]
        /// The inode the whole path names, if it exists.
        var target: UInt32? { indices.count == components.count + 1 ? indices.last : nil }
        /// The last inode that exists along the path.
        var deepest: UInt32 { indices.last! }
        var path: String { PathName.normalized(components) }
    }

    func resolve(_ path: String) throws(RemoteException) -> Resolution {
        try resolve(components: PathName.components(path))
    }

    func resolve(components: [String]) -> Resolution {
        var indices: [UInt32] = [Self.rootIndex]
        indices.reserveCapacity(components.count + 1)
        for component in components {
            guard let children = inodes[Int(indices.last!)].children,
                let child = children[component]
            else { break }
            indices.append(child)
        }
        return Resolution(components: components, indices: indices)
    }

    func inode(_ index: UInt32) -> INode { inodes[Int(index)] }

    // MARK: - Permissions

    func isSuperuser(_ caller: Caller) -> Bool {
        caller.user == settings.superuser || caller.groups.contains(settings.supergroup)
    }

    /// Throws `AccessControlException` unless `caller` may `access` inode `index`.
    func check(_ caller: Caller, _ access: FileAccess, _ index: UInt32, path: String) throws(RemoteException) {
        guard settings.permissionsEnabled, !isSuperuser(caller) else { return }
        let node = inodes[Int(index)]
        let mode = node.permission
        let granted: UInt16
        if caller.user == strings.name(node.owner) {
            granted = (mode >> 6) & 7
        } else if caller.groups.contains(strings.name(node.group)) {
            granted = (mode >> 3) & 7
        } else {
            granted = mode & 7
        }
        if granted & access.rawValue != access.rawValue {
            throw RemoteException.accessDenied(
                "user=\(caller.user), access=\(access), inode=\"\(path)\":\(strings.name(node.owner)):\(strings.name(node.group)):\(permissionString(mode, isDirectory: node.isDirectory))")
        }
    }

    /// Every existing directory above the path's target must be searchable (EXECUTE).
    func checkTraverse(_ caller: Caller, _ resolution: Resolution) throws(RemoteException) {
        guard settings.permissionsEnabled, !isSuperuser(caller) else { return }
        let ancestors = resolution.target == nil ? resolution.indices.count : resolution.indices.count - 1
        for position in 0..<ancestors where inodes[Int(resolution.indices[position])].isDirectory {
            try check(caller, .execute, resolution.indices[position], path: PathName.normalized(Array(resolution.components.prefix(position))))
        }
    }

    /// Sticky-bit rule: in a sticky directory only the entry's owner, the directory's owner or a
    /// superuser may delete or rename an entry.
    func checkSticky(_ caller: Caller, parent: UInt32, child: UInt32, path: String) throws(RemoteException) {
        guard settings.permissionsEnabled, !isSuperuser(caller) else { return }
        let directory = inodes[Int(parent)]
        guard directory.permission & 0o1000 != 0 else { return }
        let user = caller.user
        if user == strings.name(directory.owner) || user == strings.name(inodes[Int(child)].owner) { return }
        throw RemoteException.accessDenied("user=\(user) is not the owner of inode=\(path) in a sticky directory")
    }

    /// Checks `access` on every directory in the subtree under `index` (recursive delete).
    func checkSubtree(_ caller: Caller, _ access: FileAccess, _ index: UInt32, path: String) throws(RemoteException) {
        guard settings.permissionsEnabled, !isSuperuser(caller) else { return }
        var stack: [(UInt32, String)] = [(index, path)]
        while let (current, currentPath) = stack.popLast() {
            guard let children = inodes[Int(current)].children else { continue }
            try check(caller, access, current, path: currentPath)
            for (name, child) in children where inodes[Int(child)].isDirectory {
                stack.append((child, currentPath == "/" ? "/" + name : currentPath + "/" + name))
            }
        }
    }

    // MARK: - Reading

    /// The status of `path`, or nil if nothing is there.
    public func status(_ path: String, caller: Caller) throws(RemoteException) -> Strata_Wire_FileStatus? {
        let resolution = try resolve(path)
        try checkTraverse(caller, resolution)
        guard let target = resolution.target else { return nil }
        return fileStatus(target, path: resolution.path)
    }

    func fileStatus(_ index: UInt32, path: String) -> Strata_Wire_FileStatus {
        let node = inodes[Int(index)]
        var status = Strata_Wire_FileStatus()
        status.path = path
        status.kind = node.isDirectory ? .directory : .file
        status.permission = UInt32(node.permission)
        status.owner = strings.name(node.owner)
        status.group = strings.name(node.group)
        status.modificationTimeMs = node.modificationTime
        status.accessTimeMs = node.accessTime
        status.fileID = UInt64(index) + Self.firstFileId
        if node.isDirectory {
            status.childrenCount = UInt32(node.children?.count ?? 0)
        } else {
            status.length = fileLength(node)
            status.replication = UInt32(node.replication)
            status.blockSize = node.blockSize
            status.underConstruction = writers[index] != nil
        }
        return status
    }

    func fileLength(_ node: INode) -> UInt64 {
        var length: UInt64 = 0
        for id in node.blocks { length += blocks[id]?.numBytes ?? 0 }
        return length
    }

    /// Children of a directory in byte order of their names, after `startAfter`, at most `limit`.
    /// Listing a file gives the file itself.
    public mutating func listing(
        _ path: String, startAfter: String, limit: Int, caller: Caller
    ) throws(RemoteException) -> (status: Strata_Wire_FileStatus, entries: [Strata_Wire_FileStatus], remaining: Int) {
        let resolution = try resolve(path)
        try checkTraverse(caller, resolution)
        guard let target = resolution.target else {
            throw RemoteException(.fileNotFound, "File \(resolution.path) does not exist.")
        }
        let directoryPath = resolution.path
        let status = fileStatus(target, path: directoryPath)
        guard inodes[Int(target)].isDirectory else { return (status, [status], 0) }
        try check(caller, .readExecute, target, path: directoryPath)
        let names = sortedNames(of: target)
        var start = 0
        if !startAfter.isEmpty {
            // Binary search for the first name after `startAfter`.
            var low = 0
            var high = names.count
            while low < high {
                let middle = (low + high) / 2
                if Self.byteOrder(startAfter, names[middle]) {
                    high = middle
                } else {
                    low = middle + 1
                }
            }
            start = low
        }
        let end = min(names.count, start + max(0, limit))
        let children = inodes[Int(target)].children!
        let prefix = directoryPath == "/" ? "/" : directoryPath + "/"
        let entries = names[start..<end].map { fileStatus(children[$0]!, path: prefix + $0) }
        return (status, entries, names.count - end)
    }

    mutating func sortedNames(of directory: UInt32) -> [String] {
        if let cached = sortedChildren[directory] { return cached }
        let names = inodes[Int(directory)].children!.keys.sorted(by: Self.byteOrder)
        sortedChildren[directory] = names
        return names
    }

    /// HDFS orders names by their UTF-8 bytes.
    static func byteOrder(_ left: String, _ right: String) -> Bool {
        left.utf8.lexicographicallyPrecedes(right.utf8)
    }

    /// Totals for the subtree at `path`; `storedBytes` gives the bytes a block takes on disk over
    /// all its replicas. The whole subtree at once: the name node goes a chunk at a time
    /// (`addToContentSummary`).
    public func contentSummary(
        _ path: String, caller: Caller, storedBytes: (UInt64) -> UInt64
    ) throws(RemoteException) -> Strata_Wire_ContentSummary {
        var walk = try beginWalk(path, caller: caller)
        var summary = Strata_Wire_ContentSummary()
        summary.quota = -1
        summary.spaceQuota = -1
        while try addToContentSummary(&summary, walk: &walk, limit: .max, caller: caller, storedBytes: storedBytes) {}
        return summary
    }

    /// The blocks of a readable file, with their raw offsets.
    public func blockList(_ path: String, caller: Caller) throws(RemoteException) -> (
        length: UInt64, blocks: [(id: UInt64, offset: UInt64, record: BlockRecordView)], underConstruction: Bool
    ) {
        let resolution = try resolve(path)
        try checkTraverse(caller, resolution)
        guard let target = resolution.target else { throw RemoteException.fileNotFound(resolution.path) }
        let node = inodes[Int(target)]
        guard !node.isDirectory else {
            throw RemoteException(.fileNotFound, "Path is not a file: \(resolution.path)")
        }
        try check(caller, .read, target, path: resolution.path)
        var offset: UInt64 = 0
        var list: [(UInt64, UInt64, BlockRecordView)] = []
        for id in node.blocks {
            let record = blocks[id]!
            list.append((id, offset, view(id, record)))
            offset += record.numBytes
        }
        return (offset, list, writers[target] != nil)
    }

    /// Every block id with its owning file's replication: what the replication monitor checks.
    public func forEachBlock(_ body: (UInt64, BlockRecordView, _ replication: Int) -> Void) {
        for (id, record) in blocks {
            body(id, view(id, record), Int(inodes[Int(record.inode)].replication))
        }
    }

    /// The id of the first block a namespace allocates; ids grow from there, so every block's id
    /// lies in `firstBlockId..<nextBlockId`.
    public static let firstBlockId: UInt64 = 1 << 30

    /// The blocks whose ids lie in `ids`, with their files' replication, in id order: one chunk
    /// of a scan that walks the ids a range at a time (a scan that must not hold the name node's
    /// lock for every block at once).
    public func blocks(inIds ids: Range<UInt64>) -> [(UInt64, BlockRecordView, Int)] {
        var found: [(UInt64, BlockRecordView, Int)] = []
        for id in ids {
            if let record = blocks[id] { found.append((id, view(id, record), Int(inodes[Int(record.inode)].replication))) }
        }
        return found
    }

    public func block(_ id: UInt64) -> BlockRecordView? {
        blocks[id].map { view(id, $0) }
    }

    func view(_ id: UInt64, _ record: BlockRecord) -> BlockRecordView {
        BlockRecordView(record, appendBaseStamp: record.isComplete ? nil : appendBaseStamps[id])
    }

    /// The path of the file owning a block (for fsck and logs).
    public func path(ofBlock id: UInt64) -> String? {
        guard let record = blocks[id] else { return nil }
        return path(of: record.inode)
    }

    func path(of index: UInt32) -> String {
        var parts: [String] = []
        var current = index
        while current != Self.rootIndex {
            parts.append(inodes[Int(current)].name)
            current = inodes[Int(current)].parent
        }
        return PathName.normalized(parts.reversed())
    }

    /// The client writing `path`, if it is open for writing.
    public func writer(of path: String) -> String? {
        guard let resolution = try? resolve(path), let target = resolution.target else { return nil }
        return writers[target]
    }

    /// Files open for writing: inode and lease holder.
    var openFiles: [(index: UInt32, holder: String)] {
        writers.map { ($0.key, $0.value) }
    }
}

/// A read-only view of a block's persistent facts.
public struct BlockRecordView: Sendable, Equatable {
    public var generationStamp: UInt64
    public var numBytes: UInt64
    public var isComplete: Bool
    /// The oldest generation stamp a replica of the block may carry and still hold its data:
    /// the stamp from before an append that has not reopened the replicas yet, or else
    /// `generationStamp`.
    public var oldestValidStamp: UInt64

    init(_ record: BlockRecord, appendBaseStamp: UInt64? = nil) {
        generationStamp = record.generationStamp
        numBytes = record.numBytes
        isComplete = record.isComplete
        oldestValidStamp = record.isComplete ? record.generationStamp : min(appendBaseStamp ?? record.generationStamp, record.generationStamp)
    }
}
