import Foundation
import StrataCompute
import Testing

@testable import StrataAgent

extension ExecutorFixture {
    /// A root filesystem holding a static busybox and the applets the tests run, readable by
    /// every user.
    func busyboxRootFilesystem() throws -> String {
        let root = "\(directory)/rootfs"
        let manager = FileManager.default
        try manager.createDirectory(atPath: "\(root)/bin", withIntermediateDirectories: true)
        try manager.copyItem(atPath: "/usr/bin/busybox", toPath: "\(root)/bin/busybox")
        for applet in ["sh", "cat", "echo", "head", "tr", "sleep", "id"] {
            try manager.createSymbolicLink(atPath: "\(root)/bin/\(applet)", withDestinationPath: "busybox")
        }
        chmod(root, 0o755)
        chmod("\(root)/bin", 0o755)
        return root
    }

    func runcStateExists(taskId: String) -> Bool {
        FileManager.default.fileExists(atPath: "\(directory)/state/\(parent)/runc/\(taskId)")
    }
}

@Suite(.enabled(if: ExecutorFixture.canRunContainers, "needs root, cgroups, runc and busybox"), .timeLimit(.minutes(2)))
struct ExecutorContainerTests {
    @Test func aContainerFromABusyboxRootFilesystemReadsItsInputAndKeepsItsOutputInTheSandbox() async throws {
        try await withExecutorFixture { fixture in
            let sandbox = try fixture.sandbox()
            let input = try fixture.file("input", "line one\nline two\n")
            let task = try await fixture.launch(
                "boxed", ["sh", "-c", "echo hello; cat; id -u; echo kept > /mnt/sandbox/written"], sandbox: sandbox,
                standardInput: input, container: ContainerSpec(rootFilesystem: try fixture.busyboxRootFilesystem()))
            let outcome = await task.wait()
            #expect(outcome.state == .finished, "\(outcome.message); stderr: \(fixture.read("\(sandbox)/stderr"))")
            let nobody = try #require(HostUser.lookUp("nobody"))
            #expect(fixture.read("\(sandbox)/stdout") == "hello\nline one\nline two\n\(nobody.uid)\n")
            #expect(fixture.read("\(sandbox)/written") == "kept\n")
            #expect(!fixture.runcStateExists(taskId: "boxed"))
            #expect(!fixture.cgroupExists(taskId: "boxed"))
        }
    }

    @Test func aContainerThatExitsWithThreeFailsWithThatStatus() async throws {
        try await withExecutorFixture { fixture in
            let task = try await fixture.launch(
                "boxed-three", ["sh", "-c", "exit 3"], sandbox: try fixture.sandbox(),
                container: ContainerSpec(rootFilesystem: try fixture.busyboxRootFilesystem()))
            let outcome = await task.wait()
            #expect(outcome.state == .failed)
            #expect(outcome.exitCode == 3)
        }
    }

    @Test func aContainerOverItsMemoryLimitFailsWithTheMemoryReason() async throws {
        try await withExecutorFixture { fixture in
            let sandbox = try fixture.sandbox()
            let task = try await fixture.launch(
                "boxed-hungry", ["sh", "-c", #"x=$(head -c 100000000 /dev/zero | tr "\0" a); echo done"#],
                sandbox: sandbox, resources: Resources(cpus: 0.5, memMB: 32),
                container: ContainerSpec(rootFilesystem: try fixture.busyboxRootFilesystem()))
            let outcome = await task.wait()
            #expect(outcome.state == .failed, "stderr: \(fixture.read("\(sandbox)/stderr"))")
            #expect(outcome.reason == "REASON_CONTAINER_LIMITATION_MEMORY")
            #expect(outcome.message.hasPrefix("Memory limit exceeded: requested 32 MB, peak "), "\(outcome.message)")
            #expect(!fixture.runcStateExists(taskId: "boxed-hungry"))
            #expect(!fixture.cgroupExists(taskId: "boxed-hungry"))
        }
    }

    @Test func aKilledContainerEndsAsKilledAndLeavesNoContainerOrCgroup() async throws {
        try await withExecutorFixture { fixture in
            let sandbox = try fixture.sandbox()
            let task = try await fixture.launch(
                "boxed-sleeper", ["sleep", "1000"], sandbox: sandbox, resources: Resources(cpus: 0.25, memMB: 16),
                container: ContainerSpec(rootFilesystem: try fixture.busyboxRootFilesystem()))
            // The container's sleep is pid 1 of its namespace and ignores SIGTERM: the kill ends
            // at the SIGKILL after the grace.
            await task.kill(gracePeriodMs: 100)
            let outcome = await task.wait()
            #expect(outcome.state == .killed, "\(outcome.message); stderr: \(fixture.read("\(sandbox)/stderr"))")
            #expect(!fixture.runcStateExists(taskId: "boxed-sleeper"))
            #expect(!fixture.cgroupExists(taskId: "boxed-sleeper"))
        }
    }

    @Test func anAgentAfterARestartFindsAndKillsAContainerTheEarlierOneLeftRunning() async throws {
        try await withExecutorFixture { fixture in
            let task = try await fixture.launch(
                "boxed-orphan", ["sleep", "1000"], sandbox: try fixture.sandbox(),
                container: ContainerSpec(rootFilesystem: try fixture.busyboxRootFilesystem()))
            let restarted = fixture.restartedExecutor()
            #expect(restarted.leftoverTaskIds() == ["boxed-orphan"])
            await restarted.killLeftovers(taskId: "boxed-orphan")
            #expect(await task.wait().state == .failed)
            #expect(!fixture.runcStateExists(taskId: "boxed-orphan"))
            #expect(!fixture.cgroupExists(taskId: "boxed-orphan"))
        }
    }

    @Test func aCommandMissingFromTheRootFilesystemOrABadRootFilesystemIsALaunchError() async throws {
        try await withExecutorFixture { fixture in
            let sandbox = try fixture.sandbox()
            let rootFilesystem = try fixture.busyboxRootFilesystem()
            let missing = await launchError {
                try await fixture.launch(
                    "boxed-missing", ["python3", "-c", "1"], sandbox: sandbox,
                    container: ContainerSpec(rootFilesystem: rootFilesystem))
            }
            #expect(missing?.message.hasPrefix("command 'python3' not found in the root filesystem") == true)
            let noRoot = await launchError {
                try await fixture.launch(
                    "boxed-no-root", ["sh"], sandbox: sandbox,
                    container: ContainerSpec(rootFilesystem: "\(fixture.directory)/no-such-rootfs"))
            }
            #expect(noRoot?.reason == "REASON_CONTAINER_LAUNCH_FAILED")
            #expect(fixture.executor.leftoverTaskIds().isEmpty)
        }
    }
}
