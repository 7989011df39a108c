import ArgumentParser
import Foundation
import StrataClient
import StrataCore
import StrataWire

/// Where a DFS source lands when copied to `destination`: into it when it is a directory.
func target(for source: String, destination: String, destinationIsDirectory: Bool) -> String {
    guard destinationIsDirectory else { return destination }
    let name = (source as NSString).lastPathComponent
    return destination == "/" ? "/" + name : destination + "/" + name
}

/// Fills `buffer` from a file descriptor (short only at end of input); returns the bytes read.
func readChunk(_ descriptor: Int32, into buffer: inout [UInt8]) throws -> Int {
    try buffer.withUnsafeMutableBytes { bytes in
        var done = 0
        while done < bytes.count {
            let count = Glibc.read(descriptor, bytes.baseAddress! + done, bytes.count - done)
            if count < 0 {
                if errno == EINTR { continue }
                throw ShellError("read", "-", String(cString: strerror(errno)))
            }
            if count == 0 { break }
            done += count
        }
        return done
    }
}

/// Writes all bytes to a file descriptor (standard output for `cat`).
func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) throws {
    try bytes.withUnsafeBytes { buffer in
        var done = 0
        while done < buffer.count {
            let written = Glibc.write(descriptor, buffer.baseAddress! + done, buffer.count - done)
            if written < 0 {
                if errno == EINTR { continue }
                throw ShellError("write", "-", String(cString: strerror(errno)))
            }
            done += written
        }
    }
}

struct PutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put",
        abstract: "Copy local files (or - for standard input) into the file system.",
        discussion: "Each file is written as DST._COPYING_ and renamed when complete, so a failed put leaves nothing under the final name.")

    @OptionGroup var cluster: ClusterOptions

    @Flag(name: .customShort("f"), help: "Overwrite the destination if it exists.")
    var overwrite = false

    @Option(name: .customLong("block-size"), help: "Block size in bytes (suffixes k, m, g allowed).")
    var blockSize: String?

    @Option(help: "Replication factor.")
    var replication: Int?

    @Option(name: .customShort("D", allowingJoined: true), help: "Hadoop-style setting: dfs.blocksize=N or dfs.replication=N.")
    var settings: [String] = []

    @Argument(help: "Local sources, then the destination.")
    var paths: [String] = []

    func validate() throws {
        guard paths.count >= 2 else { throw ValidationError("put needs at least one source and a destination") }
        _ = try effectiveBlockSize()
        _ = try effectiveReplication()
    }

    func effectiveBlockSize() throws -> UInt64? {
        var size = try blockSize.map { text -> UInt64 in
            guard let value = parseSize(text) else { throw ValidationError("--block-size '\(text)' is not a size") }
            return value
        }
        for setting in settings {
            let parts = setting.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError("-D expects key=value, got '\(setting)'") }
            switch parts[0] {
            case "dfs.blocksize", "dfs.block.size":
                guard let value = parseSize(parts[1]) else { throw ValidationError("dfs.blocksize '\(parts[1])' is not a size") }
                size = value
            case "dfs.replication": break
            default: throw ValidationError("unsupported setting '\(parts[0])' (supported: dfs.blocksize, dfs.replication)")
            }
        }
        if let size, size < Limits.minimumBlockSizeBytes {
            throw ValidationError("block size \(size) is below the minimum of \(Limits.minimumBlockSizeBytes) bytes")
        }
        return size
    }

    func effectiveReplication() throws -> Int? {
        var value = replication
        for setting in settings where setting.hasPrefix("dfs.replication=") {
            guard let parsed = Int(setting.dropFirst("dfs.replication=".count)) else {
                throw ValidationError("dfs.replication '\(setting)' is not a number")
            }
            value = parsed
        }
        if let value, !(1...Limits.maximumReplication).contains(value) {
            throw ValidationError("replication must be between 1 and \(Limits.maximumReplication)")
        }
        return value
    }

    func run() async throws {
        let destination = cluster.absolute(paths.last!)
        let sources = paths.dropLast()
        let blockSize = try effectiveBlockSize()
        let replication = try effectiveReplication()
        try await runShell("put", path: destination) {
            try await cluster.withClient { client in
                let status = try await client.status(destination)
                let isDirectory = status?.kind == .directory
                if sources.count > 1 && !isDirectory {
                    throw ShellError("put", destination, status == nil ? "No such file or directory" : "Is not a directory")
                }
                for source in sources {
                    try await put(source, to: target(for: source, destination: destination, destinationIsDirectory: isDirectory && source != "-"),
                        client: client, blockSize: blockSize, replication: replication)
                }
            }
        }
    }

    func put(_ source: String, to target: String, client: DFSClient, blockSize: UInt64?, replication: Int?) async throws {
        var isDirectory: ObjCBool = false
        if source != "-" {
            guard FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory) else {
                throw ShellError("put", source, "No such file or directory")
            }
        }
        if isDirectory.boolValue {
            if let existing = try await client.status(target), existing.kind != .directory || !overwrite {
                throw ShellError("put", target, "File exists")
            }
            try await client.mkdirs(target, permission: 0o755, createParent: false)
            for name in try FileManager.default.contentsOfDirectory(atPath: source).sorted() {
                try await put(source + "/" + name, to: target + "/" + name, client: client, blockSize: blockSize, replication: replication)
            }
            return
        }
        if let existing = try await client.status(target) {
            if existing.kind == .directory { throw ShellError("put", target, "Is a directory") }
            if !overwrite { throw ShellError("put", target, "File exists") }
        }
        let input: FileHandle
        if source == "-" {
            input = FileHandle.standardInput
        } else {
            guard let handle = FileHandle(forReadingAtPath: source) else { throw ShellError("put", source, "Permission denied") }
            input = handle
        }
        let size = source == "-" ? nil : (try? FileManager.default.attributesOfItem(atPath: source)[.size] as? UInt64) ?? nil
        let temporary = target + "._COPYING_"
        let progress = ProgressBar(label: (source as NSString).lastPathComponent, total: size)
        do {
            let stream = try await client.create(temporary, overwrite: true, replication: replication, blockSize: blockSize, createParent: false)
            var buffer = [UInt8](repeating: 0, count: 4 * 1024 * 1024)
            while true {
                let count = try readChunk(input.fileDescriptor, into: &buffer)
                if count == 0 { break }
                try await stream.write(count == buffer.count ? buffer : Array(buffer[0..<count]))
                progress.advance(count)
            }
            try await stream.close()
            try await client.rename(temporary, to: target, overwrite: overwrite)
            progress.finish()
        } catch {
            // Leave nothing half-written behind.
            _ = try? await client.delete(temporary, recursive: false)
            throw ShellError("put", error, path: target)
        }
    }
}

struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "Copy files from the file system to the local disk.",
        discussion: "Each file is written as LOCAL._COPYING_ and renamed when complete.")

    @OptionGroup var cluster: ClusterOptions

    @Flag(name: .customShort("f"), help: "Overwrite local files that exist.")
    var overwrite = false

    @Option(name: .customShort("D", allowingJoined: true), help: "Hadoop-style setting: dfs.client.read.shortcircuit=true|false.")
    var settings: [String] = []

    @Argument(help: "Sources in the file system, then the local destination.")
    var paths: [String] = []

    func validate() throws {
        guard paths.count >= 2 else { throw ValidationError("get needs at least one source and a local destination") }
        _ = try shortCircuitReads()
    }

    /// Whether replicas on this host are read straight from their files (on unless turned off).
    func shortCircuitReads() throws -> Bool {
        var enabled = true
        for setting in settings {
            let parts = setting.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, parts[0] == "dfs.client.read.shortcircuit", let value = Bool(parts[1].lowercased()) else {
                throw ValidationError("unsupported setting '\(setting)' (supported: dfs.client.read.shortcircuit=true|false)")
            }
            enabled = value
        }
        return enabled
    }

    func run() async throws {
        let destination = paths.last!
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: destination, isDirectory: &isDirectory)
        try await runShell("get", path: destination) {
            if paths.count > 2 && !isDirectory.boolValue {
                throw ShellError("get", destination, exists ? "Is not a directory" : "No such file or directory")
            }
            let shortCircuit = try shortCircuitReads()
            try await cluster.withClient(configure: { $0.shortCircuitReads = shortCircuit }) { client in
                for source in paths.dropLast().map(cluster.absolute) {
                    guard let status = try await client.status(source) else {
                        throw ShellError("get", source, "No such file or directory")
                    }
                    try await get(status, to: target(for: source, destination: destination, destinationIsDirectory: isDirectory.boolValue), client: client)
                }
            }
        }
    }

    func get(_ status: Strata_Wire_FileStatus, to local: String, client: DFSClient) async throws {
        if status.kind == .directory {
            try FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: false)
            for entry in try await client.list(status.path) {
                try await get(entry, to: local + "/" + (entry.path as NSString).lastPathComponent, client: client)
            }
            return
        }
        if FileManager.default.fileExists(atPath: local) && !overwrite {
            throw ShellError("get", local, "File exists")
        }
        let temporary = local + "._COPYING_"
        let output: DownloadFile
        do {
            output = try DownloadFile(path: temporary, length: status.length)
        } catch {
            throw ShellError("get", local, "cannot create the local file: \(error)")
        }
        let progress = ProgressBar(label: (status.path as NSString).lastPathComponent, total: status.length)
        do {
            // Packets of frames are decoded and written at their offsets by the file's I/O threads.
            try await client.readPositioned(status.path, into: output, progress: { progress.advance(Int($0)) })
            output.close()
            if overwrite { try? FileManager.default.removeItem(atPath: local) }
            try FileManager.default.moveItem(atPath: temporary, toPath: local)
            progress.finish()
        } catch {
            output.close()
            try? FileManager.default.removeItem(atPath: temporary)
            throw ShellError("get", error, path: status.path)
        }
    }
}

struct CatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cat", abstract: "Print files to standard output.")

    @OptionGroup var cluster: ClusterOptions

    @Option(help: "Start at this byte.")
    var offset: UInt64 = 0

    @Option(help: "Print at most this many bytes.")
    var length: UInt64?

    @Argument(help: "Files to print.")
    var paths: [String] = []

    func validate() throws {
        guard !paths.isEmpty else { throw ValidationError("cat needs at least one path") }
    }

    func run() async throws {
        for path in paths.map(cluster.absolute) {
            try await runShell("cat", path: path) {
                try await cluster.withClient { client in
                    guard let status = try await client.status(path) else { throw ShellError("cat", path, "No such file or directory") }
                    if status.kind == .directory { throw ShellError("cat", path, "Is a directory") }
                    try await client.read(path, offset: offset, length: length) { bytes in try writeAll(STDOUT_FILENO, bytes) }
                }
            }
        }
    }
}

struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tail", abstract: "Print the last kilobyte of a file.")

    @OptionGroup var cluster: ClusterOptions

    @Flag(name: .customShort("f"), help: "Keep printing data as the file grows.")
    var follow = false

    @Argument(help: "The file.")
    var path: String

    func run() async throws {
        let path = cluster.absolute(path)
        try await runShell("tail", path: path) {
            try await cluster.withClient { client in
                guard let status = try await client.status(path) else { throw ShellError("tail", path, "No such file or directory") }
                if status.kind == .directory { throw ShellError("tail", path, "Is a directory") }
                var printed = status.length > 1024 ? status.length - 1024 : 0
                printed += try await client.read(path, offset: printed) { try writeAll(STDOUT_FILENO, $0) }
                while follow {
                    try await Task.sleep(for: .seconds(1))
                    guard let now = try await client.status(path) else { return }
                    if now.length > printed {
                        printed += try await client.read(path, offset: printed) { try writeAll(STDOUT_FILENO, $0) }
                    }
                }
            }
        }
    }
}

struct AppendToFileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "appendToFile", abstract: "Append local files (or - for standard input) to a file, creating it if needed.")

    @OptionGroup var cluster: ClusterOptions

    @Argument(help: "Local sources, then the destination file.")
    var paths: [String] = []

    func validate() throws {
        guard paths.count >= 2 else { throw ValidationError("appendToFile needs at least one source and a destination") }
    }

    func run() async throws {
        let destination = cluster.absolute(paths.last!)
        try await runShell("appendToFile", path: destination) {
            try await cluster.withClient { client in
                let stream: DFSOutputStream
                if let status = try await client.status(destination) {
                    if status.kind == .directory { throw ShellError("appendToFile", destination, "Is a directory") }
                    stream = try await client.append(destination)
                } else {
                    stream = try await client.create(destination, createParent: false)
                }
                for source in paths.dropLast() {
                    let input: FileHandle
                    if source == "-" {
                        input = FileHandle.standardInput
                    } else {
                        guard let handle = FileHandle(forReadingAtPath: source) else {
                            throw ShellError("appendToFile", source, "No such file or directory")
                        }
                        input = handle
                    }
                    while true {
                        let chunk = input.readData(ofLength: 4 * 1024 * 1024)
                        if chunk.isEmpty { break }
                        try await stream.write([UInt8](chunk))
                    }
                }
                try await stream.close()
            }
        }
    }
}

struct CpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cp", abstract: "Copy files within the file system.")

    @OptionGroup var cluster: ClusterOptions

    @Flag(name: .customShort("f"), help: "Overwrite the destination if it exists.")
    var overwrite = false

    @Argument(help: "Sources, then the destination.")
    var paths: [String] = []

    func validate() throws {
        guard paths.count >= 2 else { throw ValidationError("cp needs at least one source and a destination") }
    }

    func run() async throws {
        let destination = cluster.absolute(paths.last!)
        try await runShell("cp", path: destination) {
            try await cluster.withClient { client in
                let status = try await client.status(destination)
                let isDirectory = status?.kind == .directory
                if paths.count > 2 && !isDirectory {
                    throw ShellError("cp", destination, status == nil ? "No such file or directory" : "Is not a directory")
                }
                for source in paths.dropLast().map(cluster.absolute) {
                    guard let sourceStatus = try await client.status(source) else { throw ShellError("cp", source, "No such file or directory") }
                    try await copy(sourceStatus, to: target(for: source, destination: destination, destinationIsDirectory: isDirectory), client: client)
                }
            }
        }
    }

    func copy(_ status: Strata_Wire_FileStatus, to target: String, client: DFSClient) async throws {
        if status.kind == .directory {
            if target.hasPrefix(status.path + "/") { throw ShellError("cp", target, "is a subdirectory of the source") }
            try await client.mkdirs(target)
            for entry in try await client.list(status.path) {
                try await copy(entry, to: target + "/" + (entry.path as NSString).lastPathComponent, client: client)
            }
            return
        }
        if let existing = try await client.status(target), !overwrite || existing.kind == .directory {
            throw ShellError("cp", target, "File exists")
        }
        let temporary = target + "._COPYING_"
        do {
            let stream = try await client.create(temporary, overwrite: true, replication: Int(status.replication), blockSize: status.blockSize, createParent: false)
            try await client.read(status.path) { bytes in try await stream.write(bytes) }
            try await stream.close()
            try await client.rename(temporary, to: target, overwrite: overwrite)
        } catch {
            _ = try? await client.delete(temporary, recursive: false)
            throw error
        }
    }
}

struct TouchzCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "touchz", abstract: "Create empty files.")

    @OptionGroup var cluster: ClusterOptions

    @Argument(help: "Files to create.")
    var paths: [String] = []

    func run() async throws {
        guard !paths.isEmpty else { throw ValidationError("touchz needs at least one path") }
        for path in paths.map(cluster.absolute) {
            try await runShell("touchz", path: path) {
                try await cluster.withClient { client in
                    if let status = try await client.status(path) {
                        if status.kind == .directory { throw ShellError("touchz", path, "Is a directory") }
                        if status.length != 0 { throw ShellError("touchz", path, "Not a zero-length file") }
                        try await client.setTimes(path, modificationTimeMs: Int64(Date().timeIntervalSince1970 * 1000), accessTimeMs: -1)
                        return
                    }
                    try await client.createEmpty(path, createParent: false)
                }
            }
        }
    }
}
