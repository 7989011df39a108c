import StrataWire
import SwiftProtobuf

/// The namespace as checkpoint image records: an `ImageHeader`, then one `ImageINode` per inode,
/// parents before children. Iterating a copy of the namespace lets the name node write a
/// checkpoint while it keeps serving (the copy shares storage until the live one changes).
public struct NamespaceImage: Sequence {
    let namespace: Namespace

    public func makeIterator() -> AnyIterator<[UInt8]> {
        let namespace = self.namespace
        var headerSent = false
        var queue: [UInt32] = [Namespace.rootIndex]
        var position = 0
        return AnyIterator {
            if !headerSent {
                headerSent = true
                var header = Strata_Journal_ImageHeader()
                header.formatVersion = 1
                header.nextBlockID = namespace.nextBlockId
                header.nextGenerationStamp = namespace.nextGenerationStamp
                header.inodeCount = UInt64(namespace.fileCount + namespace.directoryCount)
                return try! header.serializedBytes()
            }
            guard position < queue.count else { return nil }
            let index = queue[position]
            position += 1
            // Drop the consumed prefix now and then, so the queue stays as wide as one level.
            if position > 65_536 {
                queue.removeFirst(position)
                position = 0
            }
            let node = namespace.inodes[Int(index)]
            var record = Strata_Journal_ImageINode()
            record.index = index
            record.parent = node.parent
            record.name = node.name
            record.directory = node.isDirectory
            record.permission = UInt32(node.permission)
            record.owner = namespace.strings.name(node.owner)
            record.group = namespace.strings.name(node.group)
            record.modificationTimeMs = node.modificationTime
            record.accessTimeMs = node.accessTime
            if let children = node.children {
                queue.append(contentsOf: children.values)
            } else {
                record.replication = UInt32(node.replication)
                record.blockSize = node.blockSize
                record.blocks = node.blocks.map { id in
                    let block = namespace.blocks[id]!
                    var reference = Strata_Journal_BlockRef()
                    reference.blockID = id
                    reference.generationStamp = block.generationStamp
                    reference.numBytes = block.numBytes
                    return reference
                }
                record.clientName = namespace.writers[index] ?? ""
                if !record.clientName.isEmpty, let last = node.blocks.last, let base = namespace.appendBaseStamps[last] {
                    record.lastBlockAppendBaseStamp = base
                }
            }
            return try! record.serializedBytes()
        }
    }
}

extension Namespace {
    /// This namespace as image records.
    public var image: NamespaceImage { NamespaceImage(namespace: self) }

    /// Rebuilds a namespace from image records (as `NamespaceImage` wrote them).
    public struct ImageLoader {
        var namespace: Namespace
        var sawHeader = false
        var occupied: [Bool] = [true]

        public init(settings: NamespaceSettings) {
            namespace = Namespace(settings: settings)
        }

        public mutating func add(_ bytes: [UInt8]) throws(ReplayError) {
            if !sawHeader {
                guard let header = try? Strata_Journal_ImageHeader(serializedBytes: bytes), header.formatVersion == 1 else {
                    throw ReplayError(message: "image header is missing or of an unknown version")
                }
                namespace.nextBlockId = header.nextBlockID
                namespace.nextGenerationStamp = header.nextGenerationStamp
                sawHeader = true
                return
            }
            guard let record = try? Strata_Journal_ImageINode(serializedBytes: bytes) else {
                throw ReplayError(message: "malformed inode record in image")
            }
            let index = Int(record.index)
            var node = INode(
                name: record.name, parent: record.parent, isDirectory: record.directory, replication: UInt16(record.replication),
                permission: UInt16(record.permission), owner: namespace.strings.intern(record.owner),
                group: namespace.strings.intern(record.group), modificationTime: record.modificationTimeMs,
                accessTime: record.accessTimeMs, blockSize: record.blockSize, blocks: BlockList(),
                children: record.directory ? [:] : nil)
            if index == 0 {
                node.parent = 0
                node.name = ""
                namespace.inodes[0] = node
                return
            }
            guard index < occupied.count + 100_000_000, Int(record.parent) < occupied.count, occupied[Int(record.parent)],
                namespace.inodes[Int(record.parent)].isDirectory, index >= occupied.count || !occupied[index]
            else {
                throw ReplayError(message: "image inode \(index) (\(record.name)) has no valid parent or repeats an index")
            }
            while namespace.inodes.count <= index {
                namespace.inodes.append(Self.placeholder)
                occupied.append(false)
            }
            for reference in record.blocks {
                node.blocks.append(reference.blockID)
                namespace.blocks[reference.blockID] = BlockRecord(
                    inode: UInt32(index), generationStamp: reference.generationStamp, numBytes: reference.numBytes,
                    isComplete: true)
            }
            if !record.directory && !record.clientName.isEmpty {
                namespace.writers[UInt32(index)] = record.clientName
                if let last = node.blocks.last {
                    namespace.blocks[last]!.isComplete = false
                    if record.lastBlockAppendBaseStamp != 0 { namespace.appendBaseStamps[last] = record.lastBlockAppendBaseStamp }
                }
            }
            namespace.inodes[index] = node
            occupied[index] = true
            let parent = Int(record.parent)
            namespace.inodes[parent].children![record.name] = UInt32(index)
            if record.directory { namespace.directoryCount += 1 } else { namespace.fileCount += 1 }
        }

        public mutating func finish() throws(ReplayError) -> Namespace {
            guard sawHeader else { throw ReplayError(message: "image has no header") }
            // Ascending order is a valid min-heap.
            namespace.freeIndices = occupied.indices.filter { !occupied[$0] }.map { UInt32($0) }
            return namespace
        }

        static let placeholder = INode(
            name: "", parent: 0, isDirectory: false, replication: 0, permission: 0, owner: 0, group: 0,
            modificationTime: 0, accessTime: 0, blockSize: 0, blocks: BlockList(), children: nil)
    }
}
