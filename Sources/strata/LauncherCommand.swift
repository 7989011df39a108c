import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import StrataClient
import StrataCluster
import StrataLauncher

/// `strata launcher`: the service launcher (Marathon's REST API v2) on its own, placing its
/// apps' instances through a master.
struct LauncherCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launcher", abstract: "Run the service launcher (long-running apps, Marathon's REST API v2) until SIGTERM or Ctrl-C.",
        discussion: "Its state lives in the DFS under /system/launcher: a launcher restarted anywhere adopts its running instances.")

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "HTTP port.")
    var port = 8080

    @Option(help: "The master's address host:port.")
    var master = "127.0.0.1:5050"

    @Option(name: .customLong("namenode"), help: "Name node address host:port.")
    var nameNode = "127.0.0.1:8020"

    @Option(help: "The superuser, as the master knows it: the launcher's DFS user, and who kills its tasks (default: the user running it).")
    var superuser: String?

    @Option(help: "The user instances run as when their app names none (default: the superuser).")
    var taskUser: String?

    /// The cluster secret it requires of callers beyond loopback, and sends to the master.
    @OptionGroup var secret: DaemonSecretOptions

    @Flag(help: "Log debug messages.")
    var verbose = false

    func run() async throws {
        let logger = makeLogger(verbose: verbose)
        let (nameNodeHost, nameNodePort) = try parseAddress(nameNode, defaultPort: 8020)
        let superuser = self.superuser ?? operatingSystemUser()
        var configuration = LauncherConfiguration(masterAddress: master, taskUser: taskUser ?? superuser)
        configuration.host = host
        configuration.port = port
        configuration.superuser = superuser
        configuration.token = try secret.secretIfExposed(host: host, daemon: "launcher")
        var dfs = DFSClientConfiguration(user: superuser)
        dfs.nameNodeHost = nameNodeHost
        dfs.nameNodePort = nameNodePort
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let launcher = Launcher(configuration: configuration, dfs: dfs, group: group, logger: logger)
        do {
            try await runServices([LauncherService(launcher: launcher, group: group, logger: logger)], logger: logger)
        } catch {
            try? await group.shutdownGracefully()
            printError("strata launcher: \(error)")
            throw ExitCode(1)
        }
        try await group.shutdownGracefully()
    }
}
