import ArgumentParser
import Foundation
import StrataClient
import StrataCore
import StrataNameNode
import StrataWire

/// A file status as `--json` prints it (the field names of WebHDFS's FileStatus).
struct FileStatusJSON: Encodable {
    var path: String
    var type: String
    var length: UInt64
    var permission: String
    var owner: String
    var group: String
    var modificationTime: Int64
    var accessTime: Int64
    var replication: UInt32
    var blockSize: UInt64
    var childrenNum: UInt32

    init(_ status: Strata_Wire_FileStatus) {
        path = status.path
        type = status.kind == .directory ? "DIRECTORY" : "FILE"
        length = status.length
        permission = String(status.permission, radix: 8)
        owner = status.owner
        group = status.group
        modificationTime = status.modificationTimeMs
        accessTime = status.accessTimeMs
        replication = status.replication
        blockSize = status.blockSize
        childrenNum = status.childrenCount
    }
}

struct LsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List directories (permissions, replication, owner, group, size, date, time, path).")

    @OptionGroup var cluster: ClusterOptions

    @Flag(name: .customShort("R"), help: "List subdirectories recursively.")
    var recursive = false

    @Flag(name: .customShort("h"), help: "Human-readable sizes (1.5 K, 128 M).")
    var humanReadable = false

    @Flag(name: .customShort("d"), help: "List directories as plain entries, not their contents.")
    var directoriesAsFiles = false

    @Argument(help: "Paths (default: the home directory).")
    var paths: [String] = []

    func run() async throws {
        let targets = (paths.isEmpty ? [""] : paths).map(cluster.absolute)
        var failed = false
        var json: [FileStatusJSON] = []
        try await cluster.withClient { client in
            for path in targets {
                do {
                    guard let status = try await client.status(path) else { throw ShellError("ls", path, "No such file or directory") }
                    if status.kind == .directory && !directoriesAsFiles {
                        try await listDirectory(status, client: client, json: &json, header: !recursive)
                    } else {
                        if cluster.json { json.append(FileStatusJSON(status)) } else { printLines([status]) }
                    }
                } catch {
                    printError((error as? ShellError)?.message ?? ShellError("ls", error, path: path).message)
                    failed = true
                }
            }
        }
        if cluster.json { print(try JSONOutput.encode(json)) }
        if failed { throw ExitCode(1) }
    }

    func listDirectory(_ directory: Strata_Wire_FileStatus, client: DFSClient, json: inout [FileStatusJSON], header: Bool) async throws {
        let entries = try await client.list(directory.path)
        if cluster.json {
            json += entries.map(FileStatusJSON.init)
        } else {
            if header && !entries.isEmpty { print("Found \(entries.count) items") }
            if !recursive { printLines(entries) }
        }
        guard recursive else { return }
        // Depth first: each entry, then (for a directory) what is below it, as `hdfs dfs -ls -R`.
        for entry in entries {
            if !cluster.json { printLines([entry]) }
            if entry.kind == .directory { try await listDirectory(entry, client: client, json: &json, header: false) }
        }
    }

    func printLines(_ entries: [Strata_Wire_FileStatus]) {
        // Column widths as `hdfs dfs -ls` computes them: at least 3 for replication, 10 for size.
        let sizes = entries.map { humanReadable ? humanSize($0.length) : "\($0.length)" }
        let replicationWidth = max(3, entries.map { $0.kind == .directory ? 1 : "\($0.replication)".count }.max() ?? 0)
        let ownerWidth = entries.map(\.owner.count).max() ?? 0
        let groupWidth = entries.map(\.group.count).max() ?? 0
        let sizeWidth = max(10, sizes.map(\.count).max() ?? 0)
        for (entry, size) in zip(entries, sizes) {
            let replication = entry.kind == .directory ? "-" : "\(entry.replication)"
            let permission = permissionString(UInt16(entry.permission), isDirectory: entry.kind == .directory) + " "
            print(
                permission + pad(replication, replicationWidth) + " " + entry.owner.padding(toLength: ownerWidth, withPad: " ", startingAt: 0)
                    + " " + entry.group.padding(toLength: groupWidth, withPad: " ", startingAt: 0) + " " + pad(size, sizeWidth) + " "
                    + listingDate(entry.modificationTimeMs) + " " + entry.path)
        }
    }

    func pad(_ text: String, _ width: Int) -> String { leftPad(text, width) }
}

/// Right-aligns `text` in `width` columns.
func leftPad(_ text: String, _ width: Int) -> String {
    String(repeating: " ", count: max(0, width - text.count)) + text
}

struct MkdirCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mkdir", abstract: "Create directories.")

    @OptionGroup var cluster: ClusterOptions

    @Flag(name: .customShort("p"), help: "Create parent directories as needed; no error if the directory exists.")
    var parents = false

    @Argument(help: "Directories to create.")
    var paths: [String] = []

    func run() async throws {
        guard !paths.isEmpty else { throw ValidationError("mkdir needs at least one path") }
        for path in paths.map(cluster.absolute) {
            try await runShell("mkdir", path: path) {
                try await cluster.withClient { client in
                    if let status = try await client.status(path) {
                        if status.kind != .directory { throw ShellError("mkdir", path, "Not a directory") }
                        if !parents { throw ShellError("mkdir", path, "File exists") }
                        return
                    }
                    try await client.mkdirs(path, permission: 0o755, createParent: parents)
                }
            }
        }
    }
}

struct RmCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Delete files (and directories with -r).")

    @OptionGroup var cluster: ClusterOptions

    @Flag(name: [.customShort("r"), .customShort("R")], help: "Delete directories and their contents.")
    var recursive = false

    @Flag(name: .customShort("f"), help: "No error if a path does not exist.")
    var force = false

    @Flag(name: .customLong("skipTrash", withSingleDash: true), help: "Accepted for compatibility; Strata has no trash.")
    var skipTrash = false

    @Argument(help: "Paths to delete.")
    var paths: [String] = []

    func run() async throws {
        guard !paths.isEmpty else { throw ValidationError("rm needs at least one path") }
        for path in paths.map(cluster.absolute) {
            try await runShell("rm", path: path) {
                try await cluster.withClient { client in
                    guard let status = try await client.status(path) else {
                        if force { return }
                        throw ShellError("rm", path, "No such file or directory")
                    }
                    if status.kind == .directory && !recursive { throw ShellError("rm", path, "Is a directory") }
                    if try await client.delete(path, recursive: recursive) { print("Deleted \(path)") }
                }
            }
        }
    }
}

struct MvCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mv", abstract: "Move (rename) files and directories.")

    @OptionGroup var cluster: ClusterOptions

    @Argument(help: "Sources, then the destination.")
    var paths: [String] = []

    func run() async throws {
        guard paths.count >= 2 else { throw ValidationError("mv needs at least one source and a destination") }
        let destination = cluster.absolute(paths.last!)
        try await runShell("mv", path: destination) {
            try await cluster.withClient { client in
                let status = try await client.status(destination)
                let isDirectory = status?.kind == .directory
                if paths.count > 2 && !isDirectory {
                    throw ShellError("mv", destination, status == nil ? "No such file or directory" : "Is not a directory")
                }
                for source in paths.dropLast().map(cluster.absolute) {
                    let target = target(for: source, destination: destination, destinationIsDirectory: isDirectory)
                    if try await client.status(source) == nil { throw ShellError("mv", source, "No such file or directory") }
                    if try await client.status(target) != nil { throw ShellError("mv", target, "File exists") }
                    do {
                        try await client.rename(source, to: target)
                    } catch {
                        throw ShellError("mv", error, path: source)
                    }
                }
            }
        }
    }
}

struct StatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stat",
        abstract: "Print file statistics in a format.",
        discussion: """
            FORMAT (default %y) takes: %a permissions in octal, %A symbolic, %b size in bytes, %F type, %g group,
            %n name, %o block size, %r replication, %u owner, %x/%X access time (text / ms), %y/%Y modification time
            (text / ms).
            """)

    @OptionGroup var cluster: ClusterOptions

    @Argument(help: "An optional format (it contains %), then paths.")
    var arguments: [String] = []

    func run() async throws {
        var arguments = self.arguments
        let format = arguments.first?.contains("%") == true ? arguments.removeFirst() : "%y"
        guard !arguments.isEmpty else { throw ValidationError("stat needs a path") }
        var json: [FileStatusJSON] = []
        for path in arguments.map(cluster.absolute) {
            try await runShell("stat", path: path) {
                try await cluster.withClient { client in
                    guard let status = try await client.status(path) else { throw ShellError("stat", path, "No such file or directory") }
                    if cluster.json { json.append(FileStatusJSON(status)) } else { print(render(format, status)) }
                }
            }
        }
        if cluster.json { print(try JSONOutput.encode(json)) }
    }

    func render(_ format: String, _ status: Strata_Wire_FileStatus) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        var output = ""
        var characters = format.makeIterator()
        while let character = characters.next() {
            guard character == "%", let code = characters.next() else {
                output.append(character)
                continue
            }
            switch code {
            case "a": output += String(status.permission & 0o1777, radix: 8)
            case "A": output += permissionString(UInt16(status.permission), isDirectory: status.kind == .directory)
            case "b": output += "\(status.length)"
            case "F": output += status.kind == .directory ? "directory" : (status.length == 0 ? "regular empty file" : "regular file")
            case "g": output += status.group
            case "n": output += (status.path as NSString).lastPathComponent
            case "o": output += "\(status.blockSize)"
            case "r": output += "\(status.replication)"
            case "u": output += status.owner
            case "x": output += formatter.string(from: Date(timeIntervalSince1970: Double(status.accessTimeMs) / 1000))
            case "X": output += "\(status.accessTimeMs)"
            case "y": output += formatter.string(from: Date(timeIntervalSince1970: Double(status.modificationTimeMs) / 1000))
            case "Y": output += "\(status.modificationTimeMs)"
            case "%": output += "%"
            default: output += "%\(code)"
            }
        }
        return output
    }
}

struct DuCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "du",
        abstract: "Show space used: logical size, and bytes stored on disk over all replicas after compression.",
        discussion: "Columns: SIZE, DISK_SPACE_CONSUMED_WITH_ALL_REPLICAS (what the replicas really take on disk), PATH.")

    @OptionGroup var cluster: ClusterOptions

    @Flag(name: .customShort("s"), help: "One summary line per path instead of one per entry.")
    var summary = false

    @Flag(name: .customShort("h"), help: "Human-readable sizes.")
    var humanReadable = false

    @Flag(name: .customShort("v"), help: "Print a header line.")
    var header = false

    @Argument(help: "Paths (default: the home directory).")
    var paths: [String] = []

    struct Line: Encodable {
        var path: String
        var length: UInt64
        var spaceConsumed: UInt64
        var storedBytes: UInt64
    }

    func run() async throws {
        var lines: [Line] = []
        for path in (paths.isEmpty ? [""] : paths).map(cluster.absolute) {
            try await runShell("du", path: path) {
                try await cluster.withClient { client in
                    guard let status = try await client.status(path) else { throw ShellError("du", path, "No such file or directory") }
                    let targets = (summary || status.kind != .directory) ? [status] : try await client.list(path)
                    for target in targets {
                        let content = try await client.contentSummary(target.path)
                        lines.append(Line(path: target.path, length: content.length, spaceConsumed: content.spaceConsumed, storedBytes: content.storedBytes))
                    }
                }
            }
        }
        if cluster.json {
            print(try JSONOutput.encode(lines))
            return
        }
        let format = { (value: UInt64) in humanReadable ? humanSize(value) : "\(value)" }
        let width = max(10, lines.map { max(format($0.length).count, format($0.storedBytes).count) }.max() ?? 0)
        if header { print("SIZE".padding(toLength: width, withPad: " ", startingAt: 0) + "  DISK_SPACE_CONSUMED_WITH_ALL_REPLICAS  FULL_PATH_NAME") }
        for line in lines {
            print(format(line.length).padding(toLength: width, withPad: " ", startingAt: 0) + "  "
                + format(line.storedBytes).padding(toLength: width, withPad: " ", startingAt: 0) + "  " + line.path)
        }
    }
}

struct CountCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "count", abstract: "Count directories, files and bytes: DIR_COUNT FILE_COUNT CONTENT_SIZE PATHNAME.")

    @OptionGroup var cluster: ClusterOptions

    @Flag(name: .customShort("q"), help: "Also show quotas (Strata sets none).")
    var quotas = false

    @Flag(name: .customShort("h"), help: "Human-readable sizes.")
    var humanReadable = false

    @Flag(name: .customShort("v"), help: "Print a header line.")
    var header = false

    @Argument(help: "Paths.")
    var paths: [String] = []

    struct Line: Encodable {
        var path: String
        var directoryCount: UInt64
        var fileCount: UInt64
        var length: UInt64
        var storedBytes: UInt64
    }

    func run() async throws {
        guard !paths.isEmpty else { throw ValidationError("count needs at least one path") }
        var lines: [Line] = []
        if header && !cluster.json {
            print((quotas ? "       QUOTA       REM_QUOTA     SPACE_QUOTA REM_SPACE_QUOTA " : "")
                + "   DIR_COUNT   FILE_COUNT       CONTENT_SIZE PATHNAME")
        }
        for path in paths.map(cluster.absolute) {
            try await runShell("count", path: path) {
                try await cluster.withClient { client in
                    let content = try await client.contentSummary(path)
                    let line = Line(path: path, directoryCount: content.directoryCount, fileCount: content.fileCount, length: content.length, storedBytes: content.storedBytes)
                    lines.append(line)
                    if !cluster.json {
                        let size = humanReadable ? humanSize(line.length) : "\(line.length)"
                        let quota = quotas ? leftPad("none", 12) + " " + leftPad("inf", 15) + " " + leftPad("none", 15) + " " + leftPad("inf", 15) + " " : ""
                        print(quota + leftPad("\(line.directoryCount)", 12) + " " + leftPad("\(line.fileCount)", 12) + " " + leftPad(size, 18) + " " + path)
                    }
                }
            }
        }
        if cluster.json { print(try JSONOutput.encode(lines)) }
    }
}

struct SetrepCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "setrep",
        abstract: "Change the replication of files (all files below a directory); the name node adds or removes replicas.")

    @OptionGroup var cluster: ClusterOptions

    @Flag(name: .customShort("w"), help: "Wait until every block has the new replication.")
    var wait = false

    @Flag(name: .customShort("R"), help: "Accepted for compatibility (directories are always recursive).")
    var recursive = false

    @Argument(help: "The replication factor.")
    var replication: Int

    @Argument(help: "Paths.")
    var paths: [String] = []

    func validate() throws {
        guard (1...Limits.maximumReplication).contains(replication) else {
            throw ValidationError("replication must be between 1 and \(Limits.maximumReplication)")
        }
        guard !paths.isEmpty else { throw ValidationError("setrep needs at least one path") }
    }

    func run() async throws {
        for path in paths.map(cluster.absolute) {
            try await runShell("setrep", path: path) {
                try await cluster.withClient { client in
                    guard let status = try await client.status(path) else { throw ShellError("setrep", path, "No such file or directory") }
                    var files: [String] = []
                    try await collectFiles(status, client: client, into: &files)
                    for file in files {
                        try await client.setReplication(file, replication: replication)
                        print("Replication \(replication) set: \(file)")
                    }
                    if wait {
                        for file in files {
                            FileHandle.standardOutput.write(Data("Waiting for \(file) ...".utf8))
                            while true {
                                let located = try await client.blockLocations(file)
                                if located.blocks.allSatisfy({ $0.locations.count == replication }) { break }
                                FileHandle.standardOutput.write(Data(".".utf8))
                                try await Task.sleep(for: .seconds(1))
                            }
                            print(" done")
                        }
                    }
                }
            }
        }
    }
}

func collectFiles(_ status: Strata_Wire_FileStatus, client: DFSClient, into files: inout [String]) async throws {
    if status.kind != .directory {
        files.append(status.path)
        return
    }
    for entry in try await client.list(status.path) {
        try await collectFiles(entry, client: client, into: &files)
    }
}

/// Applies `body` to a path, and with `recursive` to everything below it.
func forEachPath(_ path: String, recursive: Bool, client: DFSClient, _ body: (Strata_Wire_FileStatus) async throws -> Void) async throws {
    guard let status = try await client.status(path) else { throw RemoteException.fileNotFound(path) }
    try await body(status)
    if recursive && status.kind == .directory {
        for entry in try await client.list(path) {
            try await forEachPath(entry.path, recursive: true, client: client, body)
        }
    }
}

struct ChmodCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chmod", abstract: "Change permissions: octal (755, 1777) or symbolic (u+x, go-w, a=r).")

    @OptionGroup var cluster: ClusterOptions

    @Flag(name: .customShort("R"), help: "Apply to everything below directories too.")
    var recursive = false

    @Argument(help: "The mode.")
    var mode: String

    @Argument(help: "Paths.")
    var paths: [String] = []

    func validate() throws {
        guard !paths.isEmpty else { throw ValidationError("chmod needs at least one path") }
        guard ModeChange(mode) != nil else { throw ValidationError("chmod: chmod : mode '\(mode)' does not match the expected pattern") }
    }

    func run() async throws {
        let change = ModeChange(mode)!
        for path in paths.map(cluster.absolute) {
            try await runShell("chmod", path: path) {
                try await cluster.withClient { client in
                    try await forEachPath(path, recursive: recursive, client: client) { status in
                        try await client.setPermission(status.path, permission: change.apply(to: UInt16(status.permission), isDirectory: status.kind == .directory))
                    }
                }
            }
        }
    }
}

/// A chmod mode: absolute octal, or symbolic clauses like `u+x,go-w`.
struct ModeChange {
    enum Kind {
        case absolute(UInt16)
        case symbolic([(who: UInt16, operation: Character, bits: String)])
    }

    let kind: Kind

    init?(_ text: String) {
        if let value = UInt16(text, radix: 8), text.allSatisfy({ $0.isNumber }), value <= 0o1777 {
            kind = .absolute(value)
            return
        }
        var clauses: [(UInt16, Character, String)] = []
        for clause in text.split(separator: ",") {
            guard let operatorIndex = clause.firstIndex(where: { "+-=".contains($0) }) else { return nil }
            let whoText = clause[..<operatorIndex]
            var who: UInt16 = 0
            for character in whoText {
                switch character {
                case "u": who |= 0o4700
                case "g": who |= 0o2070
                case "o": who |= 0o1007
                case "a": who |= 0o7777
                default: return nil
                }
            }
            if whoText.isEmpty { who = 0o7777 }
            let bits = String(clause[clause.index(after: operatorIndex)...])
            guard bits.allSatisfy({ "rwxXt".contains($0) }) else { return nil }
            clauses.append((who, clause[operatorIndex], bits))
        }
        guard !clauses.isEmpty else { return nil }
        kind = .symbolic(clauses)
    }

    func apply(to mode: UInt16, isDirectory: Bool) -> UInt16 {
        switch kind {
        case .absolute(let value):
            return value
        case .symbolic(let clauses):
            var result = mode & 0o1777
            for clause in clauses {
                var mask: UInt16 = 0
                for bit in clause.bits {
                    switch bit {
                    case "r": mask |= 0o444
                    case "w": mask |= 0o222
                    case "x": mask |= 0o111
                    case "X": if isDirectory || mode & 0o111 != 0 { mask |= 0o111 }
                    case "t": mask |= 0o1000
                    default: break
                    }
                }
                mask &= clause.who
                switch clause.operation {
                case "+": result |= mask
                case "-": result &= ~mask
                default: result = (result & ~(clause.who & 0o1777)) | mask
                }
            }
            return result & 0o1777
        }
    }
}

struct ChownCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "chown", abstract: "Change owner and/or group: OWNER, OWNER:GROUP or :GROUP.")

    @OptionGroup var cluster: ClusterOptions

    @Flag(name: .customShort("R"), help: "Apply to everything below directories too.")
    var recursive = false

    @Argument(help: "[OWNER][:[GROUP]]")
    var ownership: String

    @Argument(help: "Paths.")
    var paths: [String] = []

    func validate() throws {
        guard !paths.isEmpty else { throw ValidationError("chown needs at least one path") }
        guard !ownership.isEmpty, ownership != ":" else { throw ValidationError("chown: '\(ownership)' names neither an owner nor a group") }
    }

    func run() async throws {
        let parts = ownership.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let owner = parts[0]
        let group = parts.count > 1 ? parts[1] : ""
        for path in paths.map(cluster.absolute) {
            try await runShell("chown", path: path) {
                try await cluster.withClient { client in
                    try await forEachPath(path, recursive: recursive, client: client) { status in
                        try await client.setOwner(status.path, owner: owner, group: group)
                    }
                }
            }
        }
    }
}

struct TestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Test a path: -e exists, -d directory, -f file, -s not empty, -z empty, -r readable, -w writable. Exit status 0 if true.")

    @OptionGroup var cluster: ClusterOptions

    @Flag(name: .customShort("e")) var exists = false
    @Flag(name: .customShort("d")) var directory = false
    @Flag(name: .customShort("f")) var file = false
    @Flag(name: .customShort("s")) var nonEmpty = false
    @Flag(name: .customShort("z")) var empty = false
    @Flag(name: .customShort("r")) var readable = false
    @Flag(name: .customShort("w")) var writable = false

    @Argument(help: "The path.")
    var path: String

    func validate() throws {
        let chosen = [exists, directory, file, nonEmpty, empty, readable, writable].filter { $0 }.count
        guard chosen == 1 else { throw ValidationError("test needs exactly one of -e -d -f -s -z -r -w") }
    }

    func run() async throws {
        let path = cluster.absolute(path)
        var result = false
        try await runShell("test", path: path) {
            try await cluster.withClient { client in
                guard let status = try await client.status(path) else { return }
                let user = cluster.resolvedUser
                func allows(_ bits: UInt32) -> Bool {
                    let mode = status.permission
                    if user == status.owner { return mode & (bits << 6) != 0 }
                    if user == status.group { return mode & (bits << 3) != 0 }
                    return mode & bits != 0
                }
                result =
                    exists || (directory && status.kind == .directory) || (file && status.kind == .file)
                    || (nonEmpty && status.length > 0) || (empty && status.length == 0) || (readable && allows(4))
                    || (writable && allows(2))
            }
        }
        if !result { throw ExitCode(1) }
    }
}
