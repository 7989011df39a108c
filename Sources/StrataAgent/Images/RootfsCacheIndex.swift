/// The image cache's bookkeeping, without I/O: which root filesystems are cached, how much
/// disk they take, which are in use (reference counts), which were used least recently, and so
/// what to evict to stay within the size bound. Entries in use are never evicted; when they
/// alone exceed the bound, the cache stays over it until they are released.
///
/// A cache entry removed while in use (found damaged, and unpacked again beside it) is
/// *retired*: its generation is remembered until its last user releases it, so that its files
/// are deleted only then.
struct RootfsCacheIndex: Sendable {
    struct Entry: Sendable, Equatable {
        var allocatedBytes: Int64
        var references = 0
        /// When it was last acquired, in this index's own ticks (larger is more recent).
        var lastUsed: UInt64
        /// Tells this entry from an earlier one of the same key.
        var generation: UInt64
    }

    let capacityBytes: Int64
    private(set) var entries: [String: Entry] = [:]
    /// Generations removed while in use, and their remaining references.
    private(set) var retired: [UInt64: Int] = [:]
    private var tick: UInt64 = 0
    private var lastGeneration: UInt64 = 0

    init(capacityBytes: Int64) {
        self.capacityBytes = capacityBytes
    }

    var allocatedBytes: Int64 { entries.values.reduce(0) { $0 + $1.allocatedBytes } }

    /// Adds a finished entry as the most recently used, unreferenced; returns its generation.
    mutating func add(_ key: String, allocatedBytes: Int64) -> UInt64 {
        precondition(entries[key] == nil, "cache entry \(key) added twice")
        tick += 1
        lastGeneration += 1
        entries[key] = Entry(allocatedBytes: allocatedBytes, lastUsed: tick, generation: lastGeneration)
        return lastGeneration
    }

    /// Takes `count` references to the entry and makes it the most recently used; its
    /// generation, or nil when it is not cached.
    mutating func acquire(_ key: String, count: Int = 1) -> UInt64? {
        guard var entry = entries[key] else { return nil }
        tick += 1
        entry.references += count
        entry.lastUsed = tick
        entries[key] = entry
        return entry.generation
    }

    enum Released: Equatable {
        /// Others still use it, or it stays cached unused.
        case kept
        /// It was the last user of a retired generation: its files may go now.
        case retiredUnused
    }

    mutating func release(_ key: String, generation: UInt64) -> Released {
        if var entry = entries[key], entry.generation == generation {
            precondition(entry.references > 0, "cache entry \(key) released more often than acquired")
            entry.references -= 1
            entries[key] = entry
            return .kept
        }
        guard let references = retired[generation] else {
            preconditionFailure("cache entry \(key) generation \(generation) released but not held")
        }
        if references > 1 {
            retired[generation] = references - 1
            return .kept
        }
        retired[generation] = nil
        return .retiredUnused
    }

    /// Takes the entry out of the cache; true when it is in use (its files must stay until the
    /// last release says `.retiredUnused`).
    mutating func retire(_ key: String) -> Bool {
        guard let entry = entries.removeValue(forKey: key) else { return false }
        if entry.references > 0 { retired[entry.generation] = entry.references }
        return entry.references > 0
    }

    /// Unused entries to evict, least recently used first, until the cache fits its bound;
    /// `sparing` (entries being checked or made) are not taken. Removes them from the index.
    mutating func evict(sparing: Set<String> = []) -> [String] {
        var total = allocatedBytes
        guard total > capacityBytes else { return [] }
        let candidates = entries.filter { $0.value.references == 0 && !sparing.contains($0.key) }
            .sorted { $0.value.lastUsed < $1.value.lastUsed }
        var victims: [String] = []
        for (key, entry) in candidates where total > capacityBytes {
            victims.append(key)
            total -= entry.allocatedBytes
            entries[key] = nil
        }
        return victims
    }
}
