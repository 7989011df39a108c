import StrataCore
import StrataWire

/// A walk over the files and directories of a subtree that goes a chunk of inodes at a time, so
/// that the name node can let go of its lock between chunks (fsck, content summary; HDFS yields
/// its lock the same way every `dfs.content-summary.limit` items).
///
/// It keeps an explicit stack of the directories it is in, each with the names its children had
/// when the walk entered it and how many of them it has visited. Between chunks the namespace
/// may change: a directory on the stack is found again by its path, and one removed or renamed
/// since is left; a child removed since is skipped, one added is not seen. On a namespace that
/// does not change, every inode of the subtree is visited exactly once, whatever the chunk size.
public struct SubtreeWalk: Sendable {
    struct Directory: Sendable {
        var components: [String]
        var path: String
        /// The directory's inode, as found in the current chunk (`checkedInChunk`).
        var index: UInt32
        var checkedInChunk: Int
        var childNames: [String]
        var visitedChildren = 0
    }

    /// The subtree's root, until the first chunk visits it.
    var root: (components: [String], path: String)?
    var stack: [Directory] = []
    var chunk = 0

    /// Whether every inode was visited.
    public var isFinished: Bool { root == nil && stack.isEmpty }
}

extension Namespace {
    /// One inode a walk visits.
    struct WalkedInode {
        var index: UInt32
        /// The path of its directory, or its own for the subtree's root (`name` empty).
        var directoryPath: String
        var name: String

        /// Built when asked for: a content summary needs no file's path.
        var path: String {
            if name.isEmpty { return directoryPath }
            return directoryPath == "/" ? "/" + name : directoryPath + "/" + name
        }
    }

    /// Starts a walk of the subtree at `path` (or of `path` alone if it is a file). The caller
    /// must be able to reach it; nothing is visited yet.
    public func beginWalk(_ path: String, caller: Caller) throws(RemoteException) -> SubtreeWalk {
        let resolution = try resolve(path)
        try checkTraverse(caller, resolution)
        guard resolution.target != nil else { throw RemoteException.fileNotFound(resolution.path) }
        return SubtreeWalk(root: (resolution.components, resolution.path))
    }

    /// Visits the next inodes of a walk, at most `limit` (children looked up, found or not),
    /// directories before what they hold; returns whether the walk goes on. An error `visit`
    /// throws ends the walk.
    func continueWalk(
        _ walk: inout SubtreeWalk, limit: Int, visit: (WalkedInode) throws(RemoteException) -> Void
    ) throws(RemoteException) -> Bool {
        walk.chunk += 1
        var budget = max(1, limit)
        if let root = walk.root {
            walk.root = nil
            guard let target = resolve(components: root.components).target else { return false }
            budget -= 1
            try enter(WalkedInode(index: target, directoryPath: root.path, name: ""), components: root.components, walk: &walk, visit: visit)
        }
        while budget > 0, let top = walk.stack.indices.last {
            if walk.stack[top].checkedInChunk != walk.chunk {
                // The namespace may have changed since the last chunk: find the directory again.
                guard let index = resolve(components: walk.stack[top].components).target, inodes[Int(index)].isDirectory else {
                    walk.stack.removeLast()
                    continue
                }
                walk.stack[top].index = index
                walk.stack[top].checkedInChunk = walk.chunk
            }
            let directory = walk.stack[top]
            guard directory.visitedChildren < directory.childNames.count else {
                walk.stack.removeLast()
                continue
            }
            let name = directory.childNames[directory.visitedChildren]
            walk.stack[top].visitedChildren += 1
            // A name looked up counts even if its child is gone: a chunk stays bounded.
            budget -= 1
            guard let child = inodes[Int(directory.index)].children?[name] else { continue }
            try enter(WalkedInode(index: child, directoryPath: directory.path, name: name), components: directory.components, walk: &walk, visit: visit)
        }
        return !walk.isFinished
    }

    /// Visits an inode; a directory goes on the stack, to have its children visited next.
    /// `components` are those of the inode's directory (its own for the root).
    private func enter(
        _ inode: WalkedInode, components: [String], walk: inout SubtreeWalk, visit: (WalkedInode) throws(RemoteException) -> Void
    ) throws(RemoteException) {
        try visit(inode)
        guard let children = inodes[Int(inode.index)].children else { return }
        walk.stack.append(
            SubtreeWalk.Directory(
                components: inode.name.isEmpty ? components : components + [inode.name], path: inode.path, index: inode.index,
                checkedInChunk: walk.chunk, childNames: Array(children.keys)))
    }

    /// Adds the next inodes of a walk, at most `limit`, to a content summary; returns whether the
    /// walk goes on. Every directory must be readable and searchable by the caller (as HDFS
    /// checks each one as it goes). `storedBytes` gives the bytes a block takes on disk over all
    /// its replicas.
    public func addToContentSummary(
        _ summary: inout Strata_Wire_ContentSummary, walk: inout SubtreeWalk, limit: Int, caller: Caller,
        storedBytes: (UInt64) -> UInt64
    ) throws(RemoteException) -> Bool {
        try continueWalk(&walk, limit: limit) { (inode) throws(RemoteException) in
            let node = inodes[Int(inode.index)]
            if node.isDirectory {
                try check(caller, .readExecute, inode.index, path: inode.path)
                summary.directoryCount += 1
            } else {
                summary.fileCount += 1
                let length = fileLength(node)
                summary.length += length
                summary.spaceConsumed += length * UInt64(node.replication)
                for id in node.blocks { summary.storedBytes += storedBytes(id) }
            }
        }
    }
}
