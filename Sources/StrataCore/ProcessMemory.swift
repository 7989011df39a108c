import CMalloc

/// The heap settings every Strata process runs with (the `strata` command sets them first thing;
/// tests that measure a server's memory in their own process set them too).
public enum ProcessMemory {
    public static func configure() {
        // Frames and transfer buffers are a few hundred KiB each: keep them in the heap for reuse
        // instead of mapping and unmapping fresh zeroed pages for every one (glibc's default
        // above 128 KiB), which cost as much CPU as compression did. Larger blocks are mapped,
        // and their memory goes back to the system when freed, so a long transfer does not leave
        // the heap holding its peak; the buffers block transfer packets arrive in are kept for
        // reuse by their own allocator, within a bound (`TransferBuffers` in StrataWire).
        _ = mallopt(M_MMAP_THRESHOLD, 2 * 1024 * 1024)
        _ = mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024)
        // Blocks move between threads (read on one, compressed on another, written from a
        // third): a few shared arenas, not one per thread each keeping its own free blocks.
        _ = mallopt(M_ARENA_MAX, 2)
    }
}
