import Foundation
import StrataBlockFormat
import StrataCore
import StrataTestKit
import Testing

/// Damage of any kind is detected, reported with its location, and never returned as data.
@Suite struct CorruptionTests {
    static let frameSize = 256

    /// A small block with compressed frames, raw frames and a short last frame.
    private func makeBlock(in directory: TemporaryDirectory) throws -> (path: String, data: [UInt8], bytes: [UInt8]) {
        let data = TestData.logs(3 * Self.frameSize) + TestData.random(2 * Self.frameSize) + TestData.logs(100, seed: 9)
        let path = directory.file("block")
        try writeBlock(data, to: path, frameSize: Self.frameSize, blockId: 77)
        #expect(try readWholeBlock(path) == data)
        return (path, data, try fileBytes(path))
    }

    /// Opens and reads everything; returns the error, or nil if the block read back cleanly.
    private func readError(_ path: String, expected data: [UInt8]) -> BlockFormatError? {
        do {
            let got = try readWholeBlock(path)
            // Reading may only succeed with exactly the right bytes.
            #expect(got == data, "a damaged block returned wrong bytes")
            return nil
        } catch let error as BlockFormatError {
            return error
        } catch {
            Issue.record("unexpected error type: \(error)")
            return nil
        }
    }

    @Test func everySingleBitFlipIsDetected() throws {
        let directory = try TemporaryDirectory()
        let block = try makeBlock(in: directory)
        let damaged = directory.file("damaged")
        var generator = SeededGenerator(seed: 2026)
        var undetected: [Int] = []
        for position in 0..<block.bytes.count {
            // Every bit of the block header, the frame headers and the trailer; one random bit of
            // each payload byte (payload bits are all alike to a CRC).
            var bits = [Int.random(in: 0..<8, using: &generator)]
            if position < BlockHeader.encodedSize || position >= block.bytes.count - 200 { bits = Array(0..<8) }
            for bit in bits {
                var bytes = block.bytes
                bytes[position] ^= UInt8(1 << bit)
                try writeFileBytes(bytes, to: damaged)
                if readError(damaged, expected: block.data) == nil { undetected.append(position * 8 + bit) }
            }
        }
        #expect(undetected.isEmpty, "undetected bit flips at bit positions \(undetected.prefix(20))")
    }

    @Test func everyFrameHeaderBitFlipIsDetected() throws {
        let directory = try TemporaryDirectory()
        let block = try makeBlock(in: directory)
        let reader = try BlockReader(path: block.path)
        let damaged = directory.file("damaged")
        for offset in reader.frameOffsets {
            for position in Int(offset)..<(Int(offset) + FrameHeader.encodedSize) {
                for bit in 0..<8 {
                    var bytes = block.bytes
                    bytes[position] ^= UInt8(1 << bit)
                    try writeFileBytes(bytes, to: damaged)
                    #expect(readError(damaged, expected: block.data) != nil, "flip at byte \(position) bit \(bit)")
                }
            }
        }
    }

    @Test func truncationAtAnyPointIsDetected() throws {
        let directory = try TemporaryDirectory()
        let block = try makeBlock(in: directory)
        let damaged = directory.file("damaged")
        for length in 0..<block.bytes.count {
            try writeFileBytes(Array(block.bytes[0..<length]), to: damaged)
            let error = readError(damaged, expected: block.data)
            #expect(error != nil, "truncated to \(length) bytes and still read")
            #expect(error?.isCorruption == true)
        }
    }

    @Test func corruptPayloadErrorNamesBlockFrameAndOffset() throws {
        let directory = try TemporaryDirectory()
        let block = try makeBlock(in: directory)
        let reader = try BlockReader(path: block.path)
        var bytes = block.bytes
        let frameOffset = Int(reader.frameOffsets[2])
        bytes[frameOffset + FrameHeader.encodedSize + 5] ^= 0x01
        let damaged = directory.file("damaged")
        try writeFileBytes(bytes, to: damaged)
        let damagedReader = try BlockReader(path: damaged)
        // Frames before the damage still read; the damaged one throws, naming where it is.
        #expect(try damagedReader.read(offset: 0, length: 2 * Self.frameSize) == Array(block.data[0..<(2 * Self.frameSize)]))
        let error = #expect(throws: BlockFormatError.self) {
            try damagedReader.read(offset: UInt64(2 * Self.frameSize + 10), length: 5)
        }
        #expect(error?.kind == .storedChecksumMismatch)
        #expect(error?.blockId == 77)
        #expect(error?.frameIndex == 2)
        #expect(error?.fileOffset == UInt64(frameOffset))
        #expect(error?.path == damaged)
        #expect(error?.description.contains("block 77 frame 2 at byte \(frameOffset)") == true)
        let reports = damagedReader.verifyFrames()
        #expect(reports.filter { $0.error != nil }.map(\.index) == [2])
    }

    @Test func wrongMagicIsRejected() throws {
        let directory = try TemporaryDirectory()
        let block = try makeBlock(in: directory)
        var bytes = block.bytes
        bytes[0] = UInt8(ascii: "X")
        let damaged = directory.file("damaged")
        try writeFileBytes(bytes, to: damaged)
        let error = #expect(throws: BlockFormatError.self) { try BlockReader(path: damaged) }
        #expect(error?.kind == .badMagic)
        #expect(error?.description.contains("bad magic") == true)
    }

    @Test func unknownVersionIsRejected() throws {
        let directory = try TemporaryDirectory()
        let block = try makeBlock(in: directory)
        // A well-formed header (valid checksum) from a future format version.
        var header = BlockHeader(blockId: 77, generationStamp: 1001, rawFrameSizeBytes: Self.frameSize)
        header.formatVersion = 9
        var bytes = block.bytes
        bytes.replaceSubrange(0..<BlockHeader.encodedSize, with: header.encoded())
        let damaged = directory.file("damaged")
        try writeFileBytes(bytes, to: damaged)
        let error = #expect(throws: BlockFormatError.self) { try BlockReader(path: damaged) }
        #expect(error?.kind == .unsupportedVersion)
        #expect(error?.description.contains("version 9") == true)
    }

    @Test func wrongBlockIdIsRejected() throws {
        let directory = try TemporaryDirectory()
        let block = try makeBlock(in: directory)
        let error = #expect(throws: BlockFormatError.self) { try BlockReader(path: block.path, expectedBlockId: 78) }
        #expect(error?.kind == .wrongBlock)
    }

    @Test func missingFileIsAnIOError() throws {
        let error = #expect(throws: BlockFormatError.self) { try BlockReader(path: "/nonexistent/strata/block") }
        #expect(error?.kind == .io)
        #expect(error?.isCorruption == false)
    }

    @Test func decoderRejectsDamagedFramesDirectly() throws {
        let raw = TestData.logs(4000)
        let frame = FrameEncoder().encode(raw)
        let decoder = FrameDecoder()
        #expect(try decoder.decode(frame: frame, maximumRawLength: 4096) == raw)
        // A frame whose raw length exceeds what the block allows is refused before allocating.
        #expect(throws: BlockFormatError.self) { try decoder.decode(frame: frame, maximumRawLength: 3999) }
        // Truncated and extended frames.
        #expect(throws: BlockFormatError.self) { try decoder.decode(frame: Array(frame.dropLast()), maximumRawLength: 4096) }
        #expect(throws: BlockFormatError.self) { try decoder.decode(frame: frame + [0], maximumRawLength: 4096) }
    }
}
