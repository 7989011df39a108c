import NIOCore
import StrataWire

/// One request on a data node's transfer port answered by one response (block info, replica
/// recovery, partial replica transfer).
public enum TransferRequest {
    public static func exchange(
        _ header: Strata_Wire_TransferHeader, with node: Strata_Wire_DatanodeInfo, group: any EventLoopGroup
    ) async throws -> Strata_Wire_TransferResponse {
        let channel = try await Transfer.connect(host: node.ipAddress, port: Int(node.transferPort), group: group)
        return try await channel.executeThenClose { inbound, outbound in
            try await outbound.write(try Transfer.frame(header))
            for try await frame in inbound {
                return try Strata_Wire_TransferHeader(buffer: frame.header).response
            }
            throw RemoteException.io("\(node.ipAddress):\(node.transferPort) closed the connection without answering")
        }
    }
}
