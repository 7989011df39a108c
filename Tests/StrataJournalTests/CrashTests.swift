import Foundation
import StrataTestKit
import Testing

@testable import StrataJournal

/// The journal's promise under a real crash: `strata debug journal-torture` is killed with
/// SIGKILL while submitting, and every record it had printed as durable must be in the journal.
@Suite struct CrashTests {
    static var strataExecutable: String { TestExecutables.strata }

    /// Parses `<txid> <index>` lines; a trailing partial line is ignored.
    static func acknowledgements(_ output: [UInt8]) -> [(UInt64, Int)] {
        let complete = output.lastIndex(of: UInt8(ascii: "\n")).map { Array(output[...$0]) } ?? []
        return String(decoding: complete, as: UTF8.self).split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count == 2, let id = UInt64(fields[0]), let index = Int(fields[1]) else { return nil }
            return (id, index)
        }
    }

    /// Checks every acknowledged record is in the journal at `directory` with the right bytes.
    static func verify(_ acknowledged: [(UInt64, Int)], in directory: String) throws {
        let journal = try Journal(directory: directory)
        defer { journal.close() }
        var stored: [UInt64: [UInt8]] = [:]
        // forEachEdit also checks the ids are consecutive from 1 to the last durable one.
        try journal.forEachEdit(after: 0) { stored[$0] = $1 }
        #expect(UInt64(stored.count) == journal.lastDurableTransactionId)
        for (id, index) in acknowledged {
            #expect(stored[id] == recordBytes(index), "acknowledged txid \(id) (record-\(index)) lost or wrong")
        }
    }

    @Test func acknowledgedRecordsSurviveSIGKILL() throws {
        let directory = try TemporaryDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.strataExecutable)
        process.arguments = ["debug", "journal-torture", directory.path, "10000000", "--threads", "4"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let processIdentifier = process.processIdentifier
        // If the helper hangs instead of printing, kill it so the test fails rather than waits.
        let watchdog = DispatchWorkItem { if process.isRunning { kill(processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 20, execute: watchdog)
        defer { watchdog.cancel() }

        var received: [UInt8] = []
        let wanted = 400
        while Self.acknowledgements(received).count < wanted {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            received += chunk
        }
        kill(processIdentifier, SIGKILL)
        process.waitUntilExit()
        // Lines written before the kill are still in the pipe; they were acknowledged too.
        received += output.fileHandleForReading.readDataToEndOfFile()
        #expect(process.terminationReason == .uncaughtSignal, "the helper exited on its own: \(process.terminationStatus)")

        let acknowledged = Self.acknowledgements(received)
        #expect(acknowledged.count >= wanted)
        #expect(Set(acknowledged.map(\.0)).count == acknowledged.count)
        try Self.verify(acknowledged, in: directory.path)
    }

    @Test func tortureRunToCompletionCommitsEverything() throws {
        let directory = try TemporaryDirectory()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.strataExecutable)
        let count = 3000
        process.arguments = ["debug", "journal-torture", directory.path, "\(count)"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let received = Array(output.fileHandleForReading.readDataToEndOfFile())
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let acknowledged = Self.acknowledgements(received)
        #expect(acknowledged.map(\.0).sorted() == Array(1...UInt64(count)))
        #expect(Set(acknowledged.map(\.1)) == Set(0..<count))
        try Self.verify(acknowledged, in: directory.path)
    }
}
