/// The data nodes holding a block's replicas: up to four stored inline in one word (most blocks
/// have three replicas), more in an array. Saves a heap allocation per block in the name node.
struct NodeList: RandomAccessCollection, Sendable, Equatable {
    private static let inlineCapacity = 4
    private static let empty: UInt16 = .max
    /// Four 16-bit node indices, filled from the low end; unused slots hold `empty`.
    private var packed: UInt64 = .max
    private var overflow: [UInt16] = []

    init() {}

    private var inlineCount: Int {
        var count = 0
        while count < Self.inlineCapacity && UInt16(truncatingIfNeeded: packed >> (16 * UInt64(count))) != Self.empty { count += 1 }
        return count
    }

    var startIndex: Int { 0 }
    var endIndex: Int { inlineCount + overflow.count }

    subscript(position: Int) -> UInt16 {
        let inline = inlineCount
        precondition(position >= 0 && position < inline + overflow.count)
        if position < inline { return UInt16(truncatingIfNeeded: packed >> (16 * UInt64(position))) }
        return overflow[position - inline]
    }

    mutating func append(_ node: UInt16) {
        precondition(node != Self.empty, "node index \(node) is reserved")
        let inline = inlineCount
        if inline < Self.inlineCapacity {
            let shift = 16 * UInt64(inline)
            packed = (packed & ~(0xFFFF << shift)) | (UInt64(node) << shift)
        } else {
            overflow.append(node)
        }
    }

    mutating func remove(at position: Int) {
        var all = array
        all.remove(at: position)
        self = NodeList(all)
    }

    mutating func removeAll(where shouldRemove: (UInt16) -> Bool) {
        self = NodeList(array.filter { !shouldRemove($0) })
    }

    init(_ nodes: [UInt16]) {
        for node in nodes { append(node) }
    }

    var array: [UInt16] { Array(self) }
}
