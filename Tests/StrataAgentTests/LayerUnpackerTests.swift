import Foundation
import StrataImages
import Synchronization
import Testing

@testable import StrataAgent

/// Tar archives written byte by byte (POSIX ustar, pax and GNU long-name records), so that tests
/// can make entries no `tar` command would: `../` names, links out of the root.
struct TestTar {
    private(set) var bytes: [UInt8] = []

    enum Kind: UInt8 {
        case regular = 0x30, hardLink = 0x31, symbolicLink = 0x32, characterDevice = 0x33, blockDevice = 0x34
        case directory = 0x35, fifo = 0x36, paxLocal = 0x78, paxGlobal = 0x67, gnuLongName = 0x4C, gnuLongLink = 0x4B
        /// A type no tar reader knows ('Z').
        case unknown = 0x5A
    }

    mutating func file(_ name: String, _ contents: String, mode: UInt32 = 0o644, uid: UInt32 = 0, gid: UInt32 = 0, mtime: Int64 = 1_700_000_000) {
        entry(name, .regular, contents: Array(contents.utf8), mode: mode, uid: uid, gid: gid, mtime: mtime)
    }

    mutating func directory(_ name: String, mode: UInt32 = 0o755, mtime: Int64 = 1_700_000_000) {
        entry(name, .directory, mode: mode, mtime: mtime)
    }

    mutating func symbolicLink(_ name: String, to target: String) {
        entry(name, .symbolicLink, linkName: target, mode: 0o777)
    }

    mutating func hardLink(_ name: String, to target: String) {
        entry(name, .hardLink, linkName: target)
    }

    /// A pax record set before the next entry.
    mutating func pax(_ records: [(String, String)], global: Bool = false) {
        var data: [UInt8] = []
        for (key, value) in records {
            let body = " \(key)=\(value)\n"
            var length = body.utf8.count + 1
            while String(length).utf8.count + body.utf8.count != length { length += 1 }
            data += Array("\(length)\(body)".utf8)
        }
        entry("PaxHeaders/x", global ? .paxGlobal : .paxLocal, contents: data)
    }

    mutating func gnuLongName(_ name: String) {
        entry("././@LongLink", .gnuLongName, contents: Array(name.utf8) + [0], gnu: true)
    }

    mutating func entry(
        _ name: String, _ kind: Kind, contents: [UInt8] = [], linkName: String = "", mode: UInt32 = 0o644, uid: UInt32 = 0,
        gid: UInt32 = 0, mtime: Int64 = 1_700_000_000, major: UInt32 = 0, minor: UInt32 = 0, gnu: Bool = false
    ) {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int, width: Int) {
            for (index, byte) in text.utf8.prefix(width).enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: Int64, at offset: Int, width: Int) {
            put(String(repeating: "0", count: max(0, width - 1 - String(value, radix: 8).count)) + String(value, radix: 8), at: offset, width: width - 1)
        }
        put(name, at: 0, width: 100)
        octal(Int64(mode), at: 100, width: 8)
        octal(Int64(uid), at: 108, width: 8)
        octal(Int64(gid), at: 116, width: 8)
        octal(Int64(contents.count), at: 124, width: 12)
        octal(mtime, at: 136, width: 12)
        header[156] = kind.rawValue
        put(linkName, at: 157, width: 100)
        put(gnu ? "ustar  " : "ustar", at: 257, width: gnu ? 8 : 6)
        if !gnu { put("00", at: 263, width: 2) }
        octal(Int64(major), at: 329, width: 8)
        octal(Int64(minor), at: 337, width: 8)
        for index in 148..<156 { header[index] = 0x20 }
        let sum = header.reduce(0) { $0 + Int64($1) }
        put(String(repeating: "0", count: 6 - String(sum, radix: 8).count) + String(sum, radix: 8), at: 148, width: 6)
        header[154] = 0
        bytes += header + contents
        bytes += [UInt8](repeating: 0, count: (512 - contents.count % 512) % 512)
    }

    /// The archive with its end-of-archive blocks.
    var archive: [UInt8] { bytes + [UInt8](repeating: 0, count: 1024) }

    /// Applies the archive, as an uncompressed layer, onto `root`.
    func apply(onto root: String) async throws(LayerUnpackError) {
        try await TestLayer(blob: archive, mediaType: TestLayer.tarType).apply(onto: root)
    }
}

/// A scratch directory for layer tests, removed at the end.
final class LayerScratch: Sendable {
    let directory: String

    init() throws {
        var template = Array("/tmp/strata-layers-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw FixtureError("mkdtemp failed") }
        directory = String(cString: made)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// A new empty directory.
    func makeDirectory(_ name: String) throws -> String {
        let path = "\(directory)/\(name)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func read(_ path: String) -> String? {
        try? String(contentsOfFile: path, encoding: .utf8)
    }

    /// The link's target, or nil when `path` is not a link.
    func linkTarget(_ path: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: path)
    }

    func exists(_ path: String) -> Bool {
        var information = stat()
        return lstat(path, &information) == 0
    }

    func status(_ path: String) -> stat? {
        var information = stat()
        return lstat(path, &information) == 0 ? information : nil
    }

    /// Runs a shell command line in the scratch directory; returns its standard output.
    @discardableResult
    func shell(_ command: String) throws -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let bytes = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw FixtureError("'\(command)' exited with \(process.terminationStatus)") }
        return Array(bytes)
    }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = "\(directory)/\(name)"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }
}

/// A layer blob and the descriptor that names it.
struct TestLayer: Sendable {
    var blob: [UInt8]
    var layer: ImageLayer

    static let tarType = "application/vnd.oci.image.layer.v1.tar"
    static let gzipType = "application/vnd.oci.image.layer.v1.tar+gzip"
    static let zstdType = "application/vnd.oci.image.layer.v1.tar+zstd"

    init(blob: [UInt8], mediaType: String, digest: String? = nil) {
        self.blob = blob
        self.layer = ImageLayer(digest: digest ?? Digest.of(blob).description, mediaType: mediaType)
    }

    /// `tar` compressed with the command (`gzip -c`, `zstd -c -q`), or as it is.
    static func compressed(_ tar: [UInt8], with command: String?, in scratch: LayerScratch) throws -> [UInt8] {
        guard let command else { return tar }
        let name = "blob-\(UInt64.random(in: 0...UInt64.max))"
        _ = try scratch.write(name, tar)
        return try scratch.shell("\(command) < \(name)")
    }

    /// The blob in chunks of `chunkBytes`, as the DFS would stream it.
    func chunks(chunkBytes: Int = 4093) -> AsyncThrowingStream<[UInt8], any Error> {
        let blob = self.blob
        return AsyncThrowingStream { continuation in
            var offset = 0
            while offset < blob.count {
                continuation.yield(Array(blob[offset..<min(offset + chunkBytes, blob.count)]))
                offset += chunkBytes
            }
            continuation.finish()
        }
    }

    func apply(onto root: String, maximumBytes: Int64 = 1 << 30) async throws(LayerUnpackError) {
        try await LayerUnpacker.apply(layer, chunks: chunks(), onto: root, maximumBytes: maximumBytes)
    }
}

func unpackError(_ body: () async throws(LayerUnpackError) -> Void) async -> LayerUnpackError? {
    do {
        try await body()
        return nil
    } catch {
        return error
    }
}

@Suite(.timeLimit(.minutes(2)))
struct LayerUnpackerTests {
    @Test(arguments: [(TestLayer.tarType, nil), (TestLayer.gzipType, "gzip -c"), (TestLayer.zstdType, "zstd -c -q")])
    func aLayerOfFilesDirectoriesAndLinksUnpacksFromEachCompression(mediaType: String, command: String?) async throws {
        let scratch = try LayerScratch()
        let source = try scratch.makeDirectory("source")
        try scratch.shell(
            """
            mkdir -p source/etc source/usr/bin && printf 'hello\\n' > source/etc/greeting && chmod 640 source/etc/greeting \
            && head -c 300000 /dev/urandom > source/usr/bin/tool && chmod 755 source/usr/bin/tool \
            && ln -s ../usr/bin/tool source/etc/tool-link && ln source/usr/bin/tool source/usr/bin/tool-hard \
            && touch -d @1600000000 source/etc/greeting
            """)
        _ = source
        let tar = try scratch.shell("tar -C source -cf - .")
        let layer = TestLayer(blob: try TestLayer.compressed(tar, with: command, in: scratch), mediaType: mediaType)
        let root = try scratch.makeDirectory("root")
        try await layer.apply(onto: root)

        #expect(scratch.read("\(root)/etc/greeting") == "hello\n")
        #expect(scratch.status("\(root)/etc/greeting").map { $0.st_mode & 0o7777 } == 0o640)
        #expect(scratch.status("\(root)/etc/greeting").map { $0.st_mtim.tv_sec } == 1_600_000_000)
        #expect(FileManager.default.contents(atPath: "\(root)/usr/bin/tool") == FileManager.default.contents(atPath: "\(source)/usr/bin/tool"))
        #expect(scratch.linkTarget("\(root)/etc/tool-link") == "../usr/bin/tool")
        let tool = try #require(scratch.status("\(root)/usr/bin/tool"))
        let hard = try #require(scratch.status("\(root)/usr/bin/tool-hard"))
        #expect(tool.st_ino == hard.st_ino && tool.st_nlink == 2)
    }

    @Test func severalGzipMembersAreOneStream() async throws {
        let scratch = try LayerScratch()
        var tar = TestTar()
        tar.file("a", String(repeating: "a", count: 5000))
        tar.file("b", "bee")
        let archive = tar.archive
        _ = try scratch.write("first", Array(archive[..<1024]))
        _ = try scratch.write("second", Array(archive[1024...]))
        let blob = try scratch.shell("gzip -c first; gzip -c second")
        try await TestLayer(blob: blob, mediaType: TestLayer.gzipType).apply(onto: try scratch.makeDirectory("root"))
        #expect(scratch.read("\(scratch.directory)/root/a") == String(repeating: "a", count: 5000))
        #expect(scratch.read("\(scratch.directory)/root/b") == "bee")
    }

    @Test func paxAndGNULongNamesLinksOwnersAndTimesAreRead() async throws {
        let scratch = try LayerScratch()
        let longDirectory = String(repeating: "d", count: 120)
        var tar = TestTar()
        tar.pax([("path", "\(longDirectory)/pax-file"), ("mtime", "1500000000.25"), ("uid", "4242"), ("gid", "4343")])
        tar.file("short-name-ignored", "from pax")
        tar.gnuLongName("\(longDirectory)/gnu-file")
        tar.file("also-ignored", "from gnu")
        tar.pax([("linkpath", "\(longDirectory)/pax-file")])
        tar.symbolicLink("link", to: "ignored")
        let root = try scratch.makeDirectory("root")
        try await tar.apply(onto: root)
        #expect(scratch.read("\(root)/\(longDirectory)/pax-file") == "from pax")
        #expect(scratch.read("\(root)/\(longDirectory)/gnu-file") == "from gnu")
        #expect(scratch.linkTarget("\(root)/link") == "\(longDirectory)/pax-file")
        #expect(!scratch.exists("\(root)/short-name-ignored") && !scratch.exists("\(root)/also-ignored"))
        let status = try #require(scratch.status("\(root)/\(longDirectory)/pax-file"))
        #expect(status.st_mtim.tv_sec == 1_500_000_000 && status.st_mtim.tv_nsec == 250_000_000)
        if geteuid() == 0 { #expect(status.st_uid == 4242 && status.st_gid == 4343) }
    }

    @Test func whiteoutsRemoveAndOpaqueDirectoriesHideWhatLowerLayersMade() async throws {
        let scratch = try LayerScratch()
        let root = try scratch.makeDirectory("root")
        var lower = TestTar()
        lower.directory("etc")
        lower.file("etc/keep", "keep")
        lower.file("etc/gone", "gone")
        lower.directory("etc/gone-dir")
        lower.file("etc/gone-dir/inner", "inner")
        lower.directory("opaque")
        lower.file("opaque/old", "old")
        lower.directory("opaque/sub")
        lower.file("opaque/sub/old-deep", "old")
        try await lower.apply(onto: root)

        var upper = TestTar()
        upper.file("etc/.wh.gone", "")
        upper.file("etc/.wh.gone-dir", "")
        upper.file("etc/.wh.never-there", "")
        upper.directory("opaque")
        // What this layer puts in the opaque directory stays, before or after the marker.
        upper.file("opaque/new-before", "new")
        upper.file("opaque/.wh..wh..opq", "")
        upper.directory("opaque/sub")
        upper.file("opaque/sub/new-deep", "new")
        try await upper.apply(onto: root)

        #expect(scratch.read("\(root)/etc/keep") == "keep")
        #expect(!scratch.exists("\(root)/etc/gone") && !scratch.exists("\(root)/etc/gone-dir"))
        #expect(!scratch.exists("\(root)/etc/.wh.gone") && !scratch.exists("\(root)/etc/.wh.never-there"))
        #expect(!scratch.exists("\(root)/opaque/old") && !scratch.exists("\(root)/opaque/sub/old-deep"))
        #expect(scratch.read("\(root)/opaque/new-before") == "new")
        #expect(scratch.read("\(root)/opaque/sub/new-deep") == "new")
        #expect(!scratch.exists("\(root)/opaque/.wh..wh..opq"))
    }

    @Test func aLaterEntryReplacesOneOfAnotherType() async throws {
        let scratch = try LayerScratch()
        let root = try scratch.makeDirectory("root")
        var lower = TestTar()
        lower.directory("was-dir")
        lower.file("was-dir/inside", "x")
        lower.file("was-file", "x")
        lower.symbolicLink("was-link", to: "/etc")
        try await lower.apply(onto: root)
        var upper = TestTar()
        upper.file("was-dir", "now a file")
        upper.directory("was-file")
        upper.file("was-file/inside", "now inside a directory")
        upper.file("was-link", "now a file, the link replaced and not followed")
        try await upper.apply(onto: root)
        #expect(scratch.read("\(root)/was-dir") == "now a file")
        #expect(scratch.read("\(root)/was-file/inside") == "now inside a directory")
        #expect(scratch.linkTarget("\(root)/was-link") == nil)
        #expect(scratch.read("\(root)/was-link") == "now a file, the link replaced and not followed")
    }

    @Test func hardLinksJoinFilesOfThisAndLowerLayersAndMayNotNameWhatIsMissing() async throws {
        let scratch = try LayerScratch()
        let root = try scratch.makeDirectory("root")
        var lower = TestTar()
        lower.file("lower-file", "lower")
        try await lower.apply(onto: root)
        var upper = TestTar()
        upper.file("bin/tool", "tool")
        upper.hardLink("bin/tool-again", to: "bin/tool")
        upper.hardLink("/bin/to-lower", to: "./lower-file")
        try await upper.apply(onto: root)
        #expect(scratch.status("\(root)/bin/tool")?.st_ino == scratch.status("\(root)/bin/tool-again")?.st_ino)
        #expect(scratch.status("\(root)/lower-file")?.st_ino == scratch.status("\(root)/bin/to-lower")?.st_ino)

        var missing = TestTar()
        missing.hardLink("dangling", to: "no-such-file")
        let error = await unpackError { () throws(LayerUnpackError) in
            try await missing.apply(onto: root)
        }
        #expect(error?.kind == .corrupt)
    }

    @Test func devicesAreMadeOnlyAsRootAndFifosAlways() async throws {
        let scratch = try LayerScratch()
        let root = try scratch.makeDirectory("root")
        var tar = TestTar()
        tar.entry("dev/null-copy", .characterDevice, mode: 0o666, major: 1, minor: 3)
        tar.entry("pipe", .fifo, mode: 0o600)
        try await tar.apply(onto: root)
        #expect(scratch.status("\(root)/pipe").map { $0.st_mode & S_IFMT } == S_IFIFO)
        if geteuid() == 0 {
            let device = try #require(scratch.status("\(root)/dev/null-copy"))
            #expect(device.st_mode & S_IFMT == S_IFCHR)
            #expect(device.st_rdev == LayerApplier.deviceNumber(major: 1, minor: 3))
        } else {
            #expect(!scratch.exists("\(root)/dev/null-copy"))
        }
    }

    @Test func namesWithDotDotAndHardLinksOutOfTheRootAreRefusedAndWriteNothingOutside() async throws {
        let scratch = try LayerScratch()
        let root = try scratch.makeDirectory("deep/root")
        for (name, build) in [
            ("dot-dot file", { (tar: inout TestTar) in tar.file("../../escaped", "x") }),
            ("dot-dot inside", { (tar: inout TestTar) in tar.file("a/../../escaped", "x") }),
            ("hard link out", { (tar: inout TestTar) in tar.hardLink("inside", to: "../../outside-file") }),
        ] {
            var tar = TestTar()
            build(&tar)
            let error = await unpackError { () throws(LayerUnpackError) in
                try await tar.apply(onto: root)
            }
            #expect(error?.kind == .unsafePath, "\(name): \(String(describing: error))")
        }
        #expect(!scratch.exists("\(scratch.directory)/escaped") && !scratch.exists("\(scratch.directory)/deep/escaped"))
    }

    @Test func linksThatPointOutOfTheRootAreFollowedOnlyInsideIt() async throws {
        let scratch = try LayerScratch()
        let outside = try scratch.makeDirectory("outside")
        let root = try scratch.makeDirectory("root")
        var tar = TestTar()
        // An absolute link to a real directory of the host, then a file written through it.
        tar.symbolicLink("absolute", to: outside)
        tar.file("absolute/through-absolute", "x")
        // A relative link climbing past the root, then a file written through it.
        tar.symbolicLink("climb", to: "../../../../..\(outside)")
        tar.file("climb/through-climb", "x")
        // A link to a link out of the root.
        tar.symbolicLink("chain", to: "climb")
        tar.file("chain/through-chain", "x")
        tar.file("/absolute-name", "taken from the root")
        try await tar.apply(onto: root)

        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
        // As in a chroot: the links lead to the same path under the root.
        for name in ["through-absolute", "through-climb", "through-chain"] {
            #expect(scratch.read("\(root)\(outside)/\(name)") == "x", "\(name)")
        }
        #expect(scratch.read("\(root)/absolute-name") == "taken from the root")
        #expect(scratch.linkTarget("\(root)/absolute") == outside)
    }

    @Test func aLinkLoopIsAnErrorNotAHang() async throws {
        let scratch = try LayerScratch()
        var tar = TestTar()
        tar.symbolicLink("loop-a", to: "loop-b")
        tar.symbolicLink("loop-b", to: "loop-a")
        tar.file("loop-a/file", "x")
        let error = await unpackError { () throws(LayerUnpackError) in
            try await TestLayer(blob: tar.archive, mediaType: TestLayer.tarType).apply(onto: try! scratch.makeDirectory("root"))
        }
        #expect(error?.kind == .unsafePath)
    }

    @Test func truncatedAndDamagedLayersAndAWrongDigestFailClearly() async throws {
        let scratch = try LayerScratch()
        var tar = TestTar()
        tar.file("big", String(repeating: "z", count: 100_000))
        tar.file("after", "after")
        let archive = tar.archive
        let gzip = try TestLayer.compressed(archive, with: "gzip -c", in: scratch)
        let zstd = try TestLayer.compressed(archive, with: "zstd -c -q", in: scratch)
        var damagedGzip = gzip
        damagedGzip[damagedGzip.count / 2] ^= 0xFF
        var badChecksum = archive
        badChecksum[10] ^= 0x01
        var unknownType = TestTar()
        unknownType.entry("vendor-thing", .unknown, contents: [1, 2, 3])
        let cases: [(String, TestLayer, LayerUnpackError.Kind, String)] = [
            ("tar cut inside a file", TestLayer(blob: Array(archive[..<3000]), mediaType: TestLayer.tarType), .corrupt, "cut short"),
            ("tar cut inside a header", TestLayer(blob: Array(archive[..<700]), mediaType: TestLayer.tarType), .corrupt, "cut short"),
            ("gzip cut short", TestLayer(blob: Array(gzip.dropLast(20)), mediaType: TestLayer.gzipType), .corrupt, "gzip"),
            ("zstd cut short", TestLayer(blob: Array(zstd.dropLast(20)), mediaType: TestLayer.zstdType), .corrupt, "zstd"),
            ("gzip damaged", TestLayer(blob: damagedGzip, mediaType: TestLayer.gzipType), .corrupt, "gzip"),
            ("bad header checksum", TestLayer(blob: badChecksum, mediaType: TestLayer.tarType), .corrupt, "checksum"),
            ("unknown entry type", TestLayer(blob: unknownType.archive, mediaType: TestLayer.tarType), .unsupported, "type 'Z'"),
            (
                "wrong digest", TestLayer(blob: gzip, mediaType: TestLayer.gzipType, digest: Digest.of([1, 2, 3]).description),
                .digestMismatch, "hashes to"
            ),
            ("unknown media type", TestLayer(blob: gzip, mediaType: "application/x-rar"), .unsupported, "media type"),
            ("not a sha256 digest", TestLayer(blob: gzip, mediaType: TestLayer.gzipType, digest: "md5:abc"), .unsupported, "digest"),
        ]
        for (name, layer, kind, words) in cases {
            let error = await unpackError { () throws(LayerUnpackError) in
                try await layer.apply(onto: try! scratch.makeDirectory("root-\(name.replacing(" ", with: "-"))"))
            }
            #expect(error?.kind == kind, "\(name): \(String(describing: error))")
            #expect(error?.message.contains(words) == true, "\(name): \(String(describing: error))")
        }
    }

    @Test func aLayerLargerThanTheBoundIsRefused() async throws {
        let scratch = try LayerScratch()
        var tar = TestTar()
        tar.file("big", String(repeating: "z", count: 10_000))
        let error = await unpackError { () throws(LayerUnpackError) in
            try await TestLayer(blob: tar.archive, mediaType: TestLayer.tarType).apply(onto: try! scratch.makeDirectory("root"), maximumBytes: 5_000)
        }
        #expect(error?.kind == .tooLarge)
    }

    @Test func aFailingSourceIsAnIOError() async throws {
        struct Broken: Error {}
        let scratch = try LayerScratch()
        let layer = ImageLayer(digest: Digest.of([]).description, mediaType: TestLayer.tarType)
        let chunks = AsyncThrowingStream<[UInt8], any Error> { continuation in
            continuation.yield([UInt8](repeating: 0, count: 10))
            continuation.finish(throwing: Broken())
        }
        let error = await unpackError { () throws(LayerUnpackError) in
            try await LayerUnpacker.apply(layer, chunks: chunks, onto: try! scratch.makeDirectory("root"), maximumBytes: 1 << 20)
        }
        #expect(error?.kind == .io)
        #expect(error?.message.contains("reading layer") == true)
    }
}
