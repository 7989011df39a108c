import Foundation
import StrataCore
import StrataWire

extension DFSClient {
    /// Cuts a closed file to `newLength` bytes (HDFS `truncate`). On a block boundary the name
    /// node drops the blocks after it. Inside a block, this client copies the block's kept bytes
    /// into a hidden file next to it (streamed: memory stays bounded by the read and write
    /// buffers), and the name node swaps that file's single block in for the cut one, in one
    /// journaled edit. Returns true: the file has its new length when this returns (HDFS's
    /// `false`, "recovery still running", does not arise).
    @discardableResult
    public func truncate(_ path: String, newLength: UInt64) async throws -> Bool {
        var request = Strata_Wire_TruncateRequest()
        request.path = path
        request.newLength = newLength
        let located = try await blockLocations(path)
        if let cut = located.blocks.first(where: { $0.offset < newLength && newLength < $0.offset + $0.block.numBytes }),
            !located.underConstruction
        {
            guard let status = try await status(path) else { throw RemoteException.fileNotFound(path) }
            let name = (status.path as NSString).lastPathComponent
            let directory = (status.path as NSString).deletingLastPathComponent
            let replacement = (directory == "/" ? "" : directory) + "/.\(name).truncate-\(UUID().uuidString.prefix(8))"
            do {
                let stream = try await create(
                    replacement, overwrite: false, replication: Int(status.replication), blockSize: status.blockSize,
                    permission: UInt16(status.permission & 0o777), createParent: false)
                try await read(path, offset: cut.offset, length: newLength - cut.offset) { bytes in
                    try await stream.write(bytes)
                }
                try await stream.close()
                request.replacement = replacement
                request.cutBlock = cut.block
                let response: Strata_Wire_BoolResponse = try await call(.truncate, request)
                return response.result
            } catch {
                _ = try? await delete(replacement, recursive: false)
                throw error
            }
        }
        let response: Strata_Wire_BoolResponse = try await call(.truncate, request)
        return response.result
    }
}
