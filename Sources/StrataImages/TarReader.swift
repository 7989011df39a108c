/// A reader of tar archives (POSIX ustar, pax `x`/`g` extended headers, GNU `L`/`K` long names
/// and links, base-256 numbers) as a state machine: it is given the bytes as they come, in
/// pieces of any size, and returns entries and their contents one event at a time, handing file
/// contents on without copying them. It holds at most one header block and one extended header
/// (`maximumExtendedHeaderBytes`). The agent feeds it a layer as it is decompressed; an image
/// archive on disk is read header by header, the contents between skipped (`skipContents()`,
/// `skip(_:)`) and found again by their `TarEntry.dataOffset`.
///
/// An archive ends at its first all-zero block (bytes after it are ignored) or, as Go's
/// `archive/tar` and so containerd accept, at the end of the input between two entries. It is
/// cut short when the input ends inside a header, an extended header or a file's contents.
public struct TarReader: Sendable {
    public enum Event {
        /// A new entry; its contents follow (for a regular file, or an `other` one), then `entryEnd`.
        case entry(TarEntry)
        /// The next piece of the current entry's contents: a part of the bytes given to `next(from:)`.
        case contents(UnsafeRawBufferPointer)
        case entryEnd
    }

    private enum State {
        /// Collecting a 512-byte header in `block`.
        case header
        /// Passing on `remaining` bytes of the current entry's contents, then skipping `padding`.
        case contents(remaining: Int64, padding: Int)
        /// The current entry is done: `entryEnd` comes next, then `skipping` bytes are passed over.
        case entryEnd(thenSkipping: UInt64)
        /// Collecting an extended header's `remaining` bytes in `extended`, then skipping `padding`.
        case extended(ExtendedKind, remaining: Int, padding: Int)
        /// The end-of-archive block was read.
        case ended
    }

    private enum ExtendedKind {
        case paxLocal, paxGlobal, longName, longLink
    }

    static let blockBytes = 512
    /// A pax extended header or a GNU long name or link, at most (their contents are held in
    /// memory until the entry they describe).
    public static let maximumExtendedHeaderBytes = 1024 * 1024

    private var state = State.header
    /// Bytes to pass over (padding, skipped contents) before `state` resumes.
    private var skipBytes: UInt64 = 0
    private var block: [UInt8] = []
    private var extended: [UInt8] = []
    private var globalPax: [String: String] = [:]
    private var localPax: [String: String] = [:]
    private var longName: String?
    private var longLink: String?
    /// The current entry's path, for messages.
    private var currentPath = ""
    /// Bytes of the archive read or skipped so far.
    public private(set) var offset: UInt64 = 0

    public init() {
        block.reserveCapacity(Self.blockBytes)
    }

    /// True once the end-of-archive block has been read.
    public var reachedEndMarker: Bool {
        if case .ended = state { return true }
        return false
    }

    /// Bytes of the archive the reader will pass over before it reads anything (padding, and
    /// contents skipped with `skipContents()`) once the events of the bytes given are taken: a
    /// caller reading a file may seek past them and say so with `skip(_:)` instead of reading them.
    public var bytesToSkip: UInt64 { skipBytes }

    /// The next event of the archive, taking what it needs from the front of `bytes`; nil when
    /// `bytes` is used up (give the next piece) or the end-of-archive block was read. Call it
    /// until it returns nil before giving more bytes.
    public mutating func next(from bytes: inout UnsafeRawBufferPointer) throws(TarError) -> Event? {
        while true {
            if case .entryEnd(let skipping) = state {
                state = .header
                skipBytes += skipping
                return .entryEnd
            }
            if skipBytes > 0 {
                let skipped = Int(min(skipBytes, UInt64(bytes.count)))
                skipBytes -= UInt64(skipped)
                _ = take(skipped, from: &bytes)
                if skipBytes > 0 { return nil }
            }
            guard !bytes.isEmpty else { return nil }
            switch state {
            case .ended, .entryEnd:
                return nil
            case .header:
                let piece = take(min(Self.blockBytes - block.count, bytes.count), from: &bytes)
                block.append(contentsOf: piece)
                if block.count == Self.blockBytes {
                    let header = block
                    block.removeAll(keepingCapacity: true)
                    if let entry = try readHeader(header) { return .entry(entry) }
                }
            case .contents(let remaining, let padding):
                let piece = take(Int(min(remaining, Int64(bytes.count))), from: &bytes)
                let left = remaining - Int64(piece.count)
                state = left == 0 ? .entryEnd(thenSkipping: UInt64(padding)) : .contents(remaining: left, padding: padding)
                return .contents(piece)
            case .extended(let kind, let remaining, let padding):
                let piece = take(min(remaining, bytes.count), from: &bytes)
                extended.append(contentsOf: piece)
                if remaining - piece.count == 0 {
                    state = .header
                    skipBytes = UInt64(padding)
                    try finishExtended(kind)
                } else {
                    state = .extended(kind, remaining: remaining - piece.count, padding: padding)
                }
            }
        }
    }

    /// Passes over the rest of the current entry's contents without returning them: `entryEnd`
    /// comes next, and the skipped bytes join `bytesToSkip`. Does nothing between entries.
    public mutating func skipContents() {
        guard case .contents(let remaining, let padding) = state else { return }
        state = .entryEnd(thenSkipping: UInt64(remaining) + UInt64(padding))
    }

    /// Says that `count` of `bytesToSkip` were passed over without being given to `next(from:)`.
    public mutating func skip(_ count: UInt64) {
        precondition(count <= skipBytes, "skipped \(count) bytes where \(skipBytes) were to be skipped")
        skipBytes -= count
        offset += count
    }

    /// Throws when the input ended inside an entry or an extended header.
    public func finish() throws(TarError) {
        switch state {
        case .ended:
            return
        case .header where block.isEmpty && skipBytes == 0 && longName == nil && longLink == nil && localPax.isEmpty,
            .entryEnd(thenSkipping: 0) where skipBytes == 0:
            return
        case .header, .entryEnd:
            throw TarError(.corrupt, "the tar archive is cut short after '\(currentPath)'")
        case .contents, .extended:
            throw TarError(.corrupt, "the tar archive is cut short inside '\(currentPath)'")
        }
    }

    /// The first `count` bytes of `bytes`, which go on from after them.
    private mutating func take(_ count: Int, from bytes: inout UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let taken = UnsafeRawBufferPointer(rebasing: bytes[0..<count])
        bytes = UnsafeRawBufferPointer(rebasing: bytes[count...])
        offset += UInt64(count)
        return taken
    }

    // MARK: Headers

    /// The entry a header block starts, or nil for the end block and extended headers.
    private mutating func readHeader(_ header: [UInt8]) throws(TarError) -> TarEntry? {
        if header.allSatisfy({ $0 == 0 }) {
            state = .ended
            return nil
        }
        try Self.verifyChecksum(header, after: currentPath)
        let typeFlag = header[156]
        let size = try Self.number(header[124..<136], field: "size", after: currentPath)
        guard size >= 0 else { throw TarError(.corrupt, "a tar header after '\(currentPath)' has a negative size") }

        let extendedKind: ExtendedKind? =
            switch typeFlag {
            case UInt8(ascii: "x"): .paxLocal
            case UInt8(ascii: "g"): .paxGlobal
            case UInt8(ascii: "L"): .longName
            case UInt8(ascii: "K"): .longLink
            default: nil
            }
        if let extendedKind {
            guard size <= Self.maximumExtendedHeaderBytes else {
                throw TarError(
                    .tooLarge, "an extended tar header after '\(currentPath)' is \(size) bytes (at most \(Self.maximumExtendedHeaderBytes))")
            }
            extended.removeAll(keepingCapacity: true)
            if size == 0 {
                try finishExtended(extendedKind)
            } else {
                state = .extended(extendedKind, remaining: Int(size), padding: Self.padding(size))
            }
            return nil
        }

        var entry = try makeEntry(header, typeFlag: typeFlag, size: size)
        // Pax records override the header and GNU long names; local ones override global ones.
        try Self.apply(globalPax, to: &entry)
        try Self.apply(localPax, to: &entry)
        localPax = [:]
        longName = nil
        longLink = nil
        currentPath = entry.path
        guard !entry.path.isEmpty else { throw TarError(.corrupt, "a tar entry after '\(currentPath)' has no name") }

        if entry.size > 0 {
            state = .contents(remaining: entry.size, padding: Self.padding(entry.size))
        } else {
            // Links, directories, devices and fifos have no contents whatever their size field
            // says: the next block is a header (as Go's archive/tar, and so containerd, read them).
            state = .entryEnd(thenSkipping: 0)
        }
        return entry
    }

    private func makeEntry(_ header: [UInt8], typeFlag: UInt8, size: Int64) throws(TarError) -> TarEntry {
        let kind: TarEntry.Kind
        switch typeFlag {
        case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): kind = .regular
        case UInt8(ascii: "1"): kind = .hardLink
        case UInt8(ascii: "2"): kind = .symbolicLink
        case UInt8(ascii: "3"): kind = .characterDevice
        case UInt8(ascii: "4"): kind = .blockDevice
        case UInt8(ascii: "5"): kind = .directory
        case UInt8(ascii: "6"): kind = .fifo
        default: kind = .other(typeFlag)
        }
        // POSIX ustar ("ustar\0" "00") has a name prefix; GNU ("ustar  \0") and v7 do not.
        let posix = header[257..<263].elementsEqual("ustar\0".utf8)
        var path = try Self.string(header[0..<100], field: "name", after: currentPath)
        if posix {
            let prefix = try Self.string(header[345..<500], field: "prefix", after: currentPath)
            if !prefix.isEmpty { path = prefix + "/" + path }
        }
        if let longName { path = longName }
        var linkTarget = try Self.string(header[157..<257], field: "linkname", after: currentPath)
        if let longLink { linkTarget = longLink }
        let hasDevice = kind == .characterDevice || kind == .blockDevice
        return TarEntry(
            path: path, kind: kind, linkTarget: linkTarget, size: Self.hasContents(kind) ? size : 0,
            mode: UInt32(truncatingIfNeeded: try Self.number(header[100..<108], field: "mode", after: currentPath)) & 0o7777,
            uid: try Self.id(header[108..<116], field: "uid", after: currentPath),
            gid: try Self.id(header[116..<124], field: "gid", after: currentPath),
            modificationTime: TarTime(seconds: try Self.number(header[136..<148], field: "mtime", after: currentPath), nanoseconds: 0),
            deviceMajor: hasDevice ? try Self.id(header[329..<337], field: "devmajor", after: currentPath) : 0,
            deviceMinor: hasDevice ? try Self.id(header[337..<345], field: "devminor", after: currentPath) : 0,
            dataOffset: offset)
    }

    /// Regular files and types this reader does not know are followed by their contents.
    static func hasContents(_ kind: TarEntry.Kind) -> Bool {
        switch kind {
        case .regular, .other: true
        case .hardLink, .symbolicLink, .characterDevice, .blockDevice, .directory, .fifo: false
        }
    }

    private mutating func finishExtended(_ kind: ExtendedKind) throws(TarError) {
        let bytes = extended
        extended.removeAll(keepingCapacity: true)
        switch kind {
        case .longName:
            longName = try Self.string(bytes[...], field: "GNU long name", after: currentPath)
        case .longLink:
            longLink = try Self.string(bytes[...], field: "GNU long link", after: currentPath)
        case .paxLocal:
            for (key, value) in try Self.paxRecords(bytes, after: currentPath) { localPax[key] = value }
        case .paxGlobal:
            for (key, value) in try Self.paxRecords(bytes, after: currentPath) {
                // An empty value takes a global setting back.
                globalPax[key] = value.isEmpty ? nil : value
            }
        }
    }

    // MARK: Fields

    /// Bytes from the end of `size` bytes of data to the next block.
    static func padding(_ size: Int64) -> Int {
        let remainder = Int(size % Int64(blockBytes))
        return remainder == 0 ? 0 : blockBytes - remainder
    }

    /// The header's checksum: the sum of its bytes with the checksum field as spaces, unsigned
    /// (POSIX) or, as some old tars wrote it, signed.
    static func verifyChecksum(_ header: [UInt8], after path: String) throws(TarError) {
        let recorded = try number(header[148..<156], field: "checksum", after: path)
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for (index, byte) in header.enumerated() {
            let counted = (148..<156).contains(index) ? UInt8(ascii: " ") : byte
            unsigned += Int64(counted)
            signed += Int64(Int8(bitPattern: counted))
        }
        guard recorded == unsigned || recorded == signed else {
            throw TarError(.corrupt, "a tar header after '\(path.isEmpty ? "the start" : path)' has a bad checksum")
        }
    }

    /// An octal field (NUL- or space-terminated), or GNU's base-256 form (first byte's high bit set).
    static func number(_ field: ArraySlice<UInt8>, field name: String, after path: String) throws(TarError) -> Int64 {
        guard let first = field.first else { return 0 }
        if first & 0x80 != 0 {
            // Base 256, big-endian; a negative number (0xFF first) is not a size, id or time Strata takes.
            guard first != 0xFF else { throw TarError(.corrupt, "tar field \(name) after '\(path)' is negative") }
            var value = Int64(first & 0x7F)
            for byte in field.dropFirst() {
                guard value <= (Int64.max >> 8) else { throw TarError(.corrupt, "tar field \(name) after '\(path)' overflows") }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        var value: Int64 = 0
        var started = false
        for byte in field {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                guard value <= (Int64.max >> 3) else { throw TarError(.corrupt, "tar field \(name) after '\(path)' overflows") }
                value = value << 3 | Int64(byte - UInt8(ascii: "0"))
                started = true
            case UInt8(ascii: " ") where !started:
                continue
            case 0, UInt8(ascii: " "):
                return value
            default:
                throw TarError(.corrupt, "tar field \(name) after '\(path.isEmpty ? "the start" : path)' is not octal")
            }
        }
        return value
    }

    static func id(_ field: ArraySlice<UInt8>, field name: String, after path: String) throws(TarError) -> UInt32 {
        let value = try number(field, field: name, after: path)
        guard let id = UInt32(exactly: value) else { throw TarError(.corrupt, "tar field \(name) after '\(path)' is out of range") }
        return id
    }

    /// A NUL-terminated field as UTF-8 (a name that is not UTF-8 is refused rather than changed).
    static func string(_ field: ArraySlice<UInt8>, field name: String, after path: String) throws(TarError) -> String {
        let bytes = field.prefix { $0 != 0 }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw TarError(.unsupported, "tar field \(name) after '\(path)' is not UTF-8")
        }
        return text
    }

    /// `"<length> <key>=<value>\n"` records.
    static func paxRecords(_ bytes: [UInt8], after path: String) throws(TarError) -> [(String, String)] {
        var records: [(String, String)] = []
        var offset = 0
        let bad = TarError(.corrupt, "a pax header after '\(path)' is malformed")
        while offset < bytes.count {
            // Trailing NULs pad some writers' records.
            if bytes[offset...].allSatisfy({ $0 == 0 }) { break }
            guard let space = bytes[offset...].firstIndex(of: UInt8(ascii: " ")),
                let length = Int(String(decoding: bytes[offset..<space], as: UTF8.self)), length > space - offset,
                offset + length <= bytes.count, bytes[offset + length - 1] == UInt8(ascii: "\n")
            else { throw bad }
            let record = bytes[(space + 1)..<(offset + length - 1)]
            guard let equals = record.firstIndex(of: UInt8(ascii: "=")), !record.contains(0),
                let key = String(validating: record[..<equals], as: UTF8.self),
                let value = String(validating: record[(equals + 1)...], as: UTF8.self)
            else { throw bad }
            records.append((key, value))
            offset += length
        }
        return records
    }

    /// Applies the pax keys Strata uses; sparse files (GNU.sparse.*) are refused.
    static func apply(_ pax: [String: String], to entry: inout TarEntry) throws(TarError) {
        for (key, value) in pax where !value.isEmpty {
            let bad = TarError(.corrupt, "pax record \(key)=\(value) of '\(entry.path)' is not valid")
            switch key {
            case "path": entry.path = value
            case "linkpath": entry.linkTarget = value
            case "size":
                guard let size = Int64(value), size >= 0 else { throw bad }
                if hasContents(entry.kind) { entry.size = size }
            case "uid":
                guard let uid = UInt32(value) else { throw bad }
                entry.uid = uid
            case "gid":
                guard let gid = UInt32(value) else { throw bad }
                entry.gid = gid
            case "mtime":
                guard let time = parseTime(value) else { throw bad }
                entry.modificationTime = time
            default:
                if key.hasPrefix("GNU.sparse.") {
                    throw TarError(.unsupported, "'\(entry.path)' is a sparse file, which Strata does not unpack")
                }
            }
        }
    }

    /// `seconds[.fraction]`, possibly negative.
    static func parseTime(_ text: String) -> TarTime? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let seconds = Int64(parts[0]) else { return nil }
        var nanoseconds: Int32 = 0
        if parts.count == 2 {
            let digits = parts[1].prefix(9)
            guard !digits.isEmpty, digits.allSatisfy({ $0 >= "0" && $0 <= "9" }), let fraction = Int32(digits) else { return nil }
            nanoseconds = fraction * Int32(pow10(9 - digits.count))
            if text.hasPrefix("-"), nanoseconds > 0 {
                // -1.5 is 1.5 seconds before the epoch: -2 seconds and 500 ms.
                return TarTime(seconds: seconds - 1, nanoseconds: 1_000_000_000 - nanoseconds)
            }
        }
        return TarTime(seconds: seconds, nanoseconds: nanoseconds)
    }

    private static func pow10(_ exponent: Int) -> Int {
        (0..<exponent).reduce(1) { value, _ in value * 10 }
    }
}
