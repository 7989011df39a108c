import Foundation
import StrataCore
import StrataTestKit
import Testing

@testable import StrataImages

/// The tar reader (what the agent unpacks layers with and image archives are read with), on
/// archives GNU tar writes in its formats and on our own, given in pieces of every size.
struct TarReaderTests {
    /// Every entry of an archive with its contents, the archive given `chunkBytes` at a time.
    static func entries(_ archive: [UInt8], chunkBytes: Int = 4096) throws -> [(entry: TarEntry, contents: [UInt8])] {
        var reader = TarReader()
        var entries: [(entry: TarEntry, contents: [UInt8])] = []
        var inEntry = false
        for start in stride(from: 0, to: archive.count, by: chunkBytes) {
            try archive[start..<min(archive.count, start + chunkBytes)].withUnsafeBytes { chunk in
                var bytes = chunk
                while let event = try reader.next(from: &bytes) {
                    switch event {
                    case .entry(let entry):
                        #expect(!inEntry, "an entry before the last one ended")
                        entries.append((entry, []))
                        inEntry = true
                    case .contents(let piece):
                        entries[entries.count - 1].contents += piece
                    case .entryEnd:
                        #expect(inEntry, "an end without an entry")
                        inEntry = false
                    }
                }
            }
        }
        try reader.finish()
        return entries
    }

    /// The error reading `archive` throws, if it does.
    static func error(_ archive: [UInt8], chunkBytes: Int = 4096) -> TarError? {
        do {
            _ = try entries(archive, chunkBytes: chunkBytes)
            return nil
        } catch {
            return error as? TarError
        }
    }

    @Test func readsTheEntriesWeWrite() throws {
        var tar = TestTarWriter()
        tar.directory("bin")
        let contents = (0..<5000).map { UInt8(truncatingIfNeeded: $0) }
        tar.file("bin/tool", contents, mode: 0o755)
        tar.symlink("bin/sh", to: "tool")
        tar.file("empty", [])
        let entries = try Self.entries(tar.finish())
        #expect(entries.map(\.entry.path) == ["bin/", "bin/tool", "bin/sh", "empty"])
        #expect(entries.map(\.entry.kind) == [.directory, .regular, .symbolicLink, .regular])
        #expect(entries[1].contents == contents)
        #expect(entries[1].entry.mode == 0o755)
        #expect(entries[1].entry.dataOffset == 1024)
        #expect(entries[2].entry.linkTarget == "tool")
        #expect(entries[0].entry.normalizedPath == "bin")
    }

    /// GNU tar's three formats, read whole in pieces and as an image archive is: header by
    /// header, members found again by their byte ranges.
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
            let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: archive)))
            let entries = try Self.entries(bytes, chunkBytes: 1000)
            let byName = Dictionary(entries.map { ($0.entry.normalizedPath, $0) }, uniquingKeysWith: { first, _ in first })
            #expect(byName[longFile]?.contents == Array("hello".utf8), "\(entries.map(\.entry.path))")
            #expect(byName["big"]?.contents == [UInt8](repeating: 7, count: 70_000))
            #expect(byName["link"]?.entry.kind == .symbolicLink)
            #expect(byName["link"]?.entry.linkTarget == "big")
            #expect(byName["hard"]?.entry.kind == .hardLink)
            #expect(byName["hard"]?.entry.size == 0)
            #expect(byName[deep]?.entry.kind == .directory)

            let members = try ArchiveFiles(path: archive, file: try LocalFile(path: archive, mode: .readOnly))
            #expect(try members.range(longFile)?.readAll(maximumBytes: 100) == Array("hello".utf8))
            #expect(try members.range("big")?.readAll(maximumBytes: 100_000) == [UInt8](repeating: 7, count: 70_000))
            #expect(try members.range("hard") == members.range("big"))
        }
    }

    @Test func skippedContentsNeedNotBeGiven() throws {
        var tar = TestTarWriter()
        tar.file("a", [UInt8](repeating: 1, count: 3000))
        tar.file("b", [2, 3])
        let archive = tar.finish()
        var reader = TarReader()
        var entries: [(entry: TarEntry, contents: [UInt8])] = []
        func give(_ range: Range<Int>) throws {
            try archive[range].withUnsafeBytes { chunk in
                var bytes = chunk
                while let event = try reader.next(from: &bytes) {
                    switch event {
                    case .entry(let entry):
                        entries.append((entry, []))
                        if entry.path == "a" { reader.skipContents() }
                    case .contents(let piece): entries[entries.count - 1].contents += piece
                    case .entryEnd: break
                    }
                }
            }
        }
        // a's header and the first bytes of its contents: the rest of them is skipped unread.
        try give(0..<600)
        #expect(reader.bytesToSkip == 3072 - 88)
        reader.skip(reader.bytesToSkip)
        #expect(reader.offset == 512 + 3072)
        try give(Int(reader.offset)..<archive.count)
        try reader.finish()
        #expect(entries.map(\.entry.path) == ["a", "b"])
        #expect(entries[0].contents.isEmpty)
        #expect(entries[1].entry.dataOffset == 512 + 3072 + 512)
        #expect(entries[1].contents == [2, 3])
    }

    /// Pieces of one byte, of a block and either side of it, and the whole: the same entries.
    @Test func theArchiveMayComeInPiecesOfAnySize() throws {
        var tar = TestTarWriter()
        tar.pax([("uid", "7")], global: true)
        tar.pax([("path", String(repeating: "p", count: 150))])
        tar.file("short", Array(repeating: 5, count: 1500))
        tar.entry("././@LongLink", type: "L", Array(String(repeating: "l", count: 130).utf8) + [0])
        tar.entry("././@LongLink", type: "K", Array(String(repeating: "t", count: 120).utf8) + [0])
        tar.symlink("link", to: "ignored")
        tar.file("last", Array("end".utf8))
        let archive = tar.finish()
        let whole = try Self.entries(archive, chunkBytes: archive.count)
        #expect(whole.map(\.entry.path) == [String(repeating: "p", count: 150), String(repeating: "l", count: 130), "last"])
        #expect(whole[1].entry.linkTarget == String(repeating: "t", count: 120))
        #expect(whole.allSatisfy { $0.entry.uid == 7 })
        for chunkBytes in [1, 7, 511, 512, 513, 4096] {
            let pieces = try Self.entries(archive, chunkBytes: chunkBytes)
            #expect(pieces.map(\.entry) == whole.map(\.entry), "\(chunkBytes)")
            #expect(pieces.map(\.contents) == whole.map(\.contents), "\(chunkBytes)")
        }
    }

    @Test func paxRecordsOverrideTheHeaderAndLocalOnesOverrideGlobalOnes() throws {
        var tar = TestTarWriter()
        tar.pax([("gid", "40"), ("mtime", "1500000000.25")], global: true)
        tar.pax([("gid", "41"), ("linkpath", "target")])
        tar.symlink("first", to: "ignored")
        tar.pax([("mtime", "-1.5")])
        tar.file("second", [])
        // An empty global value takes the setting back.
        tar.pax([("gid", "")], global: true)
        tar.file("third", [])
        let entries = try Self.entries(tar.finish()).map(\.entry)
        #expect(entries.map(\.gid) == [41, 40, 0])
        #expect(entries[0].linkTarget == "target")
        #expect(entries[0].modificationTime == TarTime(seconds: 1_500_000_000, nanoseconds: 250_000_000))
        #expect(entries[1].modificationTime == TarTime(seconds: -2, nanoseconds: 500_000_000))
    }

    /// A type the reader does not know is an entry with contents, for the caller to refuse or pass over.
    @Test func unknownTypesAreEntriesWithTheirContents() throws {
        var tar = TestTarWriter()
        tar.entry("vendor", type: "Z", [9, 9, 9])
        tar.file("after", [1])
        let entries = try Self.entries(tar.finish())
        #expect(entries.map(\.entry.kind) == [.other(UInt8(ascii: "Z")), .regular])
        #expect(entries.map(\.contents) == [[9, 9, 9], [1]])
    }

    @Test func damagedCutShortAndUnsupportedArchivesAreRefused() throws {
        var tar = TestTarWriter()
        tar.file("a", [1, 2, 3])
        let archive = tar.finish()
        var flipped = archive
        flipped[0] ^= 0x20
        #expect(Self.error(flipped)?.message.contains("checksum") == true)
        #expect(Self.error(Array(archive[..<514]))?.message == "the tar archive is cut short inside 'a'")
        #expect(Self.error(Array(archive[..<700]))?.message == "the tar archive is cut short after 'a'")
        #expect(Self.error(Array(repeating: UInt8(ascii: "x"), count: 600))?.kind == .corrupt)
        // Ending between two entries, without the zero blocks, is an end.
        #expect(try Self.entries(Array(archive[..<1024])).count == 1)

        var longPax = TestTarWriter()
        longPax.entry("PaxHeaders/x", type: "x", [UInt8](repeating: 0, count: TarReader.maximumExtendedHeaderBytes + 1))
        #expect(Self.error(longPax.finish())?.kind == .tooLarge)

        var sparse = TestTarWriter()
        sparse.pax([("GNU.sparse.major", "1")])
        sparse.file("holes", [])
        #expect(Self.error(sparse.finish())?.kind == .unsupported)

        // A name that is not UTF-8 (Latin-1 "café") is refused rather than changed.
        var latin1 = TestTarWriter()
        latin1.entry("././@LongLink", type: "L", [0x63, 0x61, 0x66, 0xE9, 0])
        latin1.file("ignored", [])
        #expect(Self.error(latin1.finish())?.kind == .unsupported)
    }
}
