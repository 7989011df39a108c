import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import StrataClient

/// What every daemon that runs work through a master takes (`strata launcher`, `strata cron
/// serve`): where it listens, the master and name node it uses, the users it acts as, its
/// cluster secret.
struct MasterClientDaemonOptions: ParsableArguments {
    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The master's address host:port.")
    var master = "127.0.0.1:5050"

    @Option(name: .customLong("namenode"), help: "Name node address host:port.")
    var nameNode = "127.0.0.1:8020"

    @Option(help: "The superuser, as the master knows it: the daemon's DFS user, and who kills its tasks (default: the user running it).")
    var superuser: String?

    @Option(help: "The user its tasks run as when their definition names none (default: the superuser).")
    var taskUser: String?

    /// The cluster secret it requires of callers beyond loopback, and sends to the master.
    @OptionGroup var secret: DaemonSecretOptions

    @Flag(help: "Log debug messages.")
    var verbose = false

    /// The superuser it acts as.
    var resolvedSuperuser: String { superuser ?? operatingSystemUser() }

    /// Its DFS client's configuration, as the superuser.
    func dfs() throws -> DFSClientConfiguration {
        let (nameNodeHost, nameNodePort) = try parseAddress(nameNode, defaultPort: 8020)
        var dfs = DFSClientConfiguration(user: resolvedSuperuser)
        dfs.nameNodeHost = nameNodeHost
        dfs.nameNodePort = nameNodePort
        return dfs
    }

    /// Runs the service `make` builds until SIGTERM or Ctrl-C; a failure is printed as
    /// `strata COMMAND: error` with exit status 1.
    func run(_ command: String, _ make: (any EventLoopGroup, Logger) throws -> any Service) async throws {
        let logger = makeLogger(verbose: verbose)
        try await runDaemon(command, logger: logger) { group in try make(group, logger) }
    }
}
