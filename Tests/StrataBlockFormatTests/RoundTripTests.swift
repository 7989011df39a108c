import StrataBlockFormat
import StrataCore
import StrataTestKit
import Testing

@Suite struct RoundTripTests {
    static let frameSize = 4096

    /// Sizes around the interesting boundaries: empty, one byte, one frame, a frame ± 1, many frames.
    static let sizes = [0, 1, frameSize - 1, frameSize, frameSize + 1, 2 * frameSize, 37 * frameSize + 123]

    @Test(arguments: sizes)
    func compressibleRoundTrip(size: Int) throws {
        try roundTrip(TestData.logs(size, seed: UInt64(size)), size: size)
    }

    @Test(arguments: sizes)
    func incompressibleRoundTrip(size: Int) throws {
        try roundTrip(TestData.random(size, seed: UInt64(size)), size: size)
    }

    private func roundTrip(_ data: [UInt8], size: Int) throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("block")
        // Append in odd-sized pieces so appends straddle frame boundaries.
        let summary = try writeBlock(data, to: path, frameSize: Self.frameSize, appendChunk: 1777)
        #expect(summary.rawLength == UInt64(size))
        #expect(summary.frameCount == (size + Self.frameSize - 1) / Self.frameSize)
        #expect(try readWholeBlock(path) == data)
        let reader = try BlockReader(path: path, expectedBlockId: 7)
        #expect(reader.isFinished)
        #expect(reader.header.generationStamp == 1001)
        #expect(reader.verifyFrames().allSatisfy { $0.error == nil })
    }

    @Test func defaultFrameSizeRoundTrip() throws {
        let directory = try TemporaryDirectory()
        let data = TestData.logs(3 * Limits.defaultRawFrameSizeBytes + 5)
        let path = directory.file("block")
        let writer = try BlockWriter(creating: path, blockId: 1, generationStamp: 1)
        try writer.append(data)
        let summary = try writer.finish()
        #expect(summary.frameCount == 4)
        #expect(try readWholeBlock(path) == data)
        // Logs compress well below their raw size.
        #expect(summary.storedLength * 2 < summary.rawLength)
    }

    @Test func randomRangesAcrossFrameBoundaries() throws {
        let directory = try TemporaryDirectory()
        let data = TestData.logs(20 * Self.frameSize + 999, seed: 11)
        let path = directory.file("block")
        try writeBlock(data, to: path, frameSize: Self.frameSize)
        let reader = try BlockReader(path: path)
        var generator = SeededGenerator(seed: 12)
        for _ in 0..<500 {
            let offset = Int.random(in: 0...data.count, using: &generator)
            let length = Int.random(in: 0...min(data.count - offset, 3 * Self.frameSize), using: &generator)
            let got = try reader.read(offset: UInt64(offset), length: length)
            #expect(got == Array(data[offset..<(offset + length)]), "offset \(offset) length \(length)")
        }
        // Exactly at boundaries.
        for frame in 0..<20 {
            let offset = frame * Self.frameSize
            #expect(try reader.read(offset: UInt64(offset), length: Self.frameSize) == Array(data[offset..<(offset + Self.frameSize)]))
            #expect(try reader.read(offset: UInt64(offset + Self.frameSize - 1), length: 2) == Array(data[(offset + Self.frameSize - 1)...(offset + Self.frameSize)]))
        }
    }

    @Test func readsOutsideTheBlockAreRejected() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("block")
        try writeBlock(TestData.logs(5000), to: path, frameSize: Self.frameSize)
        let reader = try BlockReader(path: path)
        #expect(throws: BlockFormatError.self) { try reader.read(offset: 4990, length: 11) }
        #expect(throws: BlockFormatError.self) { try reader.read(offset: 5001, length: 0) }
        #expect(try reader.read(offset: 5000, length: 0) == [])
    }

    @Test func incompressibleFramesAreStoredRaw() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("block")
        try writeBlock(TestData.random(5 * Self.frameSize + 10), to: path, frameSize: Self.frameSize)
        let reader = try BlockReader(path: path)
        let bytes = try fileBytes(path)
        for offset in reader.frameOffsets {
            // The codec byte sits at offset 8 of each frame header: 0 is raw.
            #expect(bytes[Int(offset) + 8] == FrameCodec.raw.rawValue)
        }
        #expect(reader.verifyFrames().allSatisfy { $0.codec == .raw })
    }

    @Test func compressibleFramesAreStoredCompressed() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("block")
        try writeBlock(TestData.logs(5 * Self.frameSize + 10), to: path, frameSize: Self.frameSize)
        let reader = try BlockReader(path: path)
        let bytes = try fileBytes(path)
        for offset in reader.frameOffsets.dropLast() {
            #expect(bytes[Int(offset) + 8] == FrameCodec.zstd.rawValue)
        }
        // Ten bytes cannot shrink: the short last frame is stored raw.
        #expect(bytes[Int(reader.frameOffsets.last!) + 8] == FrameCodec.raw.rawValue)
    }

    @Test func compressionThresholdDecidesTheCodec() throws {
        // Half random, half zeros: zstd saves about half, so a 60% threshold stores it raw.
        var data = TestData.random(Self.frameSize / 2)
        data += [UInt8](repeating: 0, count: Self.frameSize / 2)
        let encoder = FrameEncoder(options: FrameEncoderOptions(minimumSavings: 0.6))
        let frame = encoder.encode(data)
        #expect(frame[8] == FrameCodec.raw.rawValue)
        let compressing = FrameEncoder(options: FrameEncoderOptions(minimumSavings: 0.05))
        #expect(compressing.encode(data)[8] == FrameCodec.zstd.rawValue)
        #expect(try FrameDecoder().decode(frame: frame, maximumRawLength: Self.frameSize) == data)
    }

    @Test func aFrameNotTriedIsStoredRawAndDecodes() throws {
        let data = TestData.logs(Self.frameSize)
        let encoder = FrameEncoder()
        var frame = [UInt8](repeating: 0, count: FrameEncoder.maximumFrameLength(rawLength: data.count))
        let header = data.withUnsafeBytes { raw in frame.withUnsafeMutableBytes { encoder.encode(raw, into: $0, tryCompression: false) } }
        frame.removeLast(frame.count - header.frameLength)
        #expect(header.codec == .raw)
        #expect(header.storedLength == UInt32(data.count))
        #expect(try FrameDecoder().decode(frame: frame, maximumRawLength: Self.frameSize) == data)
        // The same bytes, tried, compress.
        #expect(encoder.encode(data)[8] == FrameCodec.zstd.rawValue)
    }
}
