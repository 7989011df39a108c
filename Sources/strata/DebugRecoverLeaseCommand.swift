import ArgumentParser
import Foundation

/// `strata debug recover-lease --path P`: takes a file back from a writer that is gone, as
/// `hdfs debug recoverLease -path P [-retries N]` does.
struct RecoverLeaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover-lease",
        abstract: "Recover the lease on a file whose writer is gone, and close it.",
        discussion: """
            Asks the name node to recover the file's last block from its replicas and close the file \
            at the length they all hold. Prints "recoverLease SUCCEEDED on PATH" once the file is \
            closed; otherwise asks again up to --retries times, --retry-interval seconds apart, and \
            exits with status 1 if the file is still open.
            """)

    @OptionGroup var cluster: ClusterOptions

    @Option(name: [.customLong("path"), .customLong("path", withSingleDash: true)], help: "The file.")
    var path: String

    @Option(name: [.customLong("retries"), .customLong("retries", withSingleDash: true)], help: "How many times to ask.")
    var retries = 1

    @Option(help: "Seconds between attempts.")
    var retryInterval: Double = 5

    func validate() throws {
        guard retries >= 1 else { throw ValidationError("--retries must be at least 1") }
        guard retryInterval >= 0 else { throw ValidationError("--retry-interval must not be negative") }
    }

    func run() async throws {
        let path = cluster.absolute(self.path)
        var closed = false
        try await runShell("recoverLease", path: path) {
            try await cluster.withClient { client in
                for attempt in 1...retries {
                    if try await client.recoverLease(path) {
                        print("recoverLease SUCCEEDED on \(path)")
                        closed = true
                        return
                    }
                    print("recoverLease returned false.")
                    if attempt < retries {
                        print("Retrying in \(Int(retryInterval * 1000)) ms...")
                        try await Task.sleep(for: .seconds(retryInterval))
                    }
                }
                print("Giving up on recoverLease for \(path) after \(retries) tr\(retries == 1 ? "y" : "ies").")
            }
        }
        if !closed { throw ExitCode(1) }
    }
}
