/// The manifest's file: lines of text, the last of which is a CRC-32 of all before it, so that
/// a manifest cut short or damaged is itself found (and its entry unpacked again).
///
/// ```
/// strata-rootfs-manifest 1
/// key <64 hex digits>
/// layer <digest> <media type>                      one per layer, bottom first
/// allocated <bytes>
/// entries <count>
/// <kind> <mode, octal> <uid> <gid> <size> <mtime s.ns> <ctime s.ns> <crc32, hex> <path>
/// crc32 <hex digits>
/// ```
///
/// A path is the rest of its line, with `\` written `\\` and a newline `\n`.
extension RootfsManifest {
    func encoded() -> [UInt8] {
        var text = "strata-rootfs-manifest \(Self.formatVersion)\nkey \(key)\n"
        for layer in layers { text += "layer \(layer.digest) \(layer.mediaType)\n" }
        text += "allocated \(allocatedBytes)\nentries \(entries.count)\n"
        for entry in entries {
            text += "\(entry.kind.rawValue) \(String(entry.mode, radix: 8)) \(entry.uid) \(entry.gid) \(entry.size) "
            text += "\(entry.modified.seconds).\(entry.modified.nanoseconds) \(entry.changed.seconds).\(entry.changed.nanoseconds) "
            text += "\(String(entry.checksum, radix: 16)) \(Self.escape(entry.path))\n"
        }
        var bytes = Array(text.utf8)
        bytes += Array("crc32 \(String(Self.crc32Of(bytes), radix: 16))\n".utf8)
        return bytes
    }

    /// Nil unless `bytes` is a whole manifest of this format with a matching CRC.
    static func decode(_ bytes: [UInt8]) -> RootfsManifest? {
        guard bytes.last == UInt8(ascii: "\n"), let lastStart = bytes.dropLast().lastIndex(of: UInt8(ascii: "\n")).map({ $0 + 1 }) else {
            return nil
        }
        let body = Array(bytes[..<lastStart])
        guard String(decoding: bytes[lastStart...].dropLast(), as: UTF8.self) == "crc32 \(String(crc32Of(body), radix: 16))",
            let text = String(validating: body, as: UTF8.self)
        else { return nil }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()[...]
        func field(_ name: String) -> Substring? {
            guard let line = lines.first, line.hasPrefix("\(name) ") else { return nil }
            lines.removeFirst()
            return line.dropFirst(name.count + 1)
        }
        guard field("strata-rootfs-manifest") == "\(formatVersion)", let key = field("key") else { return nil }
        var layers: [ImageLayer] = []
        while let layer = field("layer") {
            let parts = layer.split(separator: " ", maxSplits: 1)
            guard parts.count == 2 else { return nil }
            layers.append(ImageLayer(digest: String(parts[0]), mediaType: String(parts[1])))
        }
        guard let allocated = field("allocated").flatMap({ Int64($0) }), let count = field("entries").flatMap({ Int($0) }),
            lines.count == count
        else { return nil }
        var entries: [Entry] = []
        entries.reserveCapacity(count)
        for line in lines {
            guard let entry = decodeEntry(line) else { return nil }
            entries.append(entry)
        }
        return RootfsManifest(key: String(key), layers: layers, allocatedBytes: allocated, entries: entries)
    }

    private static func decodeEntry(_ line: Substring) -> Entry? {
        let parts = line.split(separator: " ", maxSplits: 8, omittingEmptySubsequences: false)
        guard parts.count == 9, let kind = Entry.Kind(rawValue: String(parts[0])), let mode = UInt32(parts[1], radix: 8),
            let uid = UInt32(parts[2]), let gid = UInt32(parts[3]), let size = Int64(parts[4]), let modified = time(parts[5]),
            let changed = time(parts[6]), let checksum = UInt32(parts[7], radix: 16), let path = unescape(parts[8])
        else { return nil }
        return Entry(
            path: path, kind: kind, mode: mode, uid: uid, gid: gid, size: size, modified: modified, changed: changed, checksum: checksum)
    }

    private static func time(_ text: Substring) -> Time? {
        let parts = text.split(separator: ".")
        guard parts.count == 2, let seconds = Int(parts[0]), let nanoseconds = Int(parts[1]) else { return nil }
        return Time(seconds: seconds, nanoseconds: nanoseconds)
    }

    static func escape(_ path: String) -> String {
        path.replacing("\\", with: "\\\\").replacing("\n", with: "\\n")
    }

    static func unescape(_ text: Substring) -> String? {
        var result = ""
        var escaped = false
        for character in text {
            if escaped {
                switch character {
                case "\\": result.append("\\")
                case "n": result.append("\n")
                default: return nil
                }
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else {
                result.append(character)
            }
        }
        return escaped ? nil : result
    }
}
