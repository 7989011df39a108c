import ArgumentParser
import StrataCluster
import StrataLauncher

/// `strata launcher`: the service launcher (Marathon's REST API v2) on its own, placing its
/// apps' instances through a master.
struct LauncherCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "launcher", abstract: "Run the service launcher (long-running apps, Marathon's REST API v2) until SIGTERM or Ctrl-C.",
        discussion: "Its state lives in the DFS under /system/launcher: a launcher restarted anywhere adopts its running instances.")

    @Option(help: "HTTP port.")
    var port = 8080

    @OptionGroup var daemon: MasterClientDaemonOptions

    func run() async throws {
        let superuser = daemon.resolvedSuperuser
        var configuration = LauncherConfiguration(masterAddress: daemon.master, taskUser: daemon.taskUser ?? superuser)
        configuration.host = daemon.host
        configuration.port = port
        configuration.superuser = superuser
        configuration.token = try daemon.secret.secretIfExposed(host: daemon.host, daemon: "launcher")
        let dfs = try daemon.dfs()
        try await daemon.run("launcher") { group, logger in
            LauncherService(launcher: Launcher(configuration: configuration, dfs: dfs, group: group, logger: logger), group: group, logger: logger)
        }
    }
}
