import ArgumentParser
import Foundation
import StrataJournal

/// `strata debug journal-torture DIR COUNT`: a test helper for the journal's crash tests. It
/// submits COUNT records from several threads and prints `<txid> <i>` (record i is the bytes of
/// `record-<i>`) on its own line, written straight to the descriptor, only after the record was
/// reported durable. A test kills it with SIGKILL part-way and checks every printed record is in
/// the journal.
struct DebugJournalTortureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal-torture",
        abstract: "Submit records to a journal and print each one once durable (crash-test helper).",
        shouldDisplay: false
    )

    @Argument(help: "The journal directory (created if missing).")
    var directory: String

    @Argument(help: "How many records to submit.")
    var count: Int

    @Option(help: "Submitting threads.")
    var threads: Int = 4

    func validate() throws {
        guard count >= 0 else { throw ValidationError("COUNT must not be negative") }
        guard (1...64).contains(threads) else { throw ValidationError("--threads must be between 1 and 64") }
    }

    func run() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let journal = try Journal(directory: directory)
        let submission = SubmissionCounter(count: count)
        let failures = FailureCounter()
        DispatchQueue.concurrentPerform(iterations: threads) { _ in
            while true {
                // Taking the index and submitting under one lock mirrors the name node, which
                // submits while holding its namespace lock.
                let done = submission.next { (index) -> Bool in
                    do {
                        try journal.submit(Array("record-\(index)".utf8)) { result in
                            switch result {
                            case .success(let transactionId): Self.writeLine("\(transactionId) \(index)")
                            case .failure: failures.add()
                            }
                        }
                        return true
                    } catch {
                        failures.add()
                        return false
                    }
                }
                if !done { break }
            }
        }
        try journal.flush()
        journal.close()
        if failures.value > 0 { throw ValidationError("\(failures.value) records were not committed") }
    }

    /// Writes one line with a single `write(2)`, so nothing sits in a buffer when the process dies.
    private static func writeLine(_ text: String) {
        var bytes = Array((text + "\n").utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.write(1, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}

/// Hands out record indexes 0..<count under a lock.
private final class SubmissionCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var nextIndex = 0
    private let count: Int

    init(count: Int) { self.count = count }

    /// Runs `body` with the next index while holding the lock; false when all are handed out or
    /// `body` returned false.
    func next(_ body: (Int) -> Bool) -> Bool {
        lock.withLock {
            guard nextIndex < count else { return false }
            defer { nextIndex += 1 }
            return body(nextIndex)
        }
    }
}

private final class FailureCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0

    func add() { lock.withLock { count += 1 } }

    var value: Int { lock.withLock { count } }
}
