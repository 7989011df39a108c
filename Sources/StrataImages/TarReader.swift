import StrataCore

/// Where a `TarReader` reads from: bytes in order, with a way to skip ahead (a file seeks).
public protocol TarInput {
    /// Up to `count` bytes (fewer only at the end; empty at the end).
    mutating func read(upTo count: Int) throws -> [UInt8]
    /// Skips `count` bytes.
    mutating func skip(_ count: UInt64) throws
}

/// A local file read from an offset on: skipping is free.
public struct FileTarInput: TarInput {
    let file: LocalFile
    public private(set) var offset: UInt64

    public init(file: LocalFile, offset: UInt64 = 0) {
        self.file = file
        self.offset = offset
    }

    public mutating func read(upTo count: Int) throws -> [UInt8] {
        let bytes = try file.read(count: count, at: offset)
        offset += UInt64(bytes.count)
        return bytes
    }

    public mutating func skip(_ count: UInt64) throws { offset += count }
}

/// Bytes in memory (tests, small archives).
public struct BytesTarInput: TarInput {
    let bytes: [UInt8]
    var position = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public mutating func read(upTo count: Int) throws -> [UInt8] {
        let end = min(bytes.count, position + count)
        defer { position = end }
        return Array(bytes[position..<end])
    }

    public mutating func skip(_ count: UInt64) throws { position = min(bytes.count, position + Int(clamping: count)) }
}

/// One member of a tar archive.
public struct TarEntry: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case file, hardLink, symbolicLink, characterDevice, blockDevice, directory, fifo
        /// A type this reader does not know (its data is skipped like a file's).
        case other(UInt8)
    }

    /// The path as the archive gives it (after GNU long names and pax `path`).
    public var name: String
    public var kind: Kind
    public var size: UInt64
    public var mode: UInt32
    public var uid: Int
    public var gid: Int
    public var modificationTime: Int64
    /// The target of a link (after GNU long links and pax `linkpath`).
    public var linkName: String
    public var deviceMajor: UInt32
    public var deviceMinor: UInt32
    /// Where the data starts, from the start of the input.
    public var dataOffset: UInt64

    /// The name without a leading `./` or `/` and trailing `/`, as archives are looked up by.
    public var normalizedName: String { TarEntry.normalize(name) }

    public static func normalize(_ name: String) -> String {
        var name = Substring(name)
        while name.hasPrefix("./") { name = name.dropFirst(2) }
        while name.hasPrefix("/") { name = name.dropFirst() }
        while name.hasSuffix("/") { name = name.dropLast() }
        return String(name)
    }
}

/// Why an archive could not be read.
public struct TarError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    /// The offset of the header concerned.
    public var offset: UInt64
    public var description: String { "tar archive at offset \(offset): \(message)" }
}

/// Reads a tar archive header after header (ustar, GNU long names and links, pax extended
/// headers), never holding more than one entry's metadata: an entry's data is read in pieces
/// with `readData`, or skipped by the next `next()`.
public struct TarReader<Input: TarInput> {
    public private(set) var input: Input
    /// Bytes consumed from the input.
    public private(set) var offset: UInt64 = 0
    private var remainingData: UInt64 = 0
    private var padding: UInt64 = 0
    private var finished = false

    /// The largest GNU long name or pax header taken (they are held in memory).
    public static var maximumMetadataBytes: Int { 1 << 20 }
    static var blockSize: Int { 512 }

    public init(_ input: Input) {
        self.input = input
    }

    /// The next entry, or nil at the end of the archive.
    public mutating func next() throws -> TarEntry? {
        try skipRestOfEntry()
        var longName: String?
        var longLink: String?
        var pax: [String: String] = [:]
        while !finished {
            let headerOffset = offset
            let header = try readExactly(Self.blockSize, what: "a header")
            guard let header else {
                finished = true
                return nil
            }
            if header.allSatisfy({ $0 == 0 }) {
                // The end: one or two zero blocks (what follows is not read).
                finished = true
                return nil
            }
            try Self.verifyChecksum(header, at: headerOffset)
            let typeFlag = header[156]
            let size = try Self.number(header, 124, 12, at: headerOffset, field: "size")
            switch typeFlag {
            case UInt8(ascii: "L"), UInt8(ascii: "K"), UInt8(ascii: "x"), UInt8(ascii: "g"):
                guard size <= UInt64(Self.maximumMetadataBytes) else {
                    throw TarError(message: "a metadata entry of \(size) bytes is over the limit", offset: headerOffset)
                }
                let data = try readExactly(Int(size), what: "metadata") ?? []
                try skipPadding(after: size)
                switch typeFlag {
                case UInt8(ascii: "L"): longName = Self.string(data[...])
                case UInt8(ascii: "K"): longLink = Self.string(data[...])
                case UInt8(ascii: "x"): pax.merge(try Self.paxRecords(data, at: headerOffset)) { $1 }
                default: break  // global pax headers: nothing this reader uses
                }
                continue
            default:
                break
            }
            let isUstar = header[257..<263].elementsEqual(Array("ustar\0".utf8))
            var name = Self.string(header[0..<100])
            if isUstar {
                let prefix = Self.string(header[345..<500])
                if !prefix.isEmpty { name = prefix + "/" + name }
            }
            var entry = TarEntry(
                name: pax["path"] ?? longName ?? name,
                kind: Self.kind(typeFlag),
                size: size,
                mode: UInt32(truncatingIfNeeded: try Self.number(header, 100, 8, at: headerOffset, field: "mode")),
                uid: Int(try Self.number(header, 108, 8, at: headerOffset, field: "uid")),
                gid: Int(try Self.number(header, 116, 8, at: headerOffset, field: "gid")),
                modificationTime: Int64(try Self.number(header, 136, 12, at: headerOffset, field: "mtime")),
                linkName: pax["linkpath"] ?? longLink ?? Self.string(header[157..<257]),
                deviceMajor: UInt32(truncatingIfNeeded: (try? Self.number(header, 329, 8, at: headerOffset, field: "devmajor")) ?? 0),
                deviceMinor: UInt32(truncatingIfNeeded: (try? Self.number(header, 337, 8, at: headerOffset, field: "devminor")) ?? 0),
                dataOffset: offset)
            if let text = pax["size"] {
                guard let paxSize = UInt64(text) else { throw TarError(message: "pax size '\(text)' is not a number", offset: headerOffset) }
                entry.size = paxSize
            }
            if let text = pax["uid"], let uid = Int(text) { entry.uid = uid }
            if let text = pax["gid"], let gid = Int(text) { entry.gid = gid }
            if let text = pax["mtime"], let seconds = Double(text) { entry.modificationTime = Int64(seconds) }
            // Links, devices, directories and FIFOs carry no data, whatever their size field says.
            switch entry.kind {
            case .hardLink, .symbolicLink, .characterDevice, .blockDevice, .directory, .fifo: entry.size = 0
            case .file, .other: break
            }
            remainingData = entry.size
            padding = Self.paddingBytes(after: entry.size)
            return entry
        }
        return nil
    }

    /// Up to `count` more bytes of the current entry's data; empty at its end.
    public mutating func readData(upTo count: Int) throws -> [UInt8] {
        guard remainingData > 0 else { return [] }
        let want = Int(min(UInt64(count), remainingData))
        let bytes = try input.read(upTo: want)
        guard bytes.count == want else {
            throw TarError(message: "the archive ends inside an entry's data", offset: offset)
        }
        offset += UInt64(want)
        remainingData -= UInt64(want)
        return bytes
    }

    private mutating func skipRestOfEntry() throws {
        let skipped = remainingData + padding
        if skipped > 0 { try input.skip(skipped) }
        offset += skipped
        remainingData = 0
        padding = 0
    }

    private mutating func skipPadding(after size: UInt64) throws {
        let count = Self.paddingBytes(after: size)
        if count > 0 { try input.skip(count) }
        offset += count
    }

    /// Exactly `count` bytes, nil at a clean end (nothing left), an error when cut short.
    private mutating func readExactly(_ count: Int, what: String) throws -> [UInt8]? {
        var bytes: [UInt8] = []
        while bytes.count < count {
            let piece = try input.read(upTo: count - bytes.count)
            if piece.isEmpty { break }
            bytes += piece
        }
        if bytes.isEmpty && count > 0 { return nil }
        guard bytes.count == count else { throw TarError(message: "the archive ends inside \(what)", offset: offset) }
        offset += UInt64(count)
        return bytes
    }

    static func paddingBytes(after size: UInt64) -> UInt64 {
        let block = UInt64(blockSize)
        return (block - size % block) % block
    }

    static func kind(_ flag: UInt8) -> TarEntry.Kind {
        switch flag {
        case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): .file
        case UInt8(ascii: "1"): .hardLink
        case UInt8(ascii: "2"): .symbolicLink
        case UInt8(ascii: "3"): .characterDevice
        case UInt8(ascii: "4"): .blockDevice
        case UInt8(ascii: "5"): .directory
        case UInt8(ascii: "6"): .fifo
        default: .other(flag)
        }
    }

    /// Text up to the first NUL.
    static func string(_ bytes: ArraySlice<UInt8>) -> String {
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        return String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self)
    }

    /// A numeric field: octal text (NUL- or space-terminated), or GNU base-256 when the first
    /// byte's high bit is set.
    static func number(_ header: [UInt8], _ start: Int, _ length: Int, at offset: UInt64, field: String) throws -> UInt64 {
        let bytes = header[start..<(start + length)]
        if let first = bytes.first, first & 0x80 != 0 {
            guard first == 0x80 else { throw TarError(message: "negative or oversized \(field)", offset: offset) }
            var value: UInt64 = 0
            for byte in bytes.dropFirst() {
                guard value >> 56 == 0 else { throw TarError(message: "\(field) is too large", offset: offset) }
                value = value << 8 | UInt64(byte)
            }
            return value
        }
        var value: UInt64 = 0
        var seenDigit = false
        for byte in bytes {
            if byte == 0 || (byte == UInt8(ascii: " ") && seenDigit) { break }
            if byte == UInt8(ascii: " ") { continue }
            guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte), value >> 60 == 0 else {
                throw TarError(message: "\(field) is not an octal number", offset: offset)
            }
            value = value << 3 | UInt64(byte - UInt8(ascii: "0"))
            seenDigit = true
        }
        return value
    }

    /// The header's checksum: the sum of its bytes with the checksum field as spaces (some old
    /// writers summed signed bytes, which is accepted too).
    static func verifyChecksum(_ header: [UInt8], at offset: UInt64) throws {
        let stored = try number(header, 148, 8, at: offset, field: "checksum")
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for (index, byte) in header.enumerated() {
            let value = (148..<156).contains(index) ? UInt8(ascii: " ") : byte
            unsigned += Int64(value)
            signed += Int64(Int8(bitPattern: value))
        }
        guard Int64(stored) == unsigned || Int64(stored) == signed else {
            throw TarError(message: "header checksum mismatch (not a tar archive, or a damaged one)", offset: offset)
        }
    }

    /// Pax records: `<length> <key>=<value>\n`, the length counting the whole record.
    static func paxRecords(_ data: [UInt8], at offset: UInt64) throws -> [String: String] {
        var records: [String: String] = [:]
        var position = 0
        while position < data.count {
            guard let space = data[position...].firstIndex(of: UInt8(ascii: " ")),
                let length = Int(String(decoding: data[position..<space], as: UTF8.self)), length > 0,
                position + length <= data.count, data[position + length - 1] == UInt8(ascii: "\n")
            else {
                if data[position...].allSatisfy({ $0 == 0 }) { break }
                throw TarError(message: "malformed pax extended header", offset: offset)
            }
            let record = data[(space + 1)..<(position + length - 1)]
            if let equals = record.firstIndex(of: UInt8(ascii: "=")) {
                let key = String(decoding: record[record.startIndex..<equals], as: UTF8.self)
                records[key] = String(decoding: record[(equals + 1)...], as: UTF8.self)
            }
            position += length
        }
        return records
    }
}
