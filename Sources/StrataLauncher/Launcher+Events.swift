import Hummingbird
import NIOCore
import ServiceLifecycle
import StrataApps
import StrataCore
import StrataHTTP

extension Launcher {
    /// How often an idle event stream writes a heartbeat (an empty line, which SSE clients
    /// ignore), as Jetty's `EventSourceServlet` under Marathon does every 10 seconds: it keeps
    /// proxies from closing the connection and shows a client that has gone.
    static let eventStreamHeartbeatMs: Int64 = 10_000

    /// `GET /v2/events`: Marathon's event stream as server-sent events (`event: TYPE`,
    /// `data: JSON`), only the types named by `event_type` parameters if any. As Marathon's
    /// servlet, it answers 405 to a client that does not accept `text/event-stream`. Each event
    /// is sent once the records it comes from are durable. The stream ends when the client goes,
    /// when it reads too slowly (its buffer overflows), or when the launcher stops.
    func eventStream(_ request: Request) throws -> Response {
        guard request.headers[.accept]?.contains("text/event-stream") == true else {
            throw APIError(.methodNotAllowed, "HTTP method GET is not supported by this URL without Accept: text/event-stream")
        }
        let types = Set(Self.queryValues(request, "event_type"))
        let wall = clock.wallTimeMs
        let subscription = state.withLock { state in events.subscribe(current: state, wallTimeMs: wall) }
        let body = ResponseBody { writer in
            let heartbeat = Task {
                while !Task.isCancelled {
                    try await self.clock.sleep(milliseconds: Self.eventStreamHeartbeatMs)
                    subscription.sink.yield(.heartbeat)
                }
            }
            defer {
                heartbeat.cancel()
                self.events.unsubscribe(subscription.id, wallTimeMs: self.clock.wallTimeMs)
            }
            // The launcher stopping ends the stream (its subscription finishes, the loop ends).
            let sink = subscription.sink
            try await withGracefulShutdownHandler {
                for await item in subscription.items {
                    switch item {
                    case .heartbeat:
                        try await writer.write(ByteBuffer(string: "\n"))
                    case .event(let event, let ticket):
                        guard types.isEmpty || types.contains(event.eventType) else { continue }
                        try await self.log.waitDurable(ticket)
                        try await writer.write(ByteBuffer(string: event.frame()))
                    }
                }
            } onGracefulShutdown: {
                sink.finish()
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-cache"], body: body)
    }
}
