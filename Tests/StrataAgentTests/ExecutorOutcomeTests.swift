import Testing

@testable import StrataAgent

/// The executor's decisions, without processes: outcomes, limits, command lookup.
struct ExecutorOutcomeTests {
    @Test func theExitStatusDecidesUnlessAKillOrTheMemoryLimitDid() {
        let finished = TaskOutcome.decide(exit: .exited(0), killRequested: false, memory: nil, requestedMemoryMB: 0)
        #expect(finished == TaskOutcome(state: .finished, exitCode: 0, message: "exited with status 0"))

        let signaled = TaskOutcome.decide(exit: .signaled(6), killRequested: false, memory: nil, requestedMemoryMB: 0)
        #expect(signaled == TaskOutcome(state: .failed, signal: 6, reason: "REASON_COMMAND_EXECUTOR_FAILED", message: "killed by signal 6"))

        let overLimit = MemoryReport(limitBytes: 64 << 20, peakBytes: 64 << 20, oomKillCount: 1, limitHitCount: 12)
        let memory = TaskOutcome.decide(exit: .exited(1), killRequested: false, memory: overLimit, requestedMemoryMB: 64)
        #expect(memory.state == .failed)
        #expect(memory.exitCode == 1)
        #expect(memory.reason == "REASON_CONTAINER_LIMITATION_MEMORY")
        #expect(memory.message == "Memory limit exceeded: requested 64 MB, peak 64 MB")

        let killed = TaskOutcome.decide(exit: .signaled(9), killRequested: true, memory: overLimit, requestedMemoryMB: 64)
        #expect(killed.state == .killed)
        #expect(killed.reason == "REASON_TASK_KILLED")
    }

    @Test func withoutAnOOMKillCountASIGKILLInACgroupThatHitItsLimitIsTheMemoryLimit() {
        let oldKernel = MemoryReport(limitBytes: 32 << 20, peakBytes: 33_030_144, oomKillCount: nil, limitHitCount: 3)
        #expect(oldKernel.exceededLimit(given: .signaled(9)))
        #expect(!oldKernel.exceededLimit(given: .exited(0)))
        let message = TaskOutcome.decide(exit: .signaled(9), killRequested: false, memory: oldKernel, requestedMemoryMB: 32).message
        #expect(message == "Memory limit exceeded: requested 32 MB, peak 31.5 MB")
        let unlimited = MemoryReport(limitBytes: nil, peakBytes: 1 << 30, oomKillCount: 1, limitHitCount: 0)
        #expect(!unlimited.exceededLimit(given: .signaled(9)))
    }

    @Test func cpuSharesAndWeightsFollowMesosAndRunc() {
        #expect(TaskCgroup.cpuShares(for: 0.5) == 512)
        #expect(TaskCgroup.cpuShares(for: 0) == 2)
        #expect(TaskCgroup.cpuShares(for: 2) == 2048)
        #expect(TaskCgroup.cpuWeight(forShares: 2) == 1)
        #expect(TaskCgroup.cpuWeight(forShares: 1024) == 39)
        #expect(TaskCgroup.memoryLimitBytes(for: 32) == 32 << 20)
        #expect(TaskCgroup.memoryLimitBytes(for: 0) == nil)
    }

    @Test func commandsAreFoundOnThePathAsExecvpWouldFindThem() {
        #expect(TaskExecutor.findOnHost("sh", path: "/nonexistent:/bin:/usr/bin", relativeTo: "/") == "/bin/sh")
        #expect(TaskExecutor.findOnHost("/bin/sh", path: "", relativeTo: "/") == "/bin/sh")
        #expect(TaskExecutor.findOnHost("no-such-command-strata", path: "/bin:/usr/bin", relativeTo: "/") == nil)
        #expect(TaskExecutor.findOnHost("bin", path: "/", relativeTo: "/") == nil)
    }
}
