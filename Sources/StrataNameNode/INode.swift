/// One file or directory in the name node's memory. Kept small (72 bytes): the namespace holds
/// one of these per file, and its size decides how many files a name node can hold. Fields are
/// declared widest first, so they pack without padding.
struct INode: Sendable {
    /// The last path component ("" for the root). Names up to 15 UTF-8 bytes are stored inline.
    var name: String
    var modificationTime: Int64
    var accessTime: Int64
    /// Files: block ids in order. Directories: empty.
    var blocks: BlockList
    /// Directories: child name to inode index. Files: nil.
    var children: [String: UInt32]?
    /// Index of the parent directory in the inode table (the root is its own parent).
    var parent: UInt32
    /// Files: the block size in units of 512 bytes (HDFS requires block sizes to be a multiple
    /// of its 512-byte checksum chunk too).
    private var blockSizeUnits: UInt32
    private var ownerId: UInt16
    private var groupId: UInt16
    var replication: UInt16
    var permission: UInt16

    init(
        name: String, parent: UInt32, isDirectory: Bool, replication: UInt16, permission: UInt16, owner: UInt32, group: UInt32,
        modificationTime: Int64, accessTime: Int64, blockSize: UInt64, blocks: BlockList, children: [String: UInt32]?
    ) {
        precondition(isDirectory == (children != nil), "a directory has children, a file has none")
        precondition(blockSize % INode.blockSizeUnit == 0 && blockSize / INode.blockSizeUnit <= UInt64(UInt32.max), "block size \(blockSize)")
        self.name = name
        self.modificationTime = modificationTime
        self.accessTime = accessTime
        self.blocks = blocks
        self.children = children
        self.parent = parent
        self.blockSizeUnits = UInt32(blockSize / INode.blockSizeUnit)
        self.ownerId = UInt16(owner)
        self.groupId = UInt16(group)
        self.replication = replication
        self.permission = permission
    }

    static let blockSizeUnit: UInt64 = 512

    var isDirectory: Bool { children != nil }

    var blockSize: UInt64 { UInt64(blockSizeUnits) * INode.blockSizeUnit }

    /// Interned owner and group names (`StringTable`).
    var owner: UInt32 {
        get { UInt32(ownerId) }
        set { ownerId = UInt16(newValue) }
    }

    var group: UInt32 {
        get { UInt32(groupId) }
        set { groupId = UInt16(newValue) }
    }
}

/// A file's block ids: the first one inline (most files have one block), the rest in an array
/// that is only allocated for files with two or more.
struct BlockList: Sequence, Sendable {
    private var first: UInt64 = 0
    private var rest: [UInt64] = []

    init() {}

    init(_ ids: [UInt64]) {
        for id in ids { append(id) }
    }

    var isEmpty: Bool { first == 0 }
    var count: Int { first == 0 ? 0 : 1 + rest.count }
    var last: UInt64? { rest.last ?? (first == 0 ? nil : first) }

    mutating func append(_ id: UInt64) {
        precondition(id != 0, "block id 0 is reserved")
        if first == 0 { first = id } else { rest.append(id) }
    }

    mutating func removeLast() {
        if rest.isEmpty { first = 0 } else { rest.removeLast() }
    }

    mutating func removeAll() {
        first = 0
        rest = []
    }

    subscript(index: Int) -> UInt64 {
        index == 0 ? first : rest[index - 1]
    }

    func makeIterator() -> AnyIterator<UInt64> {
        var index = 0
        let count = self.count
        let copy = self
        return AnyIterator {
            guard index < count else { return nil }
            defer { index += 1 }
            return copy[index]
        }
    }

    var array: [UInt64] { Array(self) }
}

/// A block's persistent facts (where its replicas are is runtime state, in `BlockMap`).
struct BlockRecord: Sendable {
    // Fields ordered widest first so the record packs into 24 bytes.
    var generationStamp: UInt64
    /// Raw bytes: final once the block is complete, the last known length while it is written.
    var numBytes: UInt64
    /// Index of the file that owns the block.
    var inode: UInt32
    var isComplete: Bool

    init(inode: UInt32, generationStamp: UInt64, numBytes: UInt64, isComplete: Bool) {
        self.generationStamp = generationStamp
        self.numBytes = numBytes
        self.inode = inode
        self.isComplete = isComplete
    }
}

/// Interns owner and group names: a namespace has few distinct ones and millions of inodes.
struct StringTable: Sendable {
    private var ids: [String: UInt32] = [:]
    private var names: [String] = []

    /// Distinct owner and group names a namespace may have (inodes store them in 16 bits).
    static let capacity = Int(UInt16.max)

    mutating func intern(_ name: String) -> UInt32 {
        if let id = ids[name] { return id }
        precondition(names.count < Self.capacity, "more than \(Self.capacity) distinct owner and group names")
        let id = UInt32(names.count)
        names.append(name)
        ids[name] = id
        return id
    }

    func name(_ id: UInt32) -> String { names[Int(id)] }
}
