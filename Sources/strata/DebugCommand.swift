import ArgumentParser
import Foundation
import StrataBlockFormat
import StrataCore

struct DebugCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "debug",
        abstract: "Inspect Strata's on-disk formats, measure the machine, recover leases.",
        subcommands: [
            BlockInspectCommand.self, BlockWriteCommand.self, BlockCatCommand.self, DebugJournalTortureCommand.self,
            CodecSpeedCommand.self, MetadataBenchCommand.self, NamespaceMemoryCommand.self, RecoverLeaseCommand.self,
        ]
    )
}

/// `strata debug block FILE`: list a block file's frames and verify every checksum.
struct BlockInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "block",
        abstract: "List a block file's frames and verify all checksums.",
        discussion: "Exits with status 1 if any header, frame or trailer is damaged."
    )

    @Argument(help: "The block file.")
    var file: String

    @Flag(help: "Print machine-readable JSON.")
    var json = false

    struct FrameLine: Encodable {
        var index: Int
        var fileOffset: UInt64
        var rawOffset: UInt64
        var rawBytes: Int
        var storedBytes: Int
        var codec: String?
        var ratio: Double
        var error: String?
    }

    struct Report: Encodable {
        var file: String
        var blockId: UInt64?
        var generationStamp: UInt64?
        var formatVersion: UInt16?
        var rawFrameSizeBytes: Int?
        var codec: String?
        var finished: Bool
        var rawBytes: UInt64
        var fileBytes: UInt64
        var ratio: Double
        var frames: [FrameLine]
        var errors: [String]
        var healthy: Bool
    }

    func run() throws {
        let report = inspect()
        if json {
            print(try JSONOutput.encode(report))
        } else {
            printText(report)
        }
        if !report.healthy { throw ExitCode(1) }
    }

    private func inspect() -> Report {
        let fileBytes = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? UInt64) ?? 0
        var report = Report(
            file: file, finished: false, rawBytes: 0, fileBytes: fileBytes, ratio: 0, frames: [], errors: [], healthy: false)
        let reader: BlockReader
        do {
            reader = try BlockReader(path: file)
        } catch {
            report.errors.append(error.description)
            // Walk the frames anyway, so the listing shows how much of the block is intact.
            guard error.isCorruption, let scanned = try? BlockReader(unfinishedPath: file) else { return report }
            reader = scanned
        }
        report.blockId = reader.header.blockId
        report.generationStamp = reader.header.generationStamp
        report.formatVersion = reader.header.formatVersion
        report.rawFrameSizeBytes = reader.rawFrameSize
        report.codec = "\(reader.header.codec) (level \(reader.header.zstdLevel))"
        report.finished = reader.isFinished
        report.rawBytes = reader.rawLength
        report.ratio = fileBytes == 0 ? 0 : Double(reader.rawLength) / Double(fileBytes)
        for frame in reader.verifyFrames() {
            let stored = frame.frameLength - FrameHeader.encodedSize
            report.frames.append(
                FrameLine(
                    index: frame.index, fileOffset: frame.fileOffset, rawOffset: frame.rawOffset, rawBytes: frame.rawLength,
                    storedBytes: stored, codec: frame.codec?.description,
                    ratio: stored > 0 ? Double(frame.rawLength) / Double(stored) : 0, error: frame.error?.description))
            if let error = frame.error { report.errors.append(error.description) }
        }
        report.healthy = report.errors.isEmpty
        return report
    }

    private func printText(_ report: Report) {
        if let blockId = report.blockId {
            print(
                "block \(blockId)  generation \(report.generationStamp ?? 0)  format \(report.formatVersion ?? 0)"
                    + "  frame size \(report.rawFrameSizeBytes ?? 0)  codec \(report.codec ?? "?")")
            print(
                "raw \(report.rawBytes) bytes  file \(report.fileBytes) bytes  ratio \(format(report.ratio))"
                    + "  frames \(report.frames.count)  \(report.finished ? "finished" : "unfinished (no trailer)")")
        }
        if !report.frames.isEmpty {
            print(
                pad("frame", 7) + pad("file offset", 14) + pad("raw offset", 14) + pad("raw bytes", 11)
                    + pad("stored", 10) + pad("codec", 7) + pad("ratio", 8) + "  status")
            for frame in report.frames {
                print(
                    pad("\(frame.index)", 7) + pad("\(frame.fileOffset)", 14) + pad("\(frame.rawOffset)", 14)
                        + pad("\(frame.rawBytes)", 11) + pad("\(frame.storedBytes)", 10) + pad(frame.codec ?? "?", 7)
                        + pad(format(frame.ratio), 8) + "  " + (frame.error == nil ? "ok" : "CORRUPT"))
            }
        }
        if report.healthy {
            print("all \(report.frames.count) frames verified: OK")
        } else {
            for error in report.errors { printError("error: \(error)") }
            printError("CORRUPT: \(report.file) failed verification")
        }
    }

    private func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }

    private func format(_ value: Double) -> String {
        String(format: "%.2f", value)
    }
}

/// `strata debug block-write INPUT FILE`: encode a local file as one block file.
struct BlockWriteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "block-write", abstract: "Encode a local file (or - for stdin) as a block file.")

    @Argument(help: "The raw input, or - for standard input.")
    var input: String

    @Argument(help: "The block file to create (must not exist).")
    var output: String

    @Option(help: "Raw bytes per frame.")
    var frameSize: Int = Limits.defaultRawFrameSizeBytes

    @Option(help: "zstd level.")
    var level: Int32 = Limits.defaultZstdLevel

    @Option(help: "Block id written in the header.")
    var blockId: UInt64 = 1

    @Flag(help: "Store every frame raw (no compression).")
    var raw = false

    func validate() throws {
        guard (Limits.minimumRawFrameSizeBytes...Limits.maximumRawFrameSizeBytes).contains(frameSize) else {
            throw ValidationError(
                "--frame-size must be between \(Limits.minimumRawFrameSizeBytes) and \(Limits.maximumRawFrameSizeBytes)")
        }
    }

    func run() throws {
        let source: FileHandle
        if input == "-" {
            source = FileHandle.standardInput
        } else {
            guard let handle = FileHandle(forReadingAtPath: input) else {
                throw ValidationError("cannot open \(input): no such file or not readable")
            }
            source = handle
        }
        let writer = try BlockWriter(
            creating: output, blockId: blockId, generationStamp: 1, rawFrameSizeBytes: frameSize,
            options: FrameEncoderOptions(codec: raw ? .raw : .zstd, zstdLevel: level))
        while true {
            let chunk = source.readData(ofLength: 4 * 1024 * 1024)
            if chunk.isEmpty { break }
            try chunk.withUnsafeBytes { try writer.append($0) }
        }
        let summary = try writer.finish()
        print("wrote block \(summary.blockId): \(summary.rawLength) raw bytes in \(summary.frameCount) frames, \(summary.storedLength) bytes on disk")
    }
}

/// `strata debug block-cat FILE`: decode a block file (or a range of it) to standard output.
struct BlockCatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "block-cat", abstract: "Decode a block file's raw bytes to standard output, verifying checksums.")

    @Argument(help: "The block file.")
    var file: String

    @Option(help: "First raw byte to print.")
    var offset: UInt64 = 0

    @Option(help: "How many raw bytes to print (default: to the end).")
    var length: UInt64?

    func run() throws {
        let reader = try BlockReader(path: file)
        guard offset <= reader.rawLength else {
            throw ValidationError("--offset \(offset) is past the block's \(reader.rawLength) bytes")
        }
        let end = min(reader.rawLength, offset + (length ?? reader.rawLength))
        var position = offset
        let chunk: UInt64 = 4 * 1024 * 1024
        while position < end {
            let count = Int(min(chunk, end - position))
            let bytes = try reader.read(offset: position, length: count)
            FileHandle.standardOutput.write(Data(bytes))
            position += UInt64(count)
        }
    }
}
