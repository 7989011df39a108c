import StrataClient

/// Runs `body` with `client` and closes the client afterwards, whether `body` returns or throws.
public func using<Result>(_ client: DFSClient, _ body: (DFSClient) async throws -> Result) async throws -> Result {
    do {
        let result = try await body(client)
        await client.close()
        return result
    } catch {
        await client.close()
        throw error
    }
}
