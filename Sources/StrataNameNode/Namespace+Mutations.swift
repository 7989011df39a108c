import StrataCore
import StrataWire

public typealias Edit = Strata_Journal_Edit

/// A journal edit that does not fit the namespace it is applied to: the journal and the image
/// disagree, and the name node must not start from them.
public struct ReplayError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { "journal replay failed: \(message)" }
}

extension Namespace {
    // MARK: - Preparing mutations (checks, then edits)

    /// `mkdir` (with `createParent`, `mkdir -p`). An existing directory is success with no edits.
    public func prepareMkdirs(
        _ path: String, permission: UInt16, createParent: Bool, caller: Caller, now: Int64
    ) throws(RemoteException) -> [Edit] {
        let resolution = try resolve(path)
        try checkTraverse(caller, resolution)
        if let target = resolution.target {
            if inodes[Int(target)].isDirectory { return [] }
            throw RemoteException(.fileAlreadyExists, "Path is not a directory: \(resolution.path)")
        }
        let parent = try existingParentDirectory(resolution)
        let missing = resolution.components.count - (resolution.indices.count - 1)
        if missing > 1 && !createParent {
            throw RemoteException(
                .fileNotFound,
                "Parent directory doesn't exist: \(PathName.normalized(Array(resolution.components.dropLast())))")
        }
        try check(caller, .writeExecute, parent, path: PathName.normalized(Array(resolution.components.prefix(resolution.indices.count - 1))))
        let group = strings.name(inodes[Int(parent)].group)
        return (resolution.indices.count...resolution.components.count).map { length in
            var mkdir = Strata_Journal_Mkdir()
            mkdir.path = PathName.normalized(Array(resolution.components.prefix(length)))
            // Directories made along the way are writable and searchable by their owner (HDFS).
            mkdir.permission = UInt32(length == resolution.components.count ? permission : permission | 0o300)
            mkdir.owner = caller.user
            mkdir.group = group
            mkdir.timeMs = now
            var edit = Edit()
            edit.mkdir = mkdir
            return edit
        }
    }

    /// The deepest existing inode on the path, which must be a directory for anything to be made below it.
    func existingParentDirectory(_ resolution: Resolution) throws(RemoteException) -> UInt32 {
        let deepest = resolution.deepest
        guard inodes[Int(deepest)].isDirectory else {
            throw RemoteException(
                .parentNotDirectory,
                "\(PathName.normalized(Array(resolution.components.prefix(resolution.indices.count - 1)))) (is not a directory)")
        }
        return deepest
    }

    /// `create`: a new file open for writing by `clientName` (replacing an existing file with `overwrite`).
    public func prepareCreate(
        _ path: String, permission: UInt16, overwrite: Bool, createParent: Bool, replication: Int, blockSize: UInt64,
        clientName: String, caller: Caller, now: Int64
    ) throws(RemoteException) -> [Edit] {
        guard (1...Limits.maximumReplication).contains(replication) else {
            throw RemoteException.illegalArgument(
                "Requested replication factor of \(replication) is outside the allowed range 1...\(Limits.maximumReplication) for \(path)")
        }
        guard blockSize % INode.blockSizeUnit == 0, blockSize / INode.blockSizeUnit <= UInt64(UInt32.max) else {
            throw RemoteException.illegalArgument(
                "Invalid values: dfs.bytes-per-checksum (=512) must divide block size (=\(blockSize)).")
        }
        guard blockSize >= Limits.minimumBlockSizeBytes else {
            throw RemoteException.illegalArgument(
                "Specified block size is less than configured minimum value (dfs.namenode.fs-limits.min-block-size): \(blockSize) < \(Limits.minimumBlockSizeBytes)")
        }
        let resolution = try resolve(path)
        try checkTraverse(caller, resolution)
        if resolution.components.isEmpty {
            throw RemoteException(.fileAlreadyExists, "/ already exists as a directory")
        }
        var edits: [Edit] = []
        if let target = resolution.target {
            let node = inodes[Int(target)]
            if node.isDirectory {
                throw RemoteException(.fileAlreadyExists, "\(resolution.path) already exists as a directory")
            }
            if let holder = writers[target] {
                throw RemoteException(
                    .alreadyBeingCreated,
                    "Failed to CREATE_FILE \(resolution.path) for \(clientName) because this file lease is currently owned by \(holder)")
            }
            if !overwrite {
                throw RemoteException(.fileAlreadyExists, "\(resolution.path) for client \(clientName) already exists")
            }
            let parent = resolution.indices[resolution.indices.count - 2]
            try check(caller, .writeExecute, parent, path: PathName.normalized(resolution.components.dropLast()))
            try checkSticky(caller, parent: parent, child: target, path: resolution.path)
        } else {
            let parentComponents = Array(resolution.components.dropLast())
            if resolution.indices.count < resolution.components.count {
                // Some parent directories are missing.
                _ = try existingParentDirectory(resolution)
                guard createParent else {
                    throw RemoteException(.fileNotFound, "Parent directory doesn't exist: \(PathName.normalized(parentComponents))")
                }
                edits = try prepareMkdirs(PathName.normalized(parentComponents), permission: 0o755, createParent: true, caller: caller, now: now)
            } else {
                let parent = try existingParentDirectory(resolution)
                try check(caller, .writeExecute, parent, path: PathName.normalized(parentComponents))
            }
        }
        let parentGroup = strings.name(inodes[Int(resolution.indices[min(resolution.indices.count, resolution.components.count) - 1])].group)
        var create = Strata_Journal_CreateFile()
        create.path = resolution.path
        create.permission = UInt32(permission)
        create.owner = caller.user
        create.group = edits.last?.mkdir.group ?? parentGroup
        create.timeMs = now
        create.replication = UInt32(replication)
        create.blockSize = blockSize
        create.clientName = clientName
        create.overwrite = resolution.target != nil
        var edit = Edit()
        edit.createFile = create
        edits.append(edit)
        return edits
    }

    /// The file at `path`, which `clientName` must hold open for writing.
    func openFile(_ path: String, clientName: String) throws(RemoteException) -> (index: UInt32, path: String) {
        let resolution = try resolve(path)
        guard let target = resolution.target, !inodes[Int(target)].isDirectory else {
            throw RemoteException(
                .leaseExpired,
                "No lease on \(resolution.path): File does not exist. Holder \(clientName) does not have any open files.")
        }
        guard let holder = writers[target] else {
            throw RemoteException(.leaseExpired, "No lease on \(resolution.path): File is not open for writing.")
        }
        guard holder == clientName else {
            throw RemoteException(
                .leaseExpired, "No lease on \(resolution.path): \(clientName) is not the lease holder (\(holder) is).")
        }
        return (target, resolution.path)
    }

    /// The next block of a file being written; `previous` is its current last block with the
    /// length the writer reached.
    public func prepareAddBlock(
        _ path: String, clientName: String, previous: Strata_Wire_ExtendedBlock?
    ) throws(RemoteException) -> Edit {
        let file = try openFile(path, clientName: clientName)
        let last = inodes[Int(file.index)].blocks.last
        var addBlock = Strata_Journal_AddBlock()
        addBlock.path = file.path
        if let last {
            guard let previous, previous.blockID == last else {
                throw RemoteException.io(
                    "addBlock for \(file.path): previous block \(previous.map { "\($0.blockID)" } ?? "none") is not the file's last block \(last)")
            }
            try checkCommittedStamp(previous, recorded: blocks[last]!)
            var reference = Strata_Journal_BlockRef()
            reference.blockID = last
            reference.generationStamp = blocks[last]!.generationStamp
            reference.numBytes = previous.numBytes
            addBlock.previous = reference
        }
        addBlock.block.blockID = nextBlockId
        addBlock.block.generationStamp = nextGenerationStamp
        var edit = Edit()
        edit.addBlock = addBlock
        return edit
    }

    /// A writer commits a block only under the generation stamp the name node has for it: one
    /// with an older stamp missed a pipeline recovery (HDFS refuses it the same way).
    func checkCommittedStamp(_ committed: Strata_Wire_ExtendedBlock, recorded: BlockRecord) throws(RemoteException) {
        guard committed.generationStamp == recorded.generationStamp else {
            throw RemoteException.io(
                "Commit block with mismatching GS. NN has blk_\(committed.blockID)_\(recorded.generationStamp), "
                    + "client submits blk_\(committed.blockID)_\(committed.generationStamp)")
        }
    }

    /// Gives up the last block of a file being written (its pipeline could not be set up).
    public func prepareAbandonBlock(_ path: String, clientName: String, blockId: UInt64) throws(RemoteException) -> Edit {
        let file = try openFile(path, clientName: clientName)
        guard inodes[Int(file.index)].blocks.last == blockId else {
            throw RemoteException.io("abandonBlock for \(file.path): block \(blockId) is not the file's last block")
        }
        var abandon = Strata_Journal_AbandonBlock()
        abandon.path = file.path
        abandon.blockID = blockId
        var edit = Edit()
        edit.abandonBlock = abandon
        return edit
    }

    /// Closes a file being written. Nil when it is already closed (a retried `complete`).
    public func prepareComplete(
        _ path: String, clientName: String, last: Strata_Wire_ExtendedBlock?, now: Int64
    ) throws(RemoteException) -> Edit? {
        let resolution = try resolve(path)
        if let target = resolution.target, writers[target] == nil, !inodes[Int(target)].isDirectory {
            return nil
        }
        let file = try openFile(path, clientName: clientName)
        var close = Strata_Journal_CloseFile()
        close.path = file.path
        close.timeMs = now
        if let lastId = inodes[Int(file.index)].blocks.last {
            guard let last, last.blockID == lastId else {
                throw RemoteException.io("complete for \(file.path): last block \(last.map { "\($0.blockID)" } ?? "none") is not the file's last block \(lastId)")
            }
            try checkCommittedStamp(last, recorded: blocks[lastId]!)
            var reference = Strata_Journal_BlockRef()
            reference.blockID = lastId
            reference.generationStamp = blocks[lastId]!.generationStamp
            reference.numBytes = last.numBytes
            close.last = reference
        }
        var edit = Edit()
        edit.closeFile = close
        return edit
    }

    /// Deletes a file or directory. Nil when nothing is at `path` (HDFS `delete` returns false).
    public func prepareDelete(_ path: String, recursive: Bool, caller: Caller, now: Int64) throws(RemoteException) -> Edit? {
        let resolution = try resolve(path)
        try checkTraverse(caller, resolution)
        guard let target = resolution.target else { return nil }
        guard target != Self.rootIndex else {
            throw RemoteException.io("Cannot delete the root directory /")
        }
        let node = inodes[Int(target)]
        if let children = node.children, !children.isEmpty, !recursive {
            throw RemoteException(.pathIsNotEmptyDirectory, "`\(resolution.path) is non empty': Directory is not empty")
        }
        let parent = node.parent
        try check(caller, .writeExecute, parent, path: PathName.normalized(resolution.components.dropLast()))
        try checkSticky(caller, parent: parent, child: target, path: resolution.path)
        if node.isDirectory { try checkSubtree(caller, .all, target, path: resolution.path) }
        var delete = Strata_Journal_Delete()
        delete.path = resolution.path
        delete.timeMs = now
        var edit = Edit()
        edit.delete = delete
        return edit
    }

    /// Renames `source` to exactly `destination` (HDFS `rename2`): the destination's parent must
    /// exist; an existing destination is replaced only with `overwrite`, and only by the same kind
    /// (a file by a file, an empty directory by a directory).
    public func prepareRename(
        _ source: String, to destination: String, overwrite: Bool, caller: Caller, now: Int64
    ) throws(RemoteException) -> Edit {
        let from = try resolve(source)
        let to = try resolve(destination)
        try checkTraverse(caller, from)
        try checkTraverse(caller, to)
        guard let sourceIndex = from.target else {
            throw RemoteException(.fileNotFound, "rename source \(from.path) is not found.")
        }
        guard sourceIndex != Self.rootIndex else { throw RemoteException.io("rename source cannot be the root") }
        if from.path == to.path {
            throw RemoteException(.fileAlreadyExists, "The source \(from.path) and destination \(to.path) are the same")
        }
        if to.components.count > from.components.count, Array(to.components.prefix(from.components.count)) == from.components {
            throw RemoteException.io("Cannot rename \(from.path) to its own subdirectory \(to.path)")
        }
        guard to.indices.count >= to.components.count else {
            throw RemoteException(.fileNotFound, "rename destination parent \(PathName.normalized(to.components.dropLast())) not found.")
        }
        let destinationParent = to.indices[to.components.count - 1]
        guard inodes[Int(destinationParent)].isDirectory else {
            throw RemoteException(.parentNotDirectory, "rename destination parent \(PathName.normalized(to.components.dropLast())) is a file.")
        }
        let sourceIsDirectory = inodes[Int(sourceIndex)].isDirectory
        if let existing = to.target {
            if existing == Self.rootIndex { throw RemoteException.io("rename destination cannot be the root") }
            guard overwrite else {
                throw RemoteException(.fileAlreadyExists, "rename destination \(to.path) already exists.")
            }
            let existingNode = inodes[Int(existing)]
            if existingNode.isDirectory != sourceIsDirectory {
                throw RemoteException.io(
                    sourceIsDirectory
                        ? "Source \(from.path) is a directory but destination \(to.path) is a file."
                        : "Source \(from.path) is a file but destination \(to.path) is a directory.")
            }
            if let children = existingNode.children, !children.isEmpty {
                throw RemoteException.io("rename destination directory is not empty: \(to.path)")
            }
            try checkSticky(caller, parent: destinationParent, child: existing, path: to.path)
        }
        let sourceParent = inodes[Int(sourceIndex)].parent
        try check(caller, .writeExecute, sourceParent, path: PathName.normalized(from.components.dropLast()))
        try check(caller, .writeExecute, destinationParent, path: PathName.normalized(to.components.dropLast()))
        try checkSticky(caller, parent: sourceParent, child: sourceIndex, path: from.path)
        var rename = Strata_Journal_Rename()
        rename.source = from.path
        rename.destination = to.path
        rename.overwrite = to.target != nil
        rename.timeMs = now
        var edit = Edit()
        edit.rename = rename
        return edit
    }

    /// Sets a file's replication. Nil for a directory (HDFS returns false and changes nothing).
    public func prepareSetReplication(_ path: String, replication: Int, caller: Caller) throws(RemoteException) -> Edit? {
        guard (1...Limits.maximumReplication).contains(replication) else {
            throw RemoteException.illegalArgument("Requested replication factor of \(replication) is outside 1...\(Limits.maximumReplication)")
        }
        let resolution = try resolve(path)
        try checkTraverse(caller, resolution)
        guard let target = resolution.target else { throw RemoteException.fileNotFound(resolution.path) }
        if inodes[Int(target)].isDirectory { return nil }
        try check(caller, .write, target, path: resolution.path)
        var set = Strata_Journal_SetReplication()
        set.path = resolution.path
        set.replication = UInt32(replication)
        var edit = Edit()
        edit.setReplication = set
        return edit
    }

    /// Only the owner or a superuser may change an inode's mode.
    public func prepareSetPermission(_ path: String, permission: UInt16, caller: Caller) throws(RemoteException) -> Edit {
        guard permission <= 0o1777 else { throw RemoteException.illegalArgument("permission \(String(permission, radix: 8)) is not a valid mode") }
        let (target, normalized) = try existing(path, caller: caller)
        try checkOwner(caller, target, path: normalized)
        var set = Strata_Journal_SetPermission()
        set.path = normalized
        set.permission = UInt32(permission)
        var edit = Edit()
        edit.setPermission = set
        return edit
    }

    /// Only a superuser may change an owner; the owner may change the group to one of its own.
    public func prepareSetOwner(_ path: String, owner: String, group: String, caller: Caller) throws(RemoteException) -> Edit {
        let (target, normalized) = try existing(path, caller: caller)
        let node = inodes[Int(target)]
        try checkOwner(caller, target, path: normalized)
        if settings.permissionsEnabled && !isSuperuser(caller) {
            if !owner.isEmpty && owner != strings.name(node.owner) {
                throw RemoteException.accessDenied("Non-super user cannot change owner")
            }
            if !group.isEmpty && !caller.groups.contains(group) {
                throw RemoteException.accessDenied("User \(caller.user) does not belong to \(group)")
            }
        }
        var set = Strata_Journal_SetOwner()
        set.path = normalized
        set.owner = owner.isEmpty ? strings.name(node.owner) : owner
        set.group = group.isEmpty ? strings.name(node.group) : group
        var edit = Edit()
        edit.setOwner = set
        return edit
    }

    /// Sets modification and/or access time (-1 leaves one as it is); needs WRITE access.
    public func prepareSetTimes(_ path: String, modificationTime: Int64, accessTime: Int64, caller: Caller) throws(RemoteException) -> Edit {
        let (target, normalized) = try existing(path, caller: caller)
        try check(caller, .write, target, path: normalized)
        let node = inodes[Int(target)]
        var set = Strata_Journal_SetTimes()
        set.path = normalized
        set.modificationTimeMs = modificationTime < 0 ? node.modificationTime : modificationTime
        set.accessTimeMs = accessTime < 0 ? node.accessTime : accessTime
        var edit = Edit()
        edit.setTimes = set
        return edit
    }

    /// Opens an existing file for append by `clientName`. The edit gives a partly filled last
    /// block a new generation stamp, so replicas from before the append can be told apart.
    public func prepareAppend(_ path: String, clientName: String, caller: Caller, now: Int64) throws(RemoteException) -> Edit {
        let resolution = try resolve(path)
        try checkTraverse(caller, resolution)
        guard let target = resolution.target else {
            throw RemoteException(.fileNotFound, "Failed to append to non-existent file \(resolution.path) for client \(clientName)")
        }
        let node = inodes[Int(target)]
        if node.isDirectory {
            throw RemoteException(.fileNotFound, "Failed to append to non-file \(resolution.path): it is a directory")
        }
        if let holder = writers[target] {
            throw RemoteException(
                .alreadyBeingCreated,
                "Failed to APPEND_FILE \(resolution.path) for \(clientName) because this file lease is currently owned by \(holder)")
        }
        try check(caller, .write, target, path: resolution.path)
        var reopen = Strata_Journal_ReopenFile()
        reopen.path = resolution.path
        reopen.clientName = clientName
        reopen.timeMs = now
        if let last = node.blocks.last, let record = blocks[last], record.numBytes < node.blockSize {
            var reference = Strata_Journal_BlockRef()
            reference.blockID = last
            reference.generationStamp = nextGenerationStamp
            reference.numBytes = record.numBytes
            reopen.last = reference
        }
        var edit = Edit()
        edit.reopenFile = reopen
        return edit
    }

    func existing(_ path: String, caller: Caller) throws(RemoteException) -> (UInt32, String) {
        let resolution = try resolve(path)
        try checkTraverse(caller, resolution)
        guard let target = resolution.target else { throw RemoteException.fileNotFound(resolution.path) }
        return (target, resolution.path)
    }

    func checkOwner(_ caller: Caller, _ index: UInt32, path: String) throws(RemoteException) {
        guard settings.permissionsEnabled, !isSuperuser(caller) else { return }
        if caller.user != strings.name(inodes[Int(index)].owner) {
            throw RemoteException.accessDenied("user=\(caller.user) is not the owner of inode=\(path)")
        }
    }
}

// MARK: - Legacy rename, concat, truncate

extension Namespace {
    /// HDFS's original `rename` (WebHDFS `RENAME`): a destination that is an existing directory
    /// receives the source inside it; an existing destination, a missing source or destination
    /// parent, or a destination under the source give `false` (nil edit) rather than an error.
    /// Permission failures still throw.
    public func prepareLegacyRename(
        _ source: String, to destination: String, caller: Caller, now: Int64
    ) throws(RemoteException) -> (edit: Edit?, result: Bool) {
        let from = try resolve(source)
        var to = try resolve(destination)
        try checkTraverse(caller, from)
        try checkTraverse(caller, to)
        guard let sourceIndex = from.target, sourceIndex != Self.rootIndex, let sourceName = from.components.last else {
            return (nil, false)
        }
        if let existing = to.target, inodes[Int(existing)].isDirectory {
            to = resolve(components: to.components + [sourceName])
            try checkTraverse(caller, to)
        }
        if to.path == from.path { return (nil, true) }
        if to.components.count > from.components.count, Array(to.components.prefix(from.components.count)) == from.components {
            return (nil, false)
        }
        if to.target != nil { return (nil, false) }
        guard to.indices.count >= to.components.count else { return (nil, false) }
        let destinationParent = to.indices[to.components.count - 1]
        guard inodes[Int(destinationParent)].isDirectory else { return (nil, false) }
        let sourceParent = inodes[Int(sourceIndex)].parent
        try check(caller, .writeExecute, sourceParent, path: PathName.normalized(from.components.dropLast()))
        try check(caller, .writeExecute, destinationParent, path: PathName.normalized(to.components.dropLast()))
        try checkSticky(caller, parent: sourceParent, child: sourceIndex, path: from.path)
        var rename = Strata_Journal_Rename()
        rename.source = from.path
        rename.destination = to.path
        rename.overwrite = false
        rename.timeMs = now
        var edit = Edit()
        edit.rename = rename
        return (edit, true)
    }

    /// HDFS `concat`: moves the blocks of `sources`, in order, to the end of `target` and removes
    /// the sources. Target and sources are closed files with the same block size; every block but
    /// the very last of the result must be full (the block list stays one of whole blocks plus a
    /// tail, as HDFS requires), and each source holds at least one block.
    public func prepareConcat(_ target: String, sources: [String], caller: Caller, now: Int64) throws(RemoteException) -> Edit {
        guard !sources.isEmpty else {
            throw RemoteException(.hadoopIllegalArgument, "concat: no source files given for target \(target)")
        }
        let targetResolution = try resolve(target)
        try checkTraverse(caller, targetResolution)
        guard let targetIndex = targetResolution.target else { throw RemoteException.fileNotFound(targetResolution.path) }
        let targetNode = inodes[Int(targetIndex)]
        guard !targetNode.isDirectory else {
            throw RemoteException(.fileNotFound, "Path is not a file: \(targetResolution.path)")
        }
        if writers[targetIndex] != nil {
            throw RemoteException(.hadoopIllegalArgument, "concat: target file \(targetResolution.path) is under construction")
        }
        try check(caller, .write, targetIndex, path: targetResolution.path)
        var seen: Set<UInt32> = []
        var normalizedSources: [String] = []
        var previousPath = targetResolution.path
        var previousBlocks = targetNode.blocks.array
        for source in sources {
            let resolution = try resolve(source)
            try checkTraverse(caller, resolution)
            guard let index = resolution.target else { throw RemoteException.fileNotFound(resolution.path) }
            let node = inodes[Int(index)]
            guard !node.isDirectory else {
                throw RemoteException(.fileNotFound, "Path is not a file: \(resolution.path)")
            }
            if index == targetIndex {
                throw RemoteException(
                    .hadoopIllegalArgument, "concat: the src file \(resolution.path) is the same with the target file \(targetResolution.path)")
            }
            guard seen.insert(index).inserted else {
                throw RemoteException(.hadoopIllegalArgument, "concat: at least two of the source files are the same")
            }
            if writers[index] != nil || node.blocks.isEmpty {
                throw RemoteException(
                    .hadoopIllegalArgument, "concat: source file \(resolution.path) is invalid or empty or underConstruction")
            }
            if node.blockSize != targetNode.blockSize {
                throw RemoteException(
                    .hadoopIllegalArgument,
                    "concat: the source file \(resolution.path) and the target file \(targetResolution.path) should have the same block sizes: "
                        + "target block size is \(targetNode.blockSize) but the source file has block size \(node.blockSize)")
            }
            try check(caller, .read, index, path: resolution.path)
            try check(caller, .writeExecute, node.parent, path: PathName.normalized(resolution.components.dropLast()))
            try checkSticky(caller, parent: node.parent, child: index, path: resolution.path)
            // Everything before this source's first block must be whole blocks.
            if let partial = previousBlocks.first(where: { (blocks[$0]?.numBytes ?? 0) != targetNode.blockSize }) {
                throw RemoteException(
                    .hadoopIllegalArgument,
                    "concat: block \(partial) of \(previousPath) is not full (\(blocks[partial]?.numBytes ?? 0) of \(targetNode.blockSize) bytes); "
                        + "only the last source may end in a partial block")
            }
            previousPath = resolution.path
            previousBlocks = node.blocks.array
            normalizedSources.append(resolution.path)
        }
        var concat = Strata_Journal_Concat()
        concat.target = targetResolution.path
        concat.sources = normalizedSources
        concat.timeMs = now
        var edit = Edit()
        edit.concat = concat
        return edit
    }

    /// HDFS `truncate` to `newLength` bytes. On a block boundary the blocks after it go. Inside a
    /// block, the kept bytes of the cut block must already be in `replacement`: a closed file the
    /// caller wrote in the same directory, with one block of exactly those bytes, which takes the
    /// cut block's place (the name node moves no data). `cutBlock` is the block the caller read
    /// those bytes from; a file changed since is refused. Returns no edit when the file already
    /// has that length. The result is HDFS's: true, the file is ready at its new length.
    public func prepareTruncate(
        _ path: String, newLength: UInt64, replacement: String, cutBlock: Strata_Wire_ExtendedBlock?, caller: Caller, now: Int64
    ) throws(RemoteException) -> Edit? {
        let resolution = try resolve(path)
        try checkTraverse(caller, resolution)
        guard let target = resolution.target else { throw RemoteException.fileNotFound(resolution.path) }
        let node = inodes[Int(target)]
        guard !node.isDirectory else {
            throw RemoteException(.fileNotFound, "Path is not a file: \(resolution.path)")
        }
        if let holder = writers[target] {
            throw RemoteException(
                .alreadyBeingCreated,
                "Failed to TRUNCATE_FILE \(resolution.path) because this file lease is currently owned by \(holder)")
        }
        try check(caller, .write, target, path: resolution.path)
        let length = fileLength(node)
        guard newLength <= length else {
            throw RemoteException(
                .hadoopIllegalArgument, "Cannot truncate to a larger file size. Current size: \(length), truncate size: \(newLength).")
        }
        if newLength == length { return nil }
        var truncate = Strata_Journal_Truncate()
        truncate.path = resolution.path
        truncate.newLength = newLength
        truncate.timeMs = now
        var blockStart: UInt64 = 0
        for id in node.blocks {
            let size = blocks[id]?.numBytes ?? 0
            if blockStart == newLength { break }
            if newLength < blockStart + size {
                // The cut falls inside this block.
                guard !replacement.isEmpty else {
                    throw RemoteException.io(
                        "truncate of \(resolution.path) to \(newLength) cuts block \(id) inside; the kept bytes must come in a replacement block")
                }
                guard let cutBlock, cutBlock.blockID == id, cutBlock.generationStamp == blocks[id]?.generationStamp else {
                    throw RemoteException.io("truncate of \(resolution.path): the file changed while its last block was being copied; try again")
                }
                let kept = newLength - blockStart
                let replaced = try resolve(replacement)
                try checkTraverse(caller, replaced)
                guard let replacementIndex = replaced.target, replacementIndex != target else {
                    throw RemoteException.fileNotFound(replaced.path)
                }
                let replacementNode = inodes[Int(replacementIndex)]
                guard !replacementNode.isDirectory, writers[replacementIndex] == nil, replacementNode.parent == node.parent,
                    replacementNode.blocks.count == 1, let moved = replacementNode.blocks.last, let record = blocks[moved],
                    record.numBytes == kept
                else {
                    throw RemoteException.illegalArgument(
                        "truncate of \(resolution.path): \(replaced.path) is not a closed file in the same directory with one block of \(kept) bytes")
                }
                try check(caller, .writeExecute, replacementNode.parent, path: PathName.normalized(replaced.components.dropLast()))
                var last = Strata_Journal_BlockRef()
                last.blockID = moved
                last.generationStamp = record.generationStamp
                last.numBytes = kept
                truncate.last = last
                truncate.replacement = replaced.path
                break
            }
            blockStart += size
        }
        var edit = Edit()
        edit.truncate = truncate
        return edit
    }
}
