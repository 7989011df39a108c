import CLinux
import Testing

/// The copy `strata dfs get` fills its direct-write buffers with: whole cache lines with
/// non-temporal stores, the rest with an ordinary copy. Every byte must arrive, whatever the
/// length and the source's alignment, and nothing past the end may change.
struct NonTemporalCopyTests {
    @Test(arguments: [0, 1, 15, 16, 63, 64, 65, 127, 4096, 4097, 1_048_576 + 17])
    func copiesEveryByteAndNoMore(count: Int) {
        for sourceOffset in [0, 1, 7, 16] {
            let source = (0..<(count + sourceOffset)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let destination = UnsafeMutableRawBufferPointer.allocate(byteCount: count + 64, alignment: 16)
            defer { destination.deallocate() }
            destination.initializeMemory(as: UInt8.self, repeating: 0xA5)
            source.withUnsafeBytes { bytes in
                strata_copy_nontemporal(destination.baseAddress!, bytes.baseAddress! + sourceOffset, count)
            }
            #expect(Array(destination[0..<count]) == Array(source[sourceOffset...]), "\(count) bytes from offset \(sourceOffset)")
            #expect(destination[count...].allSatisfy { $0 == 0xA5 }, "bytes past \(count) changed")
        }
    }
}
