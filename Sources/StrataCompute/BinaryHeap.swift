/// An element of a binary heap kept in an array: `precedes` says which of two comes out first.
protocol HeapOrdered {
    func precedes(_ other: Self) -> Bool
}

extension Array where Element: HeapOrdered {
    /// Adds an element to the heap this array holds.
    mutating func heapPush(_ element: Element) {
        append(element)
        var child = count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard self[child].precedes(self[parent]) else { break }
            swapAt(child, parent)
            child = parent
        }
    }

    /// Takes the element that precedes all others; nil when the heap is empty.
    mutating func heapPop() -> Element? {
        guard let top = first else { return nil }
        let last = removeLast()
        if !isEmpty {
            self[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var best = parent
                if left < count, self[left].precedes(self[best]) { best = left }
                if right < count, self[right].precedes(self[best]) { best = right }
                if best == parent { break }
                swapAt(parent, best)
                parent = best
            }
        }
        return top
    }
}
