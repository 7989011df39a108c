import StrataCompute
import Testing

@testable import StrataAgent

/// The queue of status reports an agent has not sent yet (pure logic).
struct AgentOutboxTests {
    @Test func aRunningReplacesTheSameTasksStartingThatIsNotSentYet() {
        var outbox = Agent.Outbox()
        outbox.add(TaskStatus(taskId: "a", state: .starting))
        outbox.add(TaskStatus(taskId: "b", state: .starting))
        outbox.add(TaskStatus(taskId: "a", state: .running))
        #expect(outbox.pending.map(\.taskId) == ["a", "b"])
        #expect(outbox.pending.map(\.state) == [.running, .starting])
        #expect(outbox.undelivered == ["a": 1, "b": 1])
    }

    @Test func everyOtherReportIsKeptInOrder() {
        var outbox = Agent.Outbox()
        // A task that never ran: its end follows its STARTING.
        outbox.add(TaskStatus(taskId: "a", state: .starting))
        outbox.add(TaskStatus(taskId: "a", state: .failed))
        // RUNNING then FINISHED: the master needs both (the time it started running).
        outbox.add(TaskStatus(taskId: "b", state: .running))
        outbox.add(TaskStatus(taskId: "b", state: .finished))
        // A RUNNING whose STARTING was already sent (no longer pending) is queued as usual.
        outbox.add(TaskStatus(taskId: "c", state: .running))
        #expect(outbox.pending.map(\.state) == [.starting, .failed, .running, .finished, .running])
        #expect(outbox.undelivered == ["a": 2, "b": 2, "c": 1])
    }
}
