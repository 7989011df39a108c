import ArgumentParser

/// Where a daemon that keeps a cluster secret of its own (the master, the registry) keeps it, or
/// the file it takes it from: `--work-dir` and `--secret-file`.
struct DaemonSecretOptions: ParsableArguments {
    @Option(
        name: .customLong("work-dir"),
        help: "Where the daemon keeps its cluster secret when it listens beyond loopback (default: ~/.strata/<daemon>).")
    var workDirectory: String?

    @Option(name: .customLong("secret-file"), help: "A file holding the cluster secret to use instead of making one.")
    var secretFile: String?

    /// The secret the daemon requires when it listens on `host` beyond loopback
    /// (`clusterSecretIfExposed`), kept in `--work-dir`, else in `~/.strata/<daemon>`.
    func secretIfExposed(host: String, daemon: String) throws -> String? {
        try clusterSecretIfExposed(host: host, directory: workDirectory ?? userStrataDirectory() + "/" + daemon, secretFile: secretFile)
    }
}
