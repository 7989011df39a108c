import Foundation
import NIOCore
import Testing

@testable import StrataWire

/// The allocator of block transfer buffers: large blocks are kept for the next buffer of their
/// size, within a bound; the bytes of a buffer survive its growth.
@Suite struct TransferBuffersTests {
    @Test func sizeClassesRoundRequestsUpAndBlocksDown() {
        #expect(TransferBuffers.sizeClass(forRequest: 1 << 20) == 20)
        #expect(TransferBuffers.sizeClass(forRequest: (1 << 20) + 1) == 21)
        #expect(TransferBuffers.sizeClass(forRequest: 4 * 1024 * 1024 + 64 * 1024) == 23)
        #expect(TransferBuffers.sizeClass(ofUsable: 1 << 22) == 22)
        #expect(TransferBuffers.sizeClass(ofUsable: (1 << 22) + 4080) == 22)
        #expect(TransferBuffers.sizeClass(ofUsable: (1 << 22) - 1) == 21)
        // A block taken back under the class of its usable size serves every request of it.
        for request in [1 << 20, 3_000_000, 1 << 23, (1 << 23) + 1] {
            let served = TransferBuffers.sizeClass(forRequest: request)
            #expect(TransferBuffers.sizeClass(ofUsable: 1 << served) == served)
            #expect(1 << served >= request)
        }
    }

    @Test func freedBlocksAreKeptUpToTheLimitAndHandedOutAgain() {
        var pool = TransferBuffers.Pool(limitBytes: 10 << 20)
        let none = pool.take(sizeClass: 22)
        #expect(none == nil)
        let kept = [pool.keep(0x1000, sizeClass: 22), pool.keep(0x2000, sizeClass: 22), pool.keep(0x3000, sizeClass: 20)]
        #expect(kept == [true, true, true])
        #expect(pool.retainedBytes == 9 << 20)
        // A fourth block would pass the limit: the caller frees it.
        let overLimit = pool.keep(0x4000, sizeClass: 21)
        #expect(!overLimit)
        #expect(pool.retainedBytes == 9 << 20)
        let taken = [pool.take(sizeClass: 21), pool.take(sizeClass: 22), pool.take(sizeClass: 22), pool.take(sizeClass: 22)]
        #expect(taken == [nil, 0x2000, 0x1000, nil])
        #expect(pool.retainedBytes == 1 << 20)
        let room = pool.keep(0x4000, sizeClass: 21)
        #expect(room)
        #expect(pool.retainedBytes == 3 << 20)
    }

    /// Buffers of every size, grown past pooled sizes and written through, keep their bytes;
    /// freed, the pool never holds more than its limit (other tests share it, so only the bound
    /// is checked).
    @Test func buffersKeepTheirBytesThroughGrowthAndReuse() {
        let sizes = [100, 700_000, 1 << 20, 3_000_000, 4 * 1024 * 1024 + 70_000]
        let source = randomBytes(sizes.max()! + 16, seed: 21)
        for round in 0..<3 {
            var buffers: [ByteBuffer] = []
            for (index, size) in sizes.enumerated() {
                var buffer = TransferBuffers.allocator.buffer(capacity: 64 * 1024)
                let pattern = source[(index + round)..<(index + round + size)]
                // Written in pieces: the buffer grows through the allocator's reallocate.
                var start = pattern.startIndex
                while start < pattern.endIndex {
                    let end = min(pattern.endIndex, start + 300_001)
                    buffer.writeBytes(pattern[start..<end])
                    start = end
                }
                let same = buffer.withUnsafeReadableBytes { written in
                    pattern.withUnsafeBytes { expected in written.count == expected.count && memcmp(written.baseAddress!, expected.baseAddress!, size) == 0 }
                }
                #expect(same, "size \(size), round \(round)")
                buffers.append(buffer)
            }
            buffers.removeAll()
            #expect(TransferBuffers.retainedBytes <= TransferBuffers.retainedLimitBytes)
        }
    }
}
