import StrataCore
import StrataWire
import Testing

@testable import StrataNameNode

/// Lease decisions as pure logic on the monotonic time line: no sleeps, instants given.
@Suite struct LeaseManagerTests {
    static let recoveryHolder = "recovery"

    func manager() -> LeaseManager {
        var settings = LeaseManager.Settings()
        settings.softLimitMs = 60_000
        settings.hardLimitMs = 1_200_000
        settings.recoveryTimeoutMs = 60_000
        return LeaseManager(settings: settings)
    }

    func at(_ milliseconds: Int64) -> MonotonicInstant { .milliseconds(milliseconds) }

    func recoverCommand(block: UInt64, stamp: UInt64) -> Strata_Wire_DatanodeCommand.RecoverBlock {
        var command = Strata_Wire_DatanodeCommand.RecoverBlock()
        command.block.blockID = block
        command.newGenerationStamp = stamp
        return command
    }

    @Test func softLimitCountsFromTheLastRenewal() {
        var leases = manager()
        leases.renew("writer", now: at(0))
        #expect(!leases.isPastSoftLimit("writer", now: at(60_000)))
        #expect(leases.isPastSoftLimit("writer", now: at(60_001)))
        leases.renew("writer", now: at(59_000))
        #expect(!leases.isPastSoftLimit("writer", now: at(100_000)))
        // A holder never seen (a lease from the journal, before the first check) is not abandoned.
        #expect(!leases.isPastSoftLimit("restored", now: at(10_000_000)))
    }

    @Test func hardLimitTakesBackFilesOfSilentHoldersOnly() {
        var leases = manager()
        leases.renew("silent", now: at(0))
        leases.renew("busy", now: at(0))
        let open = [
            LeaseManager.OpenFile(file: 1, holder: "silent", lastBlock: 10),
            LeaseManager.OpenFile(file: 2, holder: "busy", lastBlock: 20),
        ]
        let result1 = leases.filesToRecover(open, recoveryHolder: Self.recoveryHolder, now: at(1_200_000))
        #expect(result1.isEmpty)
        leases.renew("busy", now: at(1_000_000))
        let due = leases.filesToRecover(open, recoveryHolder: Self.recoveryHolder, now: at(1_200_001))
        #expect(due.map(\.file) == [1])
        #expect(due.first?.reason == "hard limit expired for silent")
    }

    @Test func leasesRestoredAtStartUpCountFromTheirFirstCheck() {
        var leases = manager()
        let open = [LeaseManager.OpenFile(file: 3, holder: "from-journal", lastBlock: nil)]
        let result2 = leases.filesToRecover(open, recoveryHolder: Self.recoveryHolder, now: at(5_000))
        #expect(result2.isEmpty)
        let result3 = leases.filesToRecover(open, recoveryHolder: Self.recoveryHolder, now: at(1_205_000))
        #expect(result3.isEmpty)
        let result4 = leases.filesToRecover(open, recoveryHolder: Self.recoveryHolder, now: at(1_205_001)).map(\.file)
        #expect(result4 == [3])
    }

    @Test func aRecoveryThatRunsOutOfTimeStartsOverAndDropsItsUntakenCommand() {
        var leases = manager()
        let open = [LeaseManager.OpenFile(file: 4, holder: Self.recoveryHolder, lastBlock: 40)]
        let first = leases.startRecovery(recoverCommand(block: 40, stamp: 7), file: 4, on: "n1", now: at(0))
        #expect(!first)
        #expect(leases.isRecoveryRunning(block: 40, now: at(59_999)))
        let result5 = leases.filesToRecover(open, recoveryHolder: Self.recoveryHolder, now: at(59_999))
        #expect(result5.isEmpty)
        let due = leases.filesToRecover(open, recoveryHolder: Self.recoveryHolder, now: at(60_000))
        #expect(due.map(\.reason) == ["recovery timed out"])
        // The retry goes to another node; the first node never heartbeated, so its command goes.
        let retry = leases.startRecovery(recoverCommand(block: 40, stamp: 8), file: 4, on: "n2", now: at(60_000))
        #expect(retry)
        let result6 = leases.takeCommands(for: "n1")
        #expect(result6.isEmpty)
        let result7 = leases.takeCommands(for: "n2").map(\.newGenerationStamp)
        #expect(result7 == [8])
        let result8 = leases.takeCommands(for: "n2")
        #expect(result8.isEmpty)
        // Only the current attempt's report ends it.
        let result9 = leases.finishRecovery(block: 40, generationStamp: 7)
        #expect(result9 == nil)
        let result10 = leases.finishRecovery(block: 40, generationStamp: 8)
        #expect(result10 == 4)
        #expect(!leases.hasRecovery(block: 40))
    }
}

/// Safe mode decisions: the threshold, the extension, manual safe mode.
@Suite struct SafeModeTests {
    @Test func startUpSafeModeEndsOnceTheThresholdIsMetForTheExtension() {
        var settings = SafeMode.Settings()
        settings.threshold = 0.999
        settings.extensionMs = 30_000
        var safeMode = SafeMode(hasBlocks: true, settings: settings)
        #expect(safeMode.isOn && safeMode.needsCount)
        #expect(safeMode.report.contains("being counted"))
        let result11 = safeMode.counted(reported: 998, total: 1000, now: .milliseconds(0))
        #expect(!result11)
        #expect(safeMode.report.contains("The reported blocks 998 needs additional 1 blocks to reach the threshold 0.9990 of total blocks 1000."))
        let result12 = safeMode.counted(reported: 999, total: 1000, now: .milliseconds(1_000))
        #expect(!result12)
        let result13 = safeMode.counted(reported: 999, total: 1000, now: .milliseconds(30_999))
        #expect(!result13)
        // Falling below the threshold restarts the extension.
        let result14 = safeMode.counted(reported: 990, total: 1000, now: .milliseconds(31_000))
        #expect(!result14)
        let result15 = safeMode.counted(reported: 1000, total: 1000, now: .milliseconds(32_000))
        #expect(!result15)
        let result16 = safeMode.counted(reported: 1000, total: 1000, now: .milliseconds(62_000))
        #expect(result16)
        #expect(!safeMode.isOn)
    }

    @Test func withoutBlocksOrExtensionItEndsAtOnceAndManualModeStays() {
        #expect(!SafeMode(hasBlocks: false, settings: .init()).isOn)
        var safeMode = SafeMode(hasBlocks: true, settings: .init())
        let result17 = safeMode.counted(reported: 0, total: 0, now: .zero)
        #expect(result17)
        safeMode.set(manual: true)
        let result18 = safeMode.counted(reported: 5, total: 5, now: .milliseconds(1))
        #expect(!result18)
        #expect(safeMode.isOn && safeMode.report.contains("turned on manually"))
        safeMode.set(manual: false)
        #expect(!safeMode.isOn)
    }
}
