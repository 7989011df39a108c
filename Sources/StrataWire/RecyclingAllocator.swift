import CMalloc
import Glibc
@_spi(CustomByteBufferAllocator) import NIOCore
import Synchronization

/// Byte buffers for block transfer connections whose large blocks of memory are used again.
///
/// A block transfer packet arrives in a buffer of a few MiB (its 4 MiB of frames, rounded up),
/// one per packet per data node. The C heap maps such sizes fresh and unmaps them when freed,
/// so every packet's buffer is faulted in and zeroed page by page, and on a virtual machine whose
/// host takes idle memory back each of those pages costs the host a fault too. Keeping them in
/// the heap instead (a higher mmap threshold) made random puts much faster but let the heap
/// keep whatever a burst left behind. This allocator keeps freed blocks of
/// `TransferBuffers.pooledMinimumBytes` and more, by power-of-two size, for the next buffer of
/// that size, up to `TransferBuffers.retainedLimitBytes` in all; smaller buffers and anything
/// beyond the limit go to the C heap as usual.
public enum TransferBuffers {
    /// The allocator for transfer channels (`ChannelOptions.allocator`) and packet bodies.
    public static let allocator = ByteBufferAllocator(
        allocate: { size in recyclingAllocate(size) },
        reallocate: { pointer, oldSize, newSize in recyclingReallocate(pointer, oldSize, newSize) },
        deallocate: { pointer in recyclingDeallocate(pointer) },
        copy: { destination, source, count in _ = memcpy(destination, source, count) })

    /// Blocks smaller than this are the C heap's (it reuses them itself below its mmap threshold).
    public static let pooledMinimumBytes = 1 << 20
    /// Free blocks kept for reuse, in bytes, at most: a few packets' buffers.
    public static let retainedLimitBytes = 32 << 20

    /// Bytes held in free blocks right now (for tests and metrics).
    public static var retainedBytes: Int { pool.withLock { $0.retainedBytes } }

    /// Free blocks by size class, up to a limit in bytes.
    struct Pool {
        let limitBytes: Int
        /// Free blocks' addresses by size class (log2 of the bytes each holds at least).
        var free: [Int: [UInt]] = [:]
        var retainedBytes = 0

        init(limitBytes: Int) { self.limitBytes = limitBytes }

        mutating func take(sizeClass: Int) -> UInt? {
            guard let block = free[sizeClass]?.popLast() else { return nil }
            retainedBytes -= 1 << sizeClass
            return block
        }

        /// Keeps `block` unless the pool is full; false when the caller must free it.
        mutating func keep(_ block: UInt, sizeClass: Int) -> Bool {
            guard retainedBytes + (1 << sizeClass) <= limitBytes else { return false }
            free[sizeClass, default: []].append(block)
            retainedBytes += 1 << sizeClass
            return true
        }
    }

    static let pool = Mutex(Pool(limitBytes: retainedLimitBytes))

    /// The size class a request of `size` bytes is served from (rounded up).
    static func sizeClass(forRequest size: Int) -> Int {
        size <= 1 ? 0 : Int.bitWidth - (size - 1).leadingZeroBitCount
    }

    /// The size class a block of `usable` bytes can serve (rounded down).
    static func sizeClass(ofUsable usable: Int) -> Int {
        Int.bitWidth - 1 - usable.leadingZeroBitCount
    }
}

private func recyclingAllocate(_ size: Int) -> UnsafeMutableRawPointer? {
    guard size >= TransferBuffers.pooledMinimumBytes else { return malloc(size) }
    let sizeClass = TransferBuffers.sizeClass(forRequest: size)
    if let block = TransferBuffers.pool.withLock({ $0.take(sizeClass: sizeClass) }) { return UnsafeMutableRawPointer(bitPattern: block) }
    return malloc(1 << sizeClass)
}

private func recyclingDeallocate(_ pointer: UnsafeMutableRawPointer) {
    let usable = malloc_usable_size(pointer)
    guard usable >= TransferBuffers.pooledMinimumBytes else { return free(pointer) }
    let sizeClass = TransferBuffers.sizeClass(ofUsable: usable)
    let address = UInt(bitPattern: pointer)
    if !TransferBuffers.pool.withLock({ $0.keep(address, sizeClass: sizeClass) }) { free(pointer) }
}

private func recyclingReallocate(_ pointer: UnsafeMutableRawPointer?, _ oldSize: Int, _ newSize: Int) -> UnsafeMutableRawPointer? {
    guard let pointer else { return recyclingAllocate(newSize) }
    let usable = malloc_usable_size(pointer)
    if newSize <= usable { return pointer }
    if newSize < TransferBuffers.pooledMinimumBytes { return realloc(pointer, newSize) }
    guard let moved = recyclingAllocate(newSize) else { return nil }
    _ = memcpy(moved, pointer, min(oldSize, newSize))
    recyclingDeallocate(pointer)
    return moved
}
