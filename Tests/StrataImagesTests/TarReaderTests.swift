import Foundation
import StrataCore
import StrataTestKit
import Testing

@testable import StrataImages

/// The streaming tar reader, on archives GNU tar writes in its formats and on our own.
struct TarReaderTests {
    /// Every entry of an archive, with the data of regular files.
    static func entries(_ input: some TarInput) throws -> [(TarEntry, [UInt8])] {
        var reader = TarReader(input)
        var entries: [(TarEntry, [UInt8])] = []
        while let entry = try reader.next() {
            var data: [UInt8] = []
            while true {
                let piece = try reader.readData(upTo: 1000)
                if piece.isEmpty { break }
                data += piece
            }
            entries.append((entry, data))
        }
        return entries
    }

    @Test func readsTheEntriesWeWrite() throws {
        var tar = TestTarWriter()
        tar.directory("bin")
        let contents = (0..<5000).map { UInt8(truncatingIfNeeded: $0) }
        tar.file("bin/tool", contents, mode: 0o755)
        tar.symlink("bin/sh", to: "tool")
        tar.file("empty", [])
        let entries = try Self.entries(BytesTarInput(tar.finish()))
        #expect(entries.map(\.0.name) == ["bin/", "bin/tool", "bin/sh", "empty"])
        #expect(entries.map(\.0.kind) == [.directory, .file, .symbolicLink, .file])
        #expect(entries[1].1 == contents)
        #expect(entries[1].0.mode == 0o755)
        #expect(entries[1].0.dataOffset == 1024)
        #expect(entries[2].0.linkName == "tool")
        #expect(entries[0].0.normalizedName == "bin")
    }

    @Test(arguments: ["gnu", "pax", "ustar"])
    func readsLongNamesAndLinksInGNUTarsFormats(format: String) async throws {
        try await withTemporaryDirectory { directory in
            let tree = directory + "/tree"
            // 150 characters: over ustar's 100 (a prefix split in ustar, a long name in gnu, a path record in pax).
            let deep = "d" + String(repeating: "e", count: 60) + "/" + String(repeating: "f", count: 60) + "/g"
            try FileManager.default.createDirectory(atPath: tree + "/" + deep, withIntermediateDirectories: true)
            let longFile = deep + "/" + String(repeating: "n", count: format == "ustar" ? 20 : 120) + ".txt"
            try Data("hello".utf8).write(to: URL(fileURLWithPath: tree + "/" + longFile))
            try Data(repeating: 7, count: 70_000).write(to: URL(fileURLWithPath: tree + "/big"))
            try FileManager.default.createSymbolicLink(atPath: tree + "/link", withDestinationPath: "big")
            try FileManager.default.linkItem(atPath: tree + "/big", toPath: tree + "/hard")
            let archive = directory + "/a.tar"
            try run("/usr/bin/tar", ["--format=\(format)", "-C", tree, "-cf", archive, "--sort=name", "."])
            let file = try LocalFile(path: archive, mode: .readOnly)
            let entries = try Self.entries(FileTarInput(file: file))
            let byName = Dictionary(entries.map { ($0.0.normalizedName, $0) }, uniquingKeysWith: { first, _ in first })
            #expect(byName[longFile]?.1 == Array("hello".utf8), "\(entries.map(\.0.name))")
            #expect(byName["big"]?.1 == [UInt8](repeating: 7, count: 70_000))
            #expect(byName["link"]?.0.kind == .symbolicLink)
            #expect(byName["link"]?.0.linkName == "big")
            #expect(byName["hard"]?.0.kind == .hardLink)
            #expect(byName["hard"]?.0.size == 0)
            #expect(byName[deep]?.0.kind == .directory)
        }
    }

    @Test func skippingDataNeverReadsIt() throws {
        var tar = TestTarWriter()
        tar.file("a", [UInt8](repeating: 1, count: 3000))
        tar.file("b", [2, 3])
        var reader = TarReader(BytesTarInput(tar.finish()))
        #expect(try reader.next()?.name == "a")
        let second = try #require(try reader.next())
        #expect(second.name == "b")
        #expect(second.dataOffset == 512 + 3072 + 512)
        #expect(try reader.readData(upTo: 10) == [2, 3])
        #expect(try reader.next() == nil)
        #expect(try reader.next() == nil)
    }

    @Test func damagedArchivesAreRefused() throws {
        var tar = TestTarWriter()
        tar.file("a", [1, 2, 3])
        var bytes = tar.finish()
        var flipped = bytes
        flipped[0] ^= 0x20
        var reader = TarReader(BytesTarInput(flipped))
        #expect(throws: TarError.self) { try reader.next() }
        // Cut inside the data.
        bytes.removeLast(bytes.count - 514)
        var truncated = TarReader(BytesTarInput(bytes))
        _ = try truncated.next()
        #expect(throws: TarError.self) { try truncated.readData(upTo: 10) }
        var notTar = TarReader(BytesTarInput(Array(repeating: UInt8(ascii: "x"), count: 600)))
        #expect(throws: TarError.self) { try notTar.next() }
    }
}
