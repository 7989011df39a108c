import Foundation
@testable import StrataAgent
import Testing

struct AgentConfigurationTests {
    @Test func tasksDoNotRunAsRootUnlessAllowed() {
        #expect(!AgentConfiguration(workDirectory: "/tmp/a", masterAddress: "127.0.0.1:5050").allowRootTasks)
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
