import Testing

@testable import StrataAgent

struct RootfsCacheIndexTests {
    @Test func theLeastRecentlyUsedUnusedEntriesAreEvictedUntilTheCacheFits() {
        var index = RootfsCacheIndex(capacityBytes: 250)
        _ = index.add("a", allocatedBytes: 100)
        _ = index.add("b", allocatedBytes: 100)
        _ = index.add("c", allocatedBytes: 100)
        #expect(index.evict() == ["a"])
        #expect(Set(index.entries.keys) == ["b", "c"])
        #expect(index.evict().isEmpty)
    }

    @Test func entriesInUseOrBeingPreparedAreNeverEvicted() {
        var index = RootfsCacheIndex(capacityBytes: 100)
        let a = index.add("a", allocatedBytes: 100)
        _ = index.add("b", allocatedBytes: 100)
        _ = index.add("c", allocatedBytes: 100)
        let acquired = index.acquire("a")
        #expect(acquired == a)
        #expect(index.evict(sparing: ["b"]) == ["c"])
        #expect(Set(index.entries.keys) == ["a", "b"])
        // Over the bound with only entries in use or spared: it stays over.
        #expect(index.evict(sparing: ["b"]).isEmpty)
        #expect(index.release("a", generation: a) == .kept)
        // Released, "a" is evictable again, but "b" was used longer ago.
        #expect(index.evict() == ["b"])
    }

    @Test func acquiringMakesAnEntryTheMostRecentlyUsed() {
        var index = RootfsCacheIndex(capacityBytes: 200)
        let a = index.add("a", allocatedBytes: 100)
        _ = index.add("b", allocatedBytes: 100)
        _ = index.acquire("a")
        _ = index.release("a", generation: a)
        _ = index.add("c", allocatedBytes: 100)
        #expect(index.evict() == ["b"])
    }

    @Test func aRetiredEntryInUseIsDeletedWithItsLastRelease() {
        var index = RootfsCacheIndex(capacityBytes: 1000)
        let old = index.add("a", allocatedBytes: 100)
        _ = index.acquire("a", count: 2)
        let inUse = index.retire("a")
        #expect(inUse)
        let new = index.add("a", allocatedBytes: 100)
        #expect(new != old)
        _ = index.acquire("a")
        #expect(index.release("a", generation: old) == .kept)
        #expect(index.release("a", generation: old) == .retiredUnused)
        #expect(index.release("a", generation: new) == .kept)
        #expect(index.entries["a"]?.references == 0)
        let retiredAgain = index.retire("a")
        #expect(!retiredAgain)
    }
}
