import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import StrataClient
import StrataCore
import StrataWire

/// Options every `strata dfs` command shares: where the name node is, who the caller is, and
/// whether to print JSON.
struct ClusterOptions: ParsableArguments {
    @Option(name: .customLong("namenode"), help: "Name node address host:port (default: $STRATA_NAMENODE, else 127.0.0.1:8020).")
    var nameNode: String?

    @Option(help: "Act as this user (default: $STRATA_USER, else $HADOOP_USER_NAME, else the operating system user).")
    var user: String?

    @Flag(help: "Print machine-readable JSON.")
    var json = false

    var resolvedUser: String {
        if let user, !user.isEmpty { return user }
        return callingUser()
    }

    func nameNodeAddress() throws -> (host: String, port: Int) {
        let text = nameNode ?? ProcessInfo.processInfo.environment["STRATA_NAMENODE"] ?? "127.0.0.1:8020"
        return try parseAddress(text, defaultPort: 8020)
    }

    /// Runs `body` with a connected client, closing it afterwards.
    func withClient<Result>(
        configure: (inout DFSClientConfiguration) -> Void = { _ in }, _ body: (DFSClient) async throws -> Result
    ) async throws -> Result {
        let (host, port) = try nameNodeAddress()
        var configuration = DFSClientConfiguration(user: resolvedUser)
        configuration.nameNodeHost = host
        configuration.nameNodePort = port
        configuration.localNodeId = ProcessInfo.processInfo.environment["STRATA_NODE_ID"] ?? ""
        configure(&configuration)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let client = DFSClient(configuration: configuration, group: group)
        do {
            let result = try await body(client)
            await client.close()
            try? await group.shutdownGracefully()
            return result
        } catch {
            await client.close()
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// An absolute DFS path: relative paths are under the user's home directory (`/user/NAME`),
    /// and `hdfs://host:port/path` or `strata://...` URIs name their path part.
    func absolute(_ path: String) -> String {
        var path = path
        for scheme in ["hdfs://", "strata://", "webhdfs://"] where path.hasPrefix(scheme) {
            let rest = path.dropFirst(scheme.count)
            path = rest.firstIndex(of: "/").map { String(rest[$0...]) } ?? "/"
        }
        // A trailing slash names the same directory (`put a.log /logs/`).
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        if path.hasPrefix("/") { return path }
        let home = "/user/" + resolvedUser
        return path.isEmpty || path == "." ? home : home + "/" + path
    }
}

/// The user a command acts as without `--user`: `STRATA_USER`, else `HADOOP_USER_NAME` (as
/// Hadoop's simple authentication honours it), else the operating system user.
func callingUser() -> String {
    for name in ["STRATA_USER", "HADOOP_USER_NAME"] {
        if let user = ProcessInfo.processInfo.environment[name], !user.isEmpty { return user }
    }
    return operatingSystemUser()
}

func operatingSystemUser() -> String {
    if let entry = getpwuid(geteuid()), let name = entry.pointee.pw_name {
        return String(cString: name)
    }
    return ProcessInfo.processInfo.environment["USER"] ?? "root"
}

func parseAddress(_ text: String, defaultPort: Int) throws -> (host: String, port: Int) {
    let parts = text.split(separator: ":", omittingEmptySubsequences: false)
    guard parts.count <= 2, let host = parts.first, !host.isEmpty else {
        throw ValidationError("'\(text)' is not a host:port address")
    }
    if parts.count == 2 {
        guard let port = Int(parts[1]), (1...65535).contains(port) else {
            throw ValidationError("'\(text)': the port must be a number from 1 to 65535")
        }
        return (String(host), port)
    }
    return (String(host), defaultPort)
}

/// Sizes as Hadoop takes them: a number with an optional k, m, g, t, p suffix (binary).
func parseSize(_ text: String) -> UInt64? {
    let lower = text.lowercased().trimmingCharacters(in: .whitespaces)
    let multipliers: [Character: UInt64] = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50]
    if let last = lower.last, let multiplier = multipliers[last], let value = UInt64(lower.dropLast()) {
        return value * multiplier
    }
    return UInt64(lower)
}

/// An error a `strata dfs` command reports the way `hdfs dfs` does: `cmd: `path': reason`.
struct ShellError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }

    init(_ command: String, _ path: String, _ reason: String) {
        message = "\(command): `\(path)': \(reason)"
    }

    init(_ command: String, _ error: any Error, path: String) {
        if let remote = error as? RemoteException {
            message = "\(command): `\(path)': \(Self.reason(remote))"
        } else if let connection = error as? RPCConnectionError {
            message = "\(command): Call to \(connection.address) failed: \(connection.reason). Is the name node running?"
        } else {
            message = "\(command): `\(path)': \(error)"
        }
    }

    /// The short reasons `hdfs dfs` prints for the common exceptions.
    static func reason(_ error: RemoteException) -> String {
        switch error.exceptionClass {
        case .fileNotFound: "No such file or directory"
        case .fileAlreadyExists: "File exists"
        case .parentNotDirectory, .pathIsNotDirectory: "Is not a directory"
        case .pathIsNotEmptyDirectory: "Directory is not empty"
        default: error.message
        }
    }
}

/// Runs a command body, printing errors in `hdfs dfs` style and turning them into exit status 1.
func runShell(_ command: String, path: String = "", _ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as ShellError {
        printError(error.message)
        throw ExitCode(1)
    } catch let error as ExitCode {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        printError(ShellError(command, error, path: path).message)
        throw ExitCode(1)
    }
}

/// Is standard error a terminal (where a progress bar belongs)?
var standardErrorIsTerminal: Bool { isatty(STDERR_FILENO) == 1 && isatty(STDOUT_FILENO) == 1 }

/// A one-line progress bar on standard error, drawn only on a terminal.
final class ProgressBar {
    let label: String
    let total: UInt64?
    private var done: UInt64 = 0
    private var lastDraw = Date.distantPast
    private let started = Date()
    private let enabled = standardErrorIsTerminal

    init(label: String, total: UInt64?) {
        self.label = label
        self.total = total
    }

    func advance(_ count: Int) {
        done += UInt64(count)
        guard enabled, Date().timeIntervalSince(lastDraw) > 0.1 else { return }
        lastDraw = Date()
        draw()
    }

    private func draw() {
        let seconds = max(0.001, Date().timeIntervalSince(started))
        let rate = humanSize(UInt64(Double(done) / seconds)) + "/s"
        var line = "\r\(label) \(humanSize(done))"
        if let total, total > 0 {
            let fraction = min(1, Double(done) / Double(total))
            let width = 30
            let filled = Int(fraction * Double(width))
            line += " / \(humanSize(total)) [" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled)
                + "] \(Int(fraction * 100))%"
        }
        line += "  \(rate)   "
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        guard enabled else { return }
        draw()
        FileHandle.standardError.write(Data("\n".utf8))
    }
}

/// Hadoop's human-readable sizes (`-h`): one decimal and a binary prefix, e.g. `1.5 K`, `128 M`.
func humanSize(_ bytes: UInt64) -> String {
    let prefixes = ["", "K", "M", "G", "T", "P", "E"]
    var value = Double(bytes)
    var index = 0
    while value >= 1024 && index < prefixes.count - 1 {
        value /= 1024
        index += 1
    }
    if index == 0 { return "\(bytes)" }
    let text = String(format: "%.1f", value)
    return (text.hasSuffix(".0") ? String(text.dropLast(2)) : text) + " " + prefixes[index]
}

/// `yyyy-MM-dd HH:mm` in local time, as `hdfs dfs -ls` prints.
func listingDate(_ milliseconds: Int64) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.dateFormat = "yyyy-MM-dd HH:mm"
    return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
}
