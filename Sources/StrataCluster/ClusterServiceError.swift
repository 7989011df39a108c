/// Why a service stopped or could not become ready.
public struct ClusterServiceError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }

    public init(message: String) {
        self.message = message
    }

    static func stoppedBeforeReady(_ service: String) -> ClusterServiceError {
        ClusterServiceError(message: "\(service) stopped before it was serving")
    }
}
