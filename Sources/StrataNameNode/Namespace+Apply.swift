import StrataWire

extension Namespace {
    /// What applying an edit changed that the rest of the name node must act on.
    public struct Effects: Sendable {
        /// Blocks no longer part of any file: their replicas are to be deleted.
        public var removedBlocks: [UInt64] = []
        /// Blocks that were being written and are now complete, with their final stamp and length.
        public var completedBlocks: [Strata_Journal_BlockRef] = []
    }

    /// Applies one edit. At run time the edit was just prepared, so it fits; during replay a
    /// misfit means the journal is damaged, and is reported rather than guessed around.
    @discardableResult
    public mutating func apply(_ edit: Edit) throws(ReplayError) -> Effects {
        var effects = Effects()
        switch edit.op {
        case .mkdir(let mkdir):
            let (parent, name, existing) = try locate(mkdir.path)
            guard existing == nil else { throw ReplayError(message: "mkdir \(mkdir.path): already exists") }
            _ = insert(
                INode(
                    name: name, parent: parent, isDirectory: true, replication: 0, permission: UInt16(mkdir.permission),
                    owner: strings.intern(mkdir.owner), group: strings.intern(mkdir.group), modificationTime: mkdir.timeMs,
                    accessTime: 0, blockSize: 0, blocks: BlockList(), children: [:]),
                time: mkdir.timeMs)
        case .createFile(let create):
            let (parent, name, existing) = try locate(create.path)
            if let existing {
                guard create.overwrite, !inodes[Int(existing)].isDirectory else {
                    throw ReplayError(message: "create \(create.path): exists")
                }
                effects.removedBlocks += remove(existing, time: create.timeMs)
            }
            let index = insert(
                INode(
                    name: name, parent: parent, isDirectory: false, replication: UInt16(create.replication),
                    permission: UInt16(create.permission), owner: strings.intern(create.owner), group: strings.intern(create.group),
                    modificationTime: create.timeMs, accessTime: create.timeMs, blockSize: create.blockSize, blocks: BlockList(),
                    children: nil),
                time: create.timeMs)
            writers[index] = create.clientName
        case .addBlock(let add):
            let file = try existingFile(add.path)
            if add.hasPrevious {
                guard var previous = blocks[add.previous.blockID], previous.inode == file else {
                    throw ReplayError(message: "addBlock \(add.path): unknown previous block \(add.previous.blockID)")
                }
                previous.numBytes = add.previous.numBytes
                if !previous.isComplete { effects.completedBlocks.append(add.previous) }
                previous.isComplete = true
                blocks[add.previous.blockID] = previous
            }
            let id = add.block.blockID
            guard blocks[id] == nil else { throw ReplayError(message: "addBlock \(add.path): block \(id) exists") }
            blocks[id] = BlockRecord(inode: file, generationStamp: add.block.generationStamp, numBytes: 0, isComplete: false)
            inodes[Int(file)].blocks.append(id)
            nextBlockId = max(nextBlockId, id + 1)
            nextGenerationStamp = max(nextGenerationStamp, add.block.generationStamp + 1)
        case .abandonBlock(let abandon):
            let file = try existingFile(abandon.path)
            guard inodes[Int(file)].blocks.last == abandon.blockID else {
                throw ReplayError(message: "abandonBlock \(abandon.path): \(abandon.blockID) is not the last block")
            }
            inodes[Int(file)].blocks.removeLast()
            blocks[abandon.blockID] = nil
            effects.removedBlocks.append(abandon.blockID)
        case .closeFile(let close):
            let file = try existingFile(close.path)
            if close.hasLast {
                guard var last = blocks[close.last.blockID], last.inode == file else {
                    throw ReplayError(message: "close \(close.path): unknown last block \(close.last.blockID)")
                }
                last.numBytes = close.last.numBytes
                if !last.isComplete { effects.completedBlocks.append(close.last) }
                last.isComplete = true
                blocks[close.last.blockID] = last
            }
            writers[file] = nil
            inodes[Int(file)].modificationTime = close.timeMs
        case .delete(let delete):
            let (_, _, existing) = try locate(delete.path)
            guard let existing else { throw ReplayError(message: "delete \(delete.path): not found") }
            effects.removedBlocks += remove(existing, time: delete.timeMs)
        case .rename(let rename):
            let (_, _, source) = try locate(rename.source)
            guard let source else { throw ReplayError(message: "rename \(rename.source): not found") }
            let (_, _, existing) = try locate(rename.destination)
            if let existing {
                guard rename.overwrite else { throw ReplayError(message: "rename to \(rename.destination): exists") }
                effects.removedBlocks += remove(existing, time: rename.timeMs)
            }
            let (newParent, newName, _) = try locate(rename.destination)
            detach(source, time: rename.timeMs)
            inodes[Int(source)].name = newName
            inodes[Int(source)].parent = newParent
            attach(source, time: rename.timeMs)
        case .setReplication(let set):
            let file = try existingFile(set.path)
            inodes[Int(file)].replication = UInt16(set.replication)
        case .setPermission(let set):
            let index = try existingINode(set.path)
            inodes[Int(index)].permission = UInt16(set.permission)
        case .setOwner(let set):
            let index = try existingINode(set.path)
            inodes[Int(index)].owner = strings.intern(set.owner)
            inodes[Int(index)].group = strings.intern(set.group)
        case .setTimes(let set):
            let index = try existingINode(set.path)
            inodes[Int(index)].modificationTime = set.modificationTimeMs
            inodes[Int(index)].accessTime = set.accessTimeMs
        case .reopenFile(let reopen):
            let file = try existingFile(reopen.path)
            writers[file] = reopen.clientName
            if reopen.hasLast {
                guard var last = blocks[reopen.last.blockID], last.inode == file else {
                    throw ReplayError(message: "append \(reopen.path): unknown last block")
                }
                if last.generationStamp != reopen.last.generationStamp, appendBaseStamps[reopen.last.blockID] == nil {
                    appendBaseStamps[reopen.last.blockID] = last.generationStamp
                }
                last.generationStamp = reopen.last.generationStamp
                last.isComplete = false
                blocks[reopen.last.blockID] = last
                nextGenerationStamp = max(nextGenerationStamp, reopen.last.generationStamp + 1)
            }
        case .updateBlock(let update):
            guard var record = blocks[update.block.blockID] else {
                throw ReplayError(message: "updateBlock \(update.path): unknown block \(update.block.blockID)")
            }
            if record.generationStamp != update.block.generationStamp { appendBaseStamps[update.block.blockID] = nil }
            record.generationStamp = update.block.generationStamp
            record.numBytes = update.block.numBytes
            blocks[update.block.blockID] = record
            nextGenerationStamp = max(nextGenerationStamp, update.block.generationStamp + 1)
        case .reserveGenerationStamp(let reserve):
            nextGenerationStamp = max(nextGenerationStamp, reserve.stamp + 1)
        case .concat(let concat):
            let target = try existingFile(concat.target)
            for source in concat.sources {
                let index = try existingFile(source)
                guard index != target else { throw ReplayError(message: "concat \(concat.target): source is the target") }
                for id in inodes[Int(index)].blocks {
                    guard var record = blocks[id] else { throw ReplayError(message: "concat \(source): unknown block \(id)") }
                    record.inode = target
                    blocks[id] = record
                    inodes[Int(target)].blocks.append(id)
                }
                // The blocks now belong to the target: free the source inode alone.
                inodes[Int(index)].blocks = BlockList()
                _ = remove(index, time: concat.timeMs)
            }
            inodes[Int(target)].modificationTime = concat.timeMs
        case .truncate(let truncate):
            let file = try existingFile(truncate.path)
            var kept = BlockList()
            var keptLength: UInt64 = 0
            var cut = false
            for id in inodes[Int(file)].blocks {
                let size = blocks[id]?.numBytes ?? 0
                // Blocks are kept while they end by the new length; from the first that does not, none.
                cut = cut || keptLength + size > truncate.newLength || (size == 0 && keptLength == truncate.newLength)
                if !cut {
                    kept.append(id)
                    keptLength += size
                } else {
                    blocks[id] = nil
                    effects.removedBlocks.append(id)
                }
            }
            if !truncate.replacement.isEmpty {
                let replacement = try existingFile(truncate.replacement)
                guard inodes[Int(replacement)].blocks.count == 1, inodes[Int(replacement)].blocks.last == truncate.last.blockID,
                    var record = blocks[truncate.last.blockID]
                else {
                    throw ReplayError(message: "truncate \(truncate.path): \(truncate.replacement) does not hold block \(truncate.last.blockID)")
                }
                record.inode = file
                record.numBytes = truncate.last.numBytes
                blocks[truncate.last.blockID] = record
                kept.append(truncate.last.blockID)
                keptLength += truncate.last.numBytes
                inodes[Int(replacement)].blocks = BlockList()
                _ = remove(replacement, time: truncate.timeMs)
            }
            guard keptLength == truncate.newLength else {
                throw ReplayError(message: "truncate \(truncate.path) to \(truncate.newLength): blocks give \(keptLength) bytes")
            }
            inodes[Int(file)].blocks = kept
            inodes[Int(file)].modificationTime = truncate.timeMs
        case .none:
            throw ReplayError(message: "empty edit")
        }
        if !appendBaseStamps.isEmpty {
            for id in effects.removedBlocks { appendBaseStamps[id] = nil }
            for block in effects.completedBlocks { appendBaseStamps[block.blockID] = nil }
        }
        return effects
    }

    /// Applies edits prepared at run time, which fit by construction.
    public mutating func applyPrepared(_ edits: [Edit]) -> Effects {
        var effects = Effects()
        for edit in edits {
            do {
                let applied = try apply(edit)
                effects.removedBlocks += applied.removedBlocks
                effects.completedBlocks += applied.completedBlocks
            } catch {
                preconditionFailure("a prepared edit did not apply: \(error)")
            }
        }
        return effects
    }

    // MARK: - Tree surgery

    /// The parent directory, last name and existing inode (if any) of an edit's path.
    func locate(_ path: String) throws(ReplayError) -> (parent: UInt32, name: String, existing: UInt32?) {
        let components: [String]
        do {
            components = try PathName.components(path)
        } catch {
            throw ReplayError(message: "invalid path \(path)")
        }
        guard let name = components.last else { return (Self.rootIndex, "", Self.rootIndex) }
        let resolution = resolve(components: components)
        guard resolution.indices.count >= components.count else {
            throw ReplayError(message: "\(path): parent does not exist")
        }
        let parent = resolution.indices[components.count - 1]
        guard inodes[Int(parent)].isDirectory else { throw ReplayError(message: "\(path): parent is a file") }
        return (parent, name, resolution.target)
    }

    func existingINode(_ path: String) throws(ReplayError) -> UInt32 {
        guard let index = try locate(path).existing else { throw ReplayError(message: "\(path): not found") }
        return index
    }

    func existingFile(_ path: String) throws(ReplayError) -> UInt32 {
        let index = try existingINode(path)
        guard !inodes[Int(index)].isDirectory else { throw ReplayError(message: "\(path): is a directory") }
        return index
    }

    /// Puts a new inode into the table (reusing a free slot) and links it under its parent.
    mutating func insert(_ node: INode, time: Int64) -> UInt32 {
        let index: UInt32
        if let free = popFreeIndex() {
            index = free
            inodes[Int(free)] = node
        } else {
            index = UInt32(inodes.count)
            inodes.append(node)
        }
        if node.isDirectory { directoryCount += 1 } else { fileCount += 1 }
        attach(index, time: time)
        return index
    }

    mutating func attach(_ index: UInt32, time: Int64) {
        let parent = Int(inodes[Int(index)].parent)
        inodes[parent].children![inodes[Int(index)].name] = index
        inodes[parent].modificationTime = time
        sortedChildren[UInt32(parent)] = nil
    }

    mutating func detach(_ index: UInt32, time: Int64) {
        let parent = Int(inodes[Int(index)].parent)
        inodes[parent].children![inodes[Int(index)].name] = nil
        inodes[parent].modificationTime = time
        sortedChildren[UInt32(parent)] = nil
    }

    /// Unlinks and frees a subtree; returns the blocks its files had.
    mutating func remove(_ index: UInt32, time: Int64) -> [UInt64] {
        detach(index, time: time)
        var removed: [UInt64] = []
        var stack = [index]
        while let current = stack.popLast() {
            let node = inodes[Int(current)]
            if let children = node.children {
                stack.append(contentsOf: children.values)
                directoryCount -= 1
                sortedChildren[current] = nil
            } else {
                fileCount -= 1
                for id in node.blocks {
                    blocks[id] = nil
                    removed.append(id)
                }
                writers[current] = nil
            }
            // Release the slot's heap storage now; the slot is reused by a later insert.
            inodes[Int(current)] = INode(
                name: "", parent: 0, isDirectory: false, replication: 0, permission: 0, owner: 0, group: 0,
                modificationTime: 0, accessTime: 0, blockSize: 0, blocks: BlockList(), children: nil)
            pushFreeIndex(current)
        }
        return removed
    }

    // MARK: - Free inode slots

    // A new inode takes the lowest free slot. Which slot that is depends only on which slots are
    // free, not on the order they were freed in: a name node that loads a checkpoint image (which
    // records the occupied slots, not that order) and replays the edits after it then gives
    // every new inode the slot, and so the file id, it had on the name node that made it.

    /// Adds a slot to the free slots.
    mutating func pushFreeIndex(_ index: UInt32) {
        freeIndices.append(index)
        var child = freeIndices.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard freeIndices[child] < freeIndices[parent] else { break }
            freeIndices.swapAt(child, parent)
            child = parent
        }
    }

    /// Takes the lowest free slot; nil when there is none.
    mutating func popFreeIndex() -> UInt32? {
        guard let lowest = freeIndices.first else { return nil }
        let last = freeIndices.removeLast()
        guard !freeIndices.isEmpty else { return lowest }
        freeIndices[0] = last
        var parent = 0
        while true {
            var smallest = parent
            let left = 2 * parent + 1
            let right = left + 1
            if left < freeIndices.count && freeIndices[left] < freeIndices[smallest] { smallest = left }
            if right < freeIndices.count && freeIndices[right] < freeIndices[smallest] { smallest = right }
            guard smallest != parent else { return lowest }
            freeIndices.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
