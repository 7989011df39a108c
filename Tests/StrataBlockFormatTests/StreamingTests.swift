import StrataBlockFormat
import StrataCore
import Testing

/// hflush-style partial frames, frame pass-along between replicas, and append.
@Suite struct StreamingTests {
    static let frameSize = 1024

    @Test func flushedPartialFrameIsVisibleAndLaterRewritten() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("block")
        let data = TestData.logs(5 * Self.frameSize + 300)
        let writer = try BlockWriter(creating: path, blockId: 9, generationStamp: 1, rawFrameSizeBytes: Self.frameSize)
        try writer.append(Array(data[0..<1500]))
        try writer.flush()
        // A reader of the unfinished file sees every flushed byte.
        var unfinished = try BlockReader(unfinishedPath: path)
        #expect(!unfinished.isFinished)
        #expect(unfinished.rawLength == 1500)
        #expect(try unfinished.read(offset: 0, length: 1500) == Array(data[0..<1500]))
        // More bytes extend the partial frame in place; flushing twice is harmless.
        try writer.append(Array(data[1500..<1600]))
        try writer.synchronize()
        try writer.synchronize()
        unfinished = try BlockReader(unfinishedPath: path)
        #expect(try unfinished.read(offset: 0, length: 1600) == Array(data[0..<1600]))
        try writer.append(Array(data[1600...]))
        try writer.finish()
        #expect(try readWholeBlock(path) == data)
        // Only the last frame may be short.
        let reader = try BlockReader(path: path)
        #expect(reader.frameCount == 6)
        for index in 0..<5 { #expect(reader.rawLength(ofFrame: index) == Self.frameSize) }
    }

    @Test func finishedBlockIsNotReadAsUnfinishedAndViceVersa() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("block")
        let writer = try BlockWriter(creating: path, blockId: 9, generationStamp: 1, rawFrameSizeBytes: Self.frameSize)
        try writer.append(TestData.logs(3000))
        try writer.flush()
        // A finished-block reader refuses a block with no trailer.
        #expect(throws: BlockFormatError.self) { try BlockReader(path: path) }
        try writer.finish()
        let reader = try BlockReader(unfinishedPath: path)
        #expect(reader.isFinished)
        #expect(reader.rawLength == 3000)
    }

    @Test func encodedFramesPassThroughUnchanged() throws {
        let directory = try TemporaryDirectory()
        let source = directory.file("first")
        let data = TestData.logs(7 * Self.frameSize + 10) + TestData.random(2 * Self.frameSize)
        try writeBlock(data, to: source, frameSize: Self.frameSize, blockId: 5)
        let first = try BlockReader(path: source)
        // A second replica stores the first one's frames as they are.
        let replica = directory.file("second")
        let writer = try BlockWriter(creating: replica, blockId: 5, generationStamp: 1001, rawFrameSizeBytes: Self.frameSize)
        for index in 0..<first.frameCount {
            let frame = try first.storedFrame(index)
            try frame.withUnsafeBytes { try writer.appendEncodedFrame($0) }
        }
        try writer.finish()
        #expect(try fileBytes(replica) == fileBytes(source))
        #expect(try readWholeBlock(replica) == data)
    }

    @Test func partialEncodedFrameIsReplacedByItsLongerSuccessor() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("block")
        let data = TestData.logs(2 * Self.frameSize + 500)
        let encoder = FrameEncoder()
        let writer = try BlockWriter(creating: path, blockId: 1, generationStamp: 1, rawFrameSizeBytes: Self.frameSize)
        let first = encoder.encode(Array(data[0..<Self.frameSize]))
        try first.withUnsafeBytes { try writer.appendEncodedFrame($0) }
        // hflush of 100 bytes of the second frame, then the whole frame replaces it.
        let partial = encoder.encode(Array(data[Self.frameSize..<(Self.frameSize + 100)]))
        try partial.withUnsafeBytes { try writer.appendEncodedFrame($0) }
        #expect(writer.rawLength == UInt64(Self.frameSize + 100))
        let full = encoder.encode(Array(data[Self.frameSize..<(2 * Self.frameSize)]))
        try full.withUnsafeBytes { try writer.appendEncodedFrame($0) }
        // Raw bytes may follow encoded frames: a partial encoded frame is decoded and extended.
        let lastPartial = encoder.encode(Array(data[(2 * Self.frameSize)..<(2 * Self.frameSize + 200)]))
        try lastPartial.withUnsafeBytes { try writer.appendEncodedFrame($0) }
        try writer.append(Array(data[(2 * Self.frameSize + 200)...]))
        try writer.finish()
        #expect(try readWholeBlock(path) == data)
    }

    @Test func damagedEncodedFrameIsRefusedBeforeWriting() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("block")
        var frame = FrameEncoder().encode(TestData.logs(Self.frameSize))
        frame[frame.count / 2] ^= 0x10
        let writer = try BlockWriter(creating: path, blockId: 3, generationStamp: 1, rawFrameSizeBytes: Self.frameSize)
        let error = #expect(throws: BlockFormatError.self) {
            try frame.withUnsafeBytes { try writer.appendEncodedFrame($0) }
        }
        #expect(error?.kind == .storedChecksumMismatch)
        #expect(writer.rawLength == 0)
        // A frame larger than the block's frame size is refused too.
        let big = FrameEncoder().encode(TestData.logs(2 * Self.frameSize))
        #expect(throws: BlockFormatError.self) { try big.withUnsafeBytes { try writer.appendEncodedFrame($0) } }
        try writer.finish()
        #expect(try readWholeBlock(path) == [])
    }

    @Test(arguments: [0, 1, 1000, 1024, 1500, 4096])
    func appendReopensAFinishedBlock(initialSize: Int) throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("block")
        let data = TestData.logs(initialSize + 3333, seed: UInt64(initialSize))
        try writeBlock(Array(data[0..<initialSize]), to: path, frameSize: Self.frameSize)
        let writer = try BlockWriter(reopening: path, newGenerationStamp: 2002)
        #expect(writer.rawLength == UInt64(initialSize))
        try writer.append(Array(data[initialSize...]))
        let summary = try writer.finish()
        #expect(summary.generationStamp == 2002)
        #expect(try readWholeBlock(path) == data)
        let reader = try BlockReader(path: path)
        #expect(reader.header.generationStamp == 2002)
        #expect(reader.verifyFrames().allSatisfy { $0.error == nil })
    }

    @Test func unfinishedBlockWithTornTailKeepsWholeFrames() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("block")
        let writer = try BlockWriter(creating: path, blockId: 4, generationStamp: 1, rawFrameSizeBytes: Self.frameSize)
        let data = TestData.logs(3 * Self.frameSize)
        try writer.append(data)
        try writer.synchronize()
        writer.abandon()
        // A crash mid-frame leaves a torn tail: half a frame header.
        var bytes = try fileBytes(path)
        bytes += [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
        try writeFileBytes(bytes, to: path)
        let reader = try BlockReader(unfinishedPath: path)
        #expect(reader.rawLength == UInt64(3 * Self.frameSize))
        #expect(try reader.read(offset: 0, length: data.count) == data)
    }

    @Test func invalidFrameSizeIsRejected() throws {
        let directory = try TemporaryDirectory()
        #expect(throws: BlockFormatError.self) {
            try BlockWriter(creating: directory.file("a"), blockId: 1, generationStamp: 1, rawFrameSizeBytes: 10)
        }
        #expect(throws: BlockFormatError.self) {
            try BlockWriter(creating: directory.file("b"), blockId: 1, generationStamp: 1, rawFrameSizeBytes: Limits.maximumRawFrameSizeBytes + 1)
        }
    }

    @Test func existingFileIsNotOverwritten() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("block")
        try writeBlock([1, 2, 3], to: path, frameSize: Self.frameSize)
        let error = #expect(throws: BlockFormatError.self) {
            try BlockWriter(creating: path, blockId: 1, generationStamp: 1, rawFrameSizeBytes: Self.frameSize)
        }
        #expect(error?.kind == .io)
        #expect(try readWholeBlock(path) == [1, 2, 3])
    }
}
