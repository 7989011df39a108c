import Foundation
import StrataCompute
@testable import StrataAgent
import Testing

struct AgentConfigurationTests {
    @Test func tasksDoNotRunAsRootUnlessAllowed() {
        #expect(!AgentConfiguration(workDirectory: "/tmp/a", masterAddress: "127.0.0.1:5050").allowRootTasks)
    }

    /// `--resources` as Mesos takes it: the amounts given replace the measured ones, the others
    /// are still measured (so `cpus:8` alone still offers memory and disk).
    @Test func givenResourcesReplaceOnlyTheirOwnMeasuredAmounts() throws {
        let measured = Resources(cpus: 2, memMB: 23_000, diskMB: 60_000)
        #expect(try ResourceOverrides.parse("cpus:8").applied(to: measured) == Resources(cpus: 8, memMB: 23_000, diskMB: 60_000))
        #expect(try ResourceOverrides.parse("cpus:4;mem:8192, disk:0").applied(to: measured) == Resources(cpus: 4, memMB: 8192, diskMB: 0))
        #expect(try ResourceOverrides.parse("").applied(to: measured) == measured)
        for bad in ["cpus", "cpus:-1", "cpus:many", "gpus:1", "mem:inf"] {
            #expect(throws: ResourceOverrides.ParseError.self, "\(bad)") { try ResourceOverrides.parse(bad) }
        }
    }
}

/// An agent's sandboxes must be reachable by the users its tasks run as.
struct WorkDirectoryReachTests {
    @Test func aDirectoryClosedToOthersOnTheWayIsFound() throws {
        let root = NSTemporaryDirectory() + "strata-reach-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/open/closed/agent/sandboxes", withIntermediateDirectories: true)
        for directory in [root, root + "/open", root + "/open/closed", root + "/open/closed/agent", root + "/open/closed/agent/sandboxes"] {
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory)
        }
        #expect(Agent.firstDirectoryClosedToOthers(on: root + "/open/closed/agent/sandboxes") == nil)
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: root + "/open/closed")
        #expect(Agent.firstDirectoryClosedToOthers(on: root + "/open/closed/agent/sandboxes") == root + "/open/closed")
        #expect(Agent.firstDirectoryClosedToOthers(on: root + "/open") == nil)
    }
}
