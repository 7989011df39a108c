/// A streaming reader of tar archives (POSIX ustar, pax `x`/`g` extended headers, GNU `L`/`K`
/// long names and links, base-256 numbers) as a state machine: `feed` takes the bytes as they
/// come, in pieces of any size, and reports entries and their contents through a handler,
/// handing file contents on without copying them. It holds at most one header block and one
/// extended header (`ImageLimits.maximumExtendedHeaderBytes`).
///
/// An archive ends at its first all-zero block (bytes after it are ignored) or, as Go's
/// `archive/tar` and so containerd accept, at the end of the input between two entries. It is
/// cut short when the input ends inside a header, an extended header or a file's contents.
struct TarReader {
    enum Event {
        /// A new entry; for a regular file its contents follow, then `entryEnd`.
        case entry(TarEntry)
        /// The next piece of the current regular file's contents, valid only during the call.
        case contents(UnsafeRawBufferPointer)
        case entryEnd
    }

    private enum State {
        /// Collecting a 512-byte header in `block`.
        case header
        /// Passing on `remaining` bytes of the current file's contents, then skipping `padding`.
        case contents(remaining: Int64, padding: Int)
        /// Collecting an extended header's `remaining` bytes in `extended`, then skipping `padding`.
        case extended(ExtendedKind, remaining: Int, padding: Int)
        /// The end-of-archive block was read.
        case ended
    }

    private enum ExtendedKind {
        case paxLocal, paxGlobal, longName, longLink
    }

    static let blockBytes = 512

    private var state = State.header
    /// Bytes to skip (padding to the next block) before `state` resumes.
    private var skip = 0
    private var block: [UInt8] = []
    private var extended: [UInt8] = []
    private var globalPax: [String: String] = [:]
    private var localPax: [String: String] = [:]
    private var longName: String?
    private var longLink: String?
    /// The current entry's path, for messages.
    private var currentPath = ""

    init() {
        block.reserveCapacity(Self.blockBytes)
    }

    /// True once the end-of-archive block has been read.
    var reachedEndMarker: Bool {
        if case .ended = state { return true }
        return false
    }

    mutating func feed(
        _ bytes: UnsafeRawBufferPointer, _ handler: (Event) throws(LayerUnpackError) -> Void
    ) throws(LayerUnpackError) {
        var offset = 0
        while offset < bytes.count {
            if skip > 0 {
                let skipped = min(skip, bytes.count - offset)
                skip -= skipped
                offset += skipped
                continue
            }
            switch state {
            case .ended:
                return
            case .header:
                let taken = min(Self.blockBytes - block.count, bytes.count - offset)
                block.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + taken)]))
                offset += taken
                if block.count == Self.blockBytes {
                    let header = block
                    block.removeAll(keepingCapacity: true)
                    try readHeader(header, handler)
                }
            case .contents(let remaining, let padding):
                let taken = Int(min(remaining, Int64(bytes.count - offset)))
                try handler(.contents(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + taken)])))
                offset += taken
                if remaining - Int64(taken) == 0 {
                    state = .header
                    skip = padding
                    try handler(.entryEnd)
                } else {
                    state = .contents(remaining: remaining - Int64(taken), padding: padding)
                }
            case .extended(let kind, let remaining, let padding):
                let taken = min(remaining, bytes.count - offset)
                extended.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + taken)]))
                offset += taken
                if remaining - taken == 0 {
                    state = .header
                    skip = padding
                    try finishExtended(kind)
                } else {
                    state = .extended(kind, remaining: remaining - taken, padding: padding)
                }
            }
        }
    }

    /// Throws when the input ended inside an entry or an extended header.
    func finish() throws(LayerUnpackError) {
        switch state {
        case .ended:
            return
        case .header where block.isEmpty && skip == 0 && longName == nil && longLink == nil && localPax.isEmpty:
            return
        case .header:
            throw LayerUnpackError(.corrupt, "the tar archive is cut short after '\(currentPath)'")
        case .contents, .extended:
            throw LayerUnpackError(.corrupt, "the tar archive is cut short inside '\(currentPath)'")
        }
    }

    // MARK: Headers

    private mutating func readHeader(_ header: [UInt8], _ handler: (Event) throws(LayerUnpackError) -> Void) throws(LayerUnpackError) {
        if header.allSatisfy({ $0 == 0 }) {
            state = .ended
            return
        }
        try Self.verifyChecksum(header, after: currentPath)
        let typeFlag = header[156]
        let size = try Self.number(header[124..<136], field: "size", after: currentPath)
        guard size >= 0 else { throw LayerUnpackError(.corrupt, "a tar header after '\(currentPath)' has a negative size") }

        let extendedKind: ExtendedKind? =
            switch typeFlag {
            case UInt8(ascii: "x"): .paxLocal
            case UInt8(ascii: "g"): .paxGlobal
            case UInt8(ascii: "L"): .longName
            case UInt8(ascii: "K"): .longLink
            default: nil
            }
        if let extendedKind {
            guard size <= ImageLimits.maximumExtendedHeaderBytes else {
                throw LayerUnpackError(
                    .tooLarge, "an extended tar header after '\(currentPath)' is \(size) bytes (at most \(ImageLimits.maximumExtendedHeaderBytes))")
            }
            extended.removeAll(keepingCapacity: true)
            if size == 0 {
                try finishExtended(extendedKind)
            } else {
                state = .extended(extendedKind, remaining: Int(size), padding: Self.padding(size))
            }
            return
        }

        var entry = try makeEntry(header, typeFlag: typeFlag, size: size)
        // Pax records override the header and GNU long names; local ones override global ones.
        try Self.apply(globalPax, to: &entry)
        try Self.apply(localPax, to: &entry)
        localPax = [:]
        longName = nil
        longLink = nil
        currentPath = entry.path
        guard !entry.path.isEmpty else { throw LayerUnpackError(.corrupt, "a tar entry after '\(currentPath)' has no name") }

        try handler(.entry(entry))
        if entry.kind == .regular, entry.size > 0 {
            state = .contents(remaining: entry.size, padding: Self.padding(entry.size))
        } else {
            // Links, directories, devices and fifos have no contents whatever their size field
            // says: the next block is a header (as Go's archive/tar, and so containerd, read them).
            try handler(.entryEnd)
        }
    }

    private func makeEntry(_ header: [UInt8], typeFlag: UInt8, size: Int64) throws(LayerUnpackError) -> TarEntry {
        let kind: TarEntry.Kind
        switch typeFlag {
        case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): kind = .regular
        case UInt8(ascii: "1"): kind = .hardLink
        case UInt8(ascii: "2"): kind = .symbolicLink
        case UInt8(ascii: "3"): kind = .characterDevice
        case UInt8(ascii: "4"): kind = .blockDevice
        case UInt8(ascii: "5"): kind = .directory
        case UInt8(ascii: "6"): kind = .fifo
        default:
            let shown = typeFlag >= 0x20 && typeFlag < 0x7F ? "'\(Character(Unicode.Scalar(typeFlag)))'" : "\(typeFlag)"
            throw LayerUnpackError(.unsupported, "the tar entry after '\(currentPath)' has type \(shown), which Strata does not unpack")
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
            path: path, kind: kind, linkTarget: linkTarget, size: kind == .regular ? size : 0,
            mode: UInt32(truncatingIfNeeded: try Self.number(header[100..<108], field: "mode", after: currentPath)) & 0o7777,
            uid: try Self.id(header[108..<116], field: "uid", after: currentPath),
            gid: try Self.id(header[116..<124], field: "gid", after: currentPath),
            modificationTime: TarTime(seconds: try Self.number(header[136..<148], field: "mtime", after: currentPath), nanoseconds: 0),
            deviceMajor: hasDevice ? try Self.id(header[329..<337], field: "devmajor", after: currentPath) : 0,
            deviceMinor: hasDevice ? try Self.id(header[337..<345], field: "devminor", after: currentPath) : 0)
    }

    private mutating func finishExtended(_ kind: ExtendedKind) throws(LayerUnpackError) {
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
    static func verifyChecksum(_ header: [UInt8], after path: String) throws(LayerUnpackError) {
        let recorded = try number(header[148..<156], field: "checksum", after: path)
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for (index, byte) in header.enumerated() {
            let counted = (148..<156).contains(index) ? UInt8(ascii: " ") : byte
            unsigned += Int64(counted)
            signed += Int64(Int8(bitPattern: counted))
        }
        guard recorded == unsigned || recorded == signed else {
            throw LayerUnpackError(.corrupt, "a tar header after '\(path.isEmpty ? "the start" : path)' has a bad checksum")
        }
    }

    /// An octal field (NUL- or space-terminated), or GNU's base-256 form (first byte's high bit set).
    static func number(_ field: ArraySlice<UInt8>, field name: String, after path: String) throws(LayerUnpackError) -> Int64 {
        guard let first = field.first else { return 0 }
        if first & 0x80 != 0 {
            // Base 256, big-endian; a negative number (0xFF first) is not a size, id or time Strata takes.
            guard first != 0xFF else { throw LayerUnpackError(.corrupt, "tar field \(name) after '\(path)' is negative") }
            var value = Int64(first & 0x7F)
            for byte in field.dropFirst() {
                guard value <= (Int64.max >> 8) else { throw LayerUnpackError(.corrupt, "tar field \(name) after '\(path)' overflows") }
                value = value << 8 | Int64(byte)
            }
            return value
        }
        var value: Int64 = 0
        var started = false
        for byte in field {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                guard value <= (Int64.max >> 3) else { throw LayerUnpackError(.corrupt, "tar field \(name) after '\(path)' overflows") }
                value = value << 3 | Int64(byte - UInt8(ascii: "0"))
                started = true
            case UInt8(ascii: " ") where !started:
                continue
            case 0, UInt8(ascii: " "):
                return value
            default:
                throw LayerUnpackError(.corrupt, "tar field \(name) after '\(path.isEmpty ? "the start" : path)' is not octal")
            }
        }
        return value
    }

    static func id(_ field: ArraySlice<UInt8>, field name: String, after path: String) throws(LayerUnpackError) -> UInt32 {
        let value = try number(field, field: name, after: path)
        guard let id = UInt32(exactly: value) else { throw LayerUnpackError(.corrupt, "tar field \(name) after '\(path)' is out of range") }
        return id
    }

    /// A NUL-terminated field as UTF-8 (a name that is not UTF-8 is refused rather than changed).
    static func string(_ field: ArraySlice<UInt8>, field name: String, after path: String) throws(LayerUnpackError) -> String {
        let bytes = field.prefix { $0 != 0 }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw LayerUnpackError(.unsupported, "tar field \(name) after '\(path)' is not UTF-8")
        }
        return text
    }

    /// `"<length> <key>=<value>\n"` records.
    static func paxRecords(_ bytes: [UInt8], after path: String) throws(LayerUnpackError) -> [(String, String)] {
        var records: [(String, String)] = []
        var offset = 0
        let bad = LayerUnpackError(.corrupt, "a pax header after '\(path)' is malformed")
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
    static func apply(_ pax: [String: String], to entry: inout TarEntry) throws(LayerUnpackError) {
        for (key, value) in pax where !value.isEmpty {
            let bad = LayerUnpackError(.corrupt, "pax record \(key)=\(value) of '\(entry.path)' is not valid")
            switch key {
            case "path": entry.path = value
            case "linkpath": entry.linkTarget = value
            case "size":
                guard let size = Int64(value), size >= 0 else { throw bad }
                if entry.kind == .regular { entry.size = size }
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
                    throw LayerUnpackError(.unsupported, "'\(entry.path)' is a sparse file, which Strata does not unpack")
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
