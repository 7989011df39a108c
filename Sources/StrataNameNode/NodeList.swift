/// Up to four data nodes holding a block's replicas, in one word (most blocks have three
/// replicas; `BlockManager` keeps any beyond four in a side table). Saves a heap allocation and
/// eight bytes per block in the name node.
struct NodeList: RandomAccessCollection, Sendable, Equatable {
    private static let inlineCapacity = 4
    private static let empty: UInt16 = .max
    static let capacity = inlineCapacity
    /// Four 16-bit node indices, filled from the low end; unused slots hold `empty`.
    private var packed: UInt64 = .max

    init() {}

    private var inlineCount: Int {
        var count = 0
        while count < Self.inlineCapacity && UInt16(truncatingIfNeeded: packed >> (16 * UInt64(count))) != Self.empty { count += 1 }
        return count
    }

    var startIndex: Int { 0 }
    var endIndex: Int { inlineCount }

    subscript(position: Int) -> UInt16 {
        precondition(position >= 0 && position < inlineCount)
        return UInt16(truncatingIfNeeded: packed >> (16 * UInt64(position)))
    }

    mutating func append(_ node: UInt16) {
        precondition(node != Self.empty, "node index \(node) is reserved")
        let inline = inlineCount
        precondition(inline < Self.inlineCapacity, "a node list holds at most \(Self.inlineCapacity) nodes")
        let shift = 16 * UInt64(inline)
        packed = (packed & ~(0xFFFF << shift)) | (UInt64(node) << shift)
    }

    mutating func remove(at position: Int) {
        var all = array
        all.remove(at: position)
        self = NodeList(all)
    }

    mutating func removeAll(where shouldRemove: (UInt16) -> Bool) {
        self = NodeList(array.filter { !shouldRemove($0) })
    }

    init(_ nodes: some Sequence<UInt16>) {
        for node in nodes { append(node) }
    }

    var array: [UInt16] { Array(self) }
}
