import StrataCore
import StrataWire

/// Edits for recovering blocks whose writer failed: new generation stamps, a pipeline's new
/// stamp, a file's lease passing to the name node, and a recovered file's close.
extension Namespace {
    /// The name of the lease holder while the name node recovers a file.
    public static let recoveryHolder = "Strata_NameNode_LeaseRecovery"

    /// File ids are inode indices offset past HDFS's reserved inode range.
    static let firstFileId: UInt64 = 16385

    /// Where the file a writer names by id is now: a file open for writing can be renamed (or
    /// its directory moved) and its writer goes on. Without an id, or when the id is not a file
    /// `clientName` writes, the path the writer gave.
    public func currentPath(_ path: String, fileId: UInt64, clientName: String) -> String {
        guard fileId >= Self.firstFileId, fileId - Self.firstFileId < UInt64(inodes.count) else { return path }
        let index = UInt32(fileId - Self.firstFileId)
        guard writers[index] == clientName, !inodes[Int(index)].isDirectory else { return path }
        return self.path(of: index)
    }

    /// Hands out the next generation stamp, journaled so no restart hands it out again.
    public func prepareReserveGenerationStamp() -> (edit: Edit, stamp: UInt64) {
        var reserve = Strata_Journal_ReserveGenerationStamp()
        reserve.stamp = nextGenerationStamp
        var edit = Edit()
        edit.reserveGenerationStamp = reserve
        return (edit, nextGenerationStamp)
    }

    /// The block `clientName` is writing as the last of the file at `path`; it must still have
    /// the generation stamp the writer knows.
    func blockBeingWritten(
        _ path: String, clientName: String, block: Strata_Wire_ExtendedBlock
    ) throws(RemoteException) -> (index: UInt32, path: String, record: BlockRecord) {
        let file = try openFile(path, clientName: clientName)
        guard inodes[Int(file.index)].blocks.last == block.blockID, let record = blocks[block.blockID], !record.isComplete else {
            throw RemoteException.io("Block \(block.blockID) is not the block being written to \(file.path)")
        }
        return (file.index, file.path, record)
    }

    /// Pipeline recovery, the new pipeline is up: the block takes its new generation stamp and
    /// the length every node of the new pipeline holds. Nil when already recorded (a retry).
    public func prepareUpdatePipeline(
        _ path: String, clientName: String, oldBlock: Strata_Wire_ExtendedBlock, newBlock: Strata_Wire_ExtendedBlock
    ) throws(RemoteException) -> Edit? {
        let current = try blockBeingWritten(path, clientName: clientName, block: oldBlock)
        if current.record.generationStamp == newBlock.generationStamp { return nil }
        guard current.record.generationStamp == oldBlock.generationStamp, newBlock.generationStamp > oldBlock.generationStamp,
            newBlock.blockID == oldBlock.blockID
        else {
            throw RemoteException.io(
                "updatePipeline for \(current.path): block \(oldBlock.blockID) has generation stamp \(current.record.generationStamp), "
                    + "not \(oldBlock.generationStamp)")
        }
        var update = Strata_Journal_UpdateBlock()
        update.path = current.path
        update.block.blockID = newBlock.blockID
        update.block.generationStamp = newBlock.generationStamp
        update.block.numBytes = newBlock.numBytes
        var edit = Edit()
        edit.updateBlock = update
        return edit
    }

    /// Gives the lease on a file to `holder` (the name node, while it recovers the file).
    func prepareLeaseTransfer(_ index: UInt32, to holder: String, now: Int64) -> Edit {
        var reopen = Strata_Journal_ReopenFile()
        reopen.path = path(of: index)
        reopen.clientName = holder
        reopen.timeMs = now
        var edit = Edit()
        edit.reopenFile = reopen
        return edit
    }

    /// Closes a file whose writer is gone. `last`: its last block as recovered (new stamp and
    /// length), or nil to keep the blocks as they are; `removeLast` drops an empty last block.
    func prepareRecoveredClose(_ index: UInt32, last: Strata_Journal_BlockRef?, removeLast: Bool, now: Int64) -> [Edit] {
        let filePath = path(of: index)
        var edits: [Edit] = []
        if removeLast, let lastId = inodes[Int(index)].blocks.last {
            var abandon = Strata_Journal_AbandonBlock()
            abandon.path = filePath
            abandon.blockID = lastId
            var edit = Edit()
            edit.abandonBlock = abandon
            edits.append(edit)
        }
        if let last {
            var update = Strata_Journal_UpdateBlock()
            update.path = filePath
            update.block = last
            var edit = Edit()
            edit.updateBlock = update
            edits.append(edit)
        }
        var close = Strata_Journal_CloseFile()
        close.path = filePath
        close.timeMs = now
        if let last { close.last = last }
        var edit = Edit()
        edit.closeFile = close
        edits.append(edit)
        return edits
    }
}
