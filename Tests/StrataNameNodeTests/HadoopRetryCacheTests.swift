import Foundation
import StrataCore
import Testing

@testable import StrataNameNode

/// The retry cache's decisions on instants the test picks: what a retried call gets, how long
/// answers are kept and how many.
struct HadoopRetryCacheTests {
    typealias Cache = HadoopRetryCache<String, Int>
    static func key(_ client: UInt8, _ call: Int32) -> Cache.Key { Cache.Key(clientId: Data(repeating: client, count: 16), callId: call) }
    static func at(_ milliseconds: Int64) -> MonotonicInstant { .milliseconds(milliseconds) }

    @Test func aRetryWaitsForTheRunningCallThenGetsItsAnswer() {
        var cache = Cache(expiryMs: 1_000, capacity: 10)
        guard case .run = cache.lookup(Self.key(1, 1), now: Self.at(0)) else { Issue.record("a new call must run"); return }
        cache.start(Self.key(1, 1), running: "first run")
        guard case .wait(let running) = cache.lookup(Self.key(1, 1), now: Self.at(10)) else { Issue.record("must wait"); return }
        #expect(running == "first run")
        // Another client's call with the same id, and another call of the same client, run.
        guard case .run = cache.lookup(Self.key(2, 1), now: Self.at(10)), case .run = cache.lookup(Self.key(1, 2), now: Self.at(10)) else {
            Issue.record("other calls must run"); return
        }
        cache.finish(Self.key(1, 1), answer: 42, now: Self.at(20))
        guard case .answered(let answer) = cache.lookup(Self.key(1, 1), now: Self.at(1_019)) else { Issue.record("must be answered"); return }
        #expect(answer == 42)
        // Kept for the expiry, then gone: the call would run again.
        guard case .run = cache.lookup(Self.key(1, 1), now: Self.at(1_020)) else { Issue.record("must have expired"); return }
        #expect(cache.answeredCount == 0)
    }

    @Test func aFailedCallRunsAgainWhenRetried() {
        var cache = Cache(expiryMs: 1_000, capacity: 10)
        cache.start(Self.key(1, 1), running: "run")
        cache.finish(Self.key(1, 1), answer: nil, now: Self.at(5))
        guard case .run = cache.lookup(Self.key(1, 1), now: Self.at(6)) else { Issue.record("a failed call must run again"); return }
        #expect(cache.answeredCount == 0)
    }

    @Test func theOldestAnswersGoPastTheCapacity() {
        var cache = Cache(expiryMs: 60_000, capacity: 3)
        for call in 0..<5 {
            cache.start(Self.key(1, Int32(call)), running: "run")
            cache.finish(Self.key(1, Int32(call)), answer: call, now: Self.at(Int64(call)))
        }
        #expect(cache.answeredCount == 3)
        for call in 0..<2 {
            guard case .run = cache.lookup(Self.key(1, Int32(call)), now: Self.at(10)) else { Issue.record("call \(call) kept"); return }
        }
        for call in 2..<5 {
            guard case .answered(let answer) = cache.lookup(Self.key(1, Int32(call)), now: Self.at(10)) else {
                Issue.record("call \(call) dropped"); return
            }
            #expect(answer == call)
        }
    }

    @Test func aCallAnsweredAgainAfterExpiringKeepsItsNewAnswer() {
        var cache = Cache(expiryMs: 100, capacity: 10)
        cache.start(Self.key(1, 1), running: "run")
        cache.finish(Self.key(1, 1), answer: 1, now: Self.at(0))
        guard case .run = cache.lookup(Self.key(1, 1), now: Self.at(100)) else { Issue.record("must have expired"); return }
        cache.start(Self.key(1, 1), running: "again")
        cache.finish(Self.key(1, 1), answer: 2, now: Self.at(150))
        guard case .answered(let answer) = cache.lookup(Self.key(1, 1), now: Self.at(200)) else { Issue.record("must be answered"); return }
        #expect(answer == 2)
    }
}
