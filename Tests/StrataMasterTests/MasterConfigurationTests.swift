import StrataMaster
import Testing

struct MasterConfigurationTests {
    @Test func agentsAreLostAfterFifteenSecondsByDefault() {
        #expect(MasterConfiguration().agentTimeoutMs == 15_000)
    }
}
