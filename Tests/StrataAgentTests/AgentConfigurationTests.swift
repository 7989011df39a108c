import StrataAgent
import Testing

struct AgentConfigurationTests {
    @Test func tasksDoNotRunAsRootUnlessAllowed() {
        #expect(!AgentConfiguration(workDirectory: "/tmp/a", masterAddress: "127.0.0.1:5050").allowRootTasks)
    }
}
