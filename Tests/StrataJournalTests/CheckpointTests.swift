import Foundation
import Testing

@testable import StrataJournal

/// Checkpoint images: round trip, what they make redundant, and damage detection.
@Suite struct CheckpointTests {
    /// Namespace-like records of varied sizes (including empty and large ones).
    static func imageRecords(_ count: Int) -> [[UInt8]] {
        (0..<count).map { index in
            let size = index % 97 == 0 ? 70_000 : index % 13
            return (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
        }
    }

    @Test func checkpointReplacesCoveredEditsAndOlderImages() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        try submitAndFlush(journal, (1...100).map(recordBytes))
        try journal.writeCheckpoint(transactionId: 30, records: Self.imageRecords(5))
        #expect(FileManager.default.fileExists(atPath: directory.file("image-00000000000000000030")))
        let image = Self.imageRecords(1000)
        try journal.writeCheckpoint(transactionId: 60, records: image)
        #expect(journal.checkpointTransactionId == 60)
        #expect(!FileManager.default.fileExists(atPath: directory.file("image-00000000000000000030")))
        #expect(FileManager.default.fileExists(atPath: directory.file("image-00000000000000000060")))
        try submitAndFlush(journal, (101...150).map(recordBytes))
        let databasePath = journal.databasePath
        journal.close()

        #expect(try queryInteger(databasePath, "SELECT count(*) FROM edits WHERE txid <= 60") == 0)
        #expect(try queryInteger(databasePath, "SELECT count(*) FROM edits") == 90)

        let reopened = try Journal(directory: directory.path)
        defer { reopened.close() }
        #expect(reopened.checkpointTransactionId == 60)
        #expect(reopened.lastDurableTransactionId == 150)
        let (imageId, records) = try checkpointRecords(of: reopened)
        #expect(imageId == 60)
        #expect(records == image)
        let replayed = try edits(of: reopened, after: 60)
        #expect(replayed.map(\.0) == Array(61...150))
        #expect(replayed.map(\.1) == (61...150).map(recordBytes))
        // Edits folded into the image are gone, and replay says so instead of skipping them.
        do {
            try reopened.forEachEdit(after: 0) { _, _ in }
            Issue.record("replay from 0 should report the edits folded into the checkpoint as missing")
        } catch let error as JournalError {
            #expect(error.kind == .invalidDatabase)
            #expect(error.description.contains("1...60"))
        }
        #expect(try reopened.submit([9]) { _ in } == 151)
    }

    @Test func checkpointCoveringEveryEditKeepsIdsGoing() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        try submitAndFlush(journal, (1...20).map(recordBytes))
        try journal.writeCheckpoint(transactionId: 20, records: [[1], [2]])
        journal.close()

        let reopened = try Journal(directory: directory.path)
        defer { reopened.close() }
        #expect(reopened.lastDurableTransactionId == 20)
        #expect(try edits(of: reopened, after: 20).isEmpty)
        #expect(try checkpointRecords(of: reopened).1 == [[1], [2]])
        #expect(try submitAndFlush(reopened, [[3]]) == [21])
    }

    @Test func checkpointWaitsForTheEditsItCovers() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        defer { journal.close() }
        for index in 1...500 { try journal.submit(recordBytes(index)) { _ in } }
        try journal.writeCheckpoint(transactionId: 500, records: [[1]])
        #expect(journal.lastDurableTransactionId >= 500)
        #expect(try edits(of: journal, after: 500).isEmpty)
    }

    @Test func impossibleCheckpointsAreRefused() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        defer { journal.close() }
        try submitAndFlush(journal, (1...10).map(recordBytes))
        #expect(throws: JournalError.self) { try journal.writeCheckpoint(transactionId: 11, records: [[UInt8]]()) }
        try journal.writeCheckpoint(transactionId: 8, records: [[UInt8]]())
        #expect(throws: JournalError.self) { try journal.writeCheckpoint(transactionId: 7, records: [[UInt8]]()) }
        let tooLarge = [UInt8](repeating: 0, count: JournalLimits.maximumRecordBytes + 1)
        do {
            try journal.writeCheckpoint(transactionId: 9, records: [[1], tooLarge])
            Issue.record("an oversized image record was accepted")
        } catch {
            #expect(error.kind == .recordTooLarge)
        }
        // The failed attempt left the previous checkpoint and no temporary file.
        #expect(journal.checkpointTransactionId == 8)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        #expect(names.filter { $0.hasPrefix("image-") } == ["image-00000000000000000008"])
    }

    @Test func temporaryImagesAreRemovedAtOpen() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        try submitAndFlush(journal, (1...10).map(recordBytes))
        try journal.writeCheckpoint(transactionId: 5, records: [[5]])
        journal.close()
        // A crash while writing the next image leaves a temporary file, complete or not.
        let temporary = directory.file("image-00000000000000000009.tmp")
        try writeFileBytes([1, 2, 3], to: temporary)

        let reopened = try Journal(directory: directory.path)
        defer { reopened.close() }
        #expect(!FileManager.default.fileExists(atPath: temporary))
        #expect(reopened.checkpointTransactionId == 5)
        #expect(try checkpointRecords(of: reopened).1 == [[5]])
        #expect(try edits(of: reopened, after: 5).map(\.0) == [6, 7, 8, 9, 10])
    }

    @Test func crashAfterRenameBeforeDeletionIsConsistent() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        try submitAndFlush(journal, (1...40).map(recordBytes))
        try journal.writeCheckpoint(transactionId: 10, records: [[10]])
        journal.close()
        // As if the process died right after renaming a new image into place: the image exists,
        // but the edits it covers and the older image are still there.
        try CheckpointImage.write(path: directory.file("image-00000000000000000030"), transactionId: 30, records: [[30]])

        let reopened = try Journal(directory: directory.path)
        #expect(reopened.checkpointTransactionId == 30)
        #expect(try checkpointRecords(of: reopened).1 == [[30]])
        #expect(try edits(of: reopened, after: 30).map(\.0) == Array(31...40))
        // The next checkpoint cleans up what the interrupted one left.
        try reopened.writeCheckpoint(transactionId: 35, records: [[35]])
        let databasePath = reopened.databasePath
        reopened.close()
        #expect(try queryInteger(databasePath, "SELECT min(txid) FROM edits") == 36)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("image-") }
        #expect(names == ["image-00000000000000000035"])
    }

    @Test func missingImageIsAnError() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        try submitAndFlush(journal, (1...10).map(recordBytes))
        try journal.writeCheckpoint(transactionId: 6, records: [[6]])
        journal.close()
        try FileManager.default.removeItem(atPath: directory.file("image-00000000000000000006"))
        do {
            _ = try Journal(directory: directory.path)
            Issue.record("a journal whose checkpoint image was deleted was opened")
        } catch {
            #expect(error.kind == .missingImage)
            #expect(error.description.contains("image-00000000000000000006"))
        }
    }

    @Test func damagedImageIsAnErrorNamingTheFile() throws {
        let directory = try TemporaryDirectory()
        let journal = try Journal(directory: directory.path)
        try submitAndFlush(journal, (1...10).map(recordBytes))
        let image = Self.imageRecords(300)
        try journal.writeCheckpoint(transactionId: 10, records: image)
        journal.close()
        let path = directory.file("image-00000000000000000010")
        let good = try fileBytes(path)

        var generator = SystemRandomNumberGenerator()
        let randomPosition = Int.random(in: 0..<good.count, using: &generator)
        // Header magic, version, txid, header CRC; the first record's length and CRC and payload;
        // a byte in the middle; the footer's count, CRC and magic; one random byte.
        let positions = [0, 4, 9, 17, 20, 24, 28, good.count / 2, good.count - 16, good.count - 8, good.count - 2, randomPosition]
        var damaged: [(String, [UInt8])] = positions.map { position in
            var bytes = good
            bytes[position] ^= 0x10
            return ("flip at \(position)", bytes)
        }
        damaged.append(("truncated by 1", Array(good.dropLast(1))))
        damaged.append(("truncated to half", Array(good.prefix(good.count / 2))))
        damaged.append(("truncated to 10 bytes", Array(good.prefix(10))))
        damaged.append(("empty", []))
        for (label, bytes) in damaged {
            try writeFileBytes(bytes, to: path)
            let reopened = try Journal(directory: directory.path)
            defer { reopened.close() }
            var delivered: [[UInt8]] = []
            do {
                _ = try reopened.readCheckpoint { delivered.append($0) }
                Issue.record("\(label): a damaged image was read without error (random position \(randomPosition))")
            } catch let error as JournalError {
                #expect(error.kind == .corruptImage, "\(label)")
                #expect(error.path == path, "\(label)")
                #expect(error.description.contains("image-00000000000000000010"), "\(label)")
            }
            // Whatever was handed out before the damage was found is intact.
            #expect(Array(image.prefix(delivered.count)) == delivered, "\(label)")
        }

        // The undamaged image still reads.
        try writeFileBytes(good, to: path)
        let reopened = try Journal(directory: directory.path)
        defer { reopened.close() }
        #expect(try checkpointRecords(of: reopened) == (10, image))
    }

    @Test func imageNamesSortLikeIds() {
        #expect(CheckpointImage.fileName(transactionId: 0) == "image-00000000000000000000")
        #expect(CheckpointImage.fileName(transactionId: UInt64.max) == "image-18446744073709551615")
        #expect(CheckpointImage.transactionId(fileName: "image-00000000000000000042") == 42)
        #expect(CheckpointImage.transactionId(fileName: "image-00000000000000000042.tmp") == nil)
        #expect(CheckpointImage.transactionId(fileName: "image-42") == nil)
        #expect(CheckpointImage.transactionId(fileName: "journal.sqlite") == nil)
    }
}
