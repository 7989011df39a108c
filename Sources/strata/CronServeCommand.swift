import ArgumentParser
import StrataCluster
import StrataCronService

/// `strata cron serve`: the cron service (Chronos' REST API) on its own, running its jobs' runs
/// through a master.
struct CronServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the cron service (scheduled and dependent jobs, Chronos' REST API) until SIGTERM or Ctrl-C.",
        discussion: "Its state lives in the DFS under /system/cron: a cron service restarted anywhere follows its runs in flight and never starts a run twice.")

    @Option(help: "HTTP port.")
    var port = 4400

    @Option(help: "Seconds a failed attempt waits before it is tried again (Chronos' --failure_retry).")
    var failureRetry: Double = 60

    @Option(help: "Suspend a job after this many failed runs since its last success (Chronos' --disable_after_failures; 0: never).")
    var disableAfterFailures: Int64 = 0

    @OptionGroup var daemon: MasterClientDaemonOptions

    func validate() throws {
        guard failureRetry >= 0, failureRetry.isFinite else { throw ValidationError("--failure-retry must be 0 or more seconds") }
        guard disableAfterFailures >= 0 else { throw ValidationError("--disable-after-failures must be 0 or more") }
    }

    func run() async throws {
        let superuser = daemon.resolvedSuperuser
        var configuration = CronConfiguration(masterAddress: daemon.master, taskUser: daemon.taskUser ?? superuser)
        configuration.host = daemon.host
        configuration.port = port
        configuration.superuser = superuser
        configuration.failureRetryDelayMs = Int64(failureRetry * 1000)
        configuration.disableAfterFailures = disableAfterFailures
        configuration.token = try daemon.secret.secretIfExposed(host: daemon.host, daemon: "cron")
        let dfs = try daemon.dfs()
        try await daemon.run("cron serve") { group, logger in
            CronService(scheduler: CronScheduler(configuration: configuration, dfs: dfs, group: group, logger: logger), group: group, logger: logger)
        }
    }
}

/// `strata cron`: the cron service, and the commands that talk to it.
struct CronCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cron", abstract: "Scheduled and dependent jobs (Chronos' REST API on port 4400).",
        discussion: "The cron service is --cron URL, else STRATA_CRON, else http://127.0.0.1:4400.",
        subcommands: [
            CronServeCommand.self, CronAddCommand.self, CronListCommand.self, CronShowCommand.self, CronRunCommand.self,
            CronRemoveCommand.self, CronHistoryCommand.self, CronSuspendCommand.self, CronResumeCommand.self, CronNextCommand.self,
            CronKillCommand.self,
        ])
}
