import Foundation
import StrataTestKit
import StrataBlockFormat


enum TestData {
    /// Bytes that do not compress.
    static func random(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        var bytes = [UInt8](repeating: 0, count: count)
        var index = 0
        while index < count {
            var word = generator.next()
            for _ in 0..<8 where index < count {
                bytes[index] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                index += 1
            }
        }
        return bytes
    }

    /// Web-server-log-like text, which compresses several times over.
    static func logs(_ count: Int, seed: UInt64 = 2) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        let methods = ["GET", "PUT", "POST", "DELETE"]
        let paths = ["/api/v2/orders/", "/health", "/static/app.js", "/api/v2/users/"]
        var text: [UInt8] = []
        text.reserveCapacity(count + 200)
        while text.count < count {
            let line =
                "2026-11-25T\(generator.next() % 24):\(generator.next() % 60):00Z INFO host-\(generator.next() % 200) "
                + "\(methods[Int(generator.next() % 4)]) \(paths[Int(generator.next() % 4)])\(generator.next() % 100000) "
                + "status=200 bytes=\(generator.next() % 50000)\n"
            text.append(contentsOf: line.utf8)
        }
        return Array(text.prefix(count))
    }
}

/// A scratch directory removed when the test ends.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "strata-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func file(_ name: String) -> String { path + "/" + name }
}

/// Writes `data` as a finished block file and returns its path.
@discardableResult
func writeBlock(
    _ data: [UInt8], to path: String, frameSize: Int, blockId: UInt64 = 7, options: FrameEncoderOptions = FrameEncoderOptions(),
    appendChunk: Int = 1000
) throws -> BlockSummary {
    let writer = try BlockWriter(
        creating: path, blockId: blockId, generationStamp: 1001, rawFrameSizeBytes: frameSize, options: options)
    var position = 0
    while position < data.count {
        let end = min(data.count, position + appendChunk)
        try writer.append(Array(data[position..<end]))
        position = end
    }
    return try writer.finish()
}

/// Reads a whole block back through the reader, failing on any error.
func readWholeBlock(_ path: String) throws -> [UInt8] {
    let reader = try BlockReader(path: path)
    return try reader.read(offset: 0, length: Int(reader.rawLength))
}

func fileBytes(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

func writeFileBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}
