import Foundation
import StrataBlockFormat
import StrataTestKit
import Testing

/// `strata debug block` run as a real process.
@Suite struct CommandLineTests {
    static var strataExecutable: String { TestExecutables.strata }

    static func run(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        try TestExecutables.run(strataExecutable, arguments)
    }

    @Test func healthyBlockVerifies() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("block")
        try writeBlock(TestData.logs(10_000) + TestData.random(3000), to: path, frameSize: 1024)
        let result = try Self.run(["debug", "block", path])
        #expect(result.status == 0)
        #expect(result.output.contains("all 13 frames verified: OK"))
        #expect(result.output.contains("zstd"))
        #expect(result.output.contains("raw"))
        let json = try Self.run(["debug", "block", "--json", path])
        #expect(json.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        #expect(object?["healthy"] as? Bool == true)
        #expect((object?["frames"] as? [Any])?.count == 13)
        #expect(object?["blockId"] as? Int == 7)
    }

    @Test func damagedBlockExitsNonZero() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("block")
        try writeBlock(TestData.logs(10_000), to: path, frameSize: 1024)
        let good = try fileBytes(path)
        var generator = SeededGenerator(seed: 99)
        // Header, a frame payload, the trailer, and a truncation.
        let positions = [3, 20, good.count / 2, good.count - 3, Int.random(in: 0..<good.count, using: &generator)]
        for position in positions {
            var bytes = good
            bytes[position] ^= 0x04
            try writeFileBytes(bytes, to: path)
            let result = try Self.run(["debug", "block", path])
            #expect(result.status == 1, "flip at \(position)")
            #expect(result.error.contains("CORRUPT"), "flip at \(position)")
        }
        try writeFileBytes(Array(good.dropLast(100)), to: path)
        let truncated = try Self.run(["debug", "block", path])
        #expect(truncated.status == 1)
        #expect(truncated.error.contains("truncated"))
    }

    @Test func versionPrints() throws {
        let result = try Self.run(["version"])
        #expect(result.status == 0)
        #expect(result.output.hasPrefix("strata "))
    }
}
