import StrataWire

extension DFSClient {
    /// Starts decommissioning a data node (superusers only): it takes no new replicas, and once
    /// every block it holds has its replication on other nodes it becomes decommissioned. `node`
    /// is a node id, `host:transfer-port`, or a host running one data node. Returns the node as
    /// the name node now sees it.
    public func decommission(_ node: String) async throws -> Strata_Wire_DatanodeInfo {
        try await setAdminState(node, .decommission)
    }

    /// Returns a decommissioning or decommissioned data node to normal service.
    public func recommission(_ node: String) async throws -> Strata_Wire_DatanodeInfo {
        try await setAdminState(node, .recommission)
    }

    func setAdminState(_ node: String, _ action: Strata_Wire_AdminStateRequest.Action) async throws -> Strata_Wire_DatanodeInfo {
        var request = Strata_Wire_AdminStateRequest()
        request.node = node
        request.action = action
        return try await call(.setAdminState, request, retrying: false)
    }
}
