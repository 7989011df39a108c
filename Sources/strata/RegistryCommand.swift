import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import StrataClient
import StrataCluster

/// `strata registry`: the OCI distribution API over the image store in the DFS, on its own.
struct RegistryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry", abstract: "Run the image registry (OCI distribution API v2 over the images in the DFS) until SIGTERM or Ctrl-C.")

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "HTTP port.")
    var port = 5000

    @Option(name: .customLong("namenode"), help: "Name node address host:port.")
    var nameNode = "127.0.0.1:8020"

    @Option(help: "The user the registry acts as in the DFS (it owns /system/images; default: the user running it).")
    var user: String?

    @OptionGroup var secret: DaemonSecretOptions

    @Flag(help: "Log debug messages.")
    var verbose = false

    func run() async throws {
        let logger = makeLogger(verbose: verbose)
        let (nameNodeHost, nameNodePort) = try parseAddress(nameNode, defaultPort: 8020)
        var dfs = DFSClientConfiguration(user: user ?? operatingSystemUser())
        dfs.nameNodeHost = nameNodeHost
        dfs.nameNodePort = nameNodePort
        let token = try secret.secretIfExposed(host: host, daemon: "registry")
        try await runDaemon("registry", logger: logger) { group in
            RegistryService(dfs: dfs, host: host, port: port, token: token, group: group, logger: logger)
        }
    }
}
