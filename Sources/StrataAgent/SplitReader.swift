import Foundation
import StrataClient
import StrataCompute

#if canImport(Glibc)
import Glibc
#endif

/// Reads a task's input split from the DFS into the task's standard input while the task runs
/// (`TaskInputPipe`), in line mode: the lines that start in the split, the last one read on to
/// its newline (`LineSplit`). The split's block comes from this machine's data node's disk when
/// it holds a replica (short-circuit read).
enum SplitReader {
    struct Result: Sendable {
        var bytes: UInt64
        var localBytes: UInt64
        var remoteBytes: UInt64
    }

    /// How much is fetched at a time while looking for a line's end.
    static let probeBytes: UInt64 = 8 * 1024

    /// Streams the split into `pipe` and finishes it (the task then reads end of file). When the
    /// task goes away first (it exited or was killed, or the agent cancelled the pipe), returns
    /// what was read until then; throws when the DFS read fails while the task still reads.
    static func stream(_ split: InputSplit, client: DFSClient, into pipe: TaskInputPipe) async throws -> Result {
        let localBefore = client.shortCircuitBytes
        var fetched: UInt64 = 0
        var body: UInt64 = 0
        func result(bytes: UInt64) -> Result {
            let local = client.shortCircuitBytes - localBefore
            let read = body + fetched
            return Result(bytes: bytes, localBytes: min(local, read), remoteBytes: read - min(local, read))
        }
        do {
            let end = min(split.offset + split.length, split.fileLength)

            // Where the split's first line begins: after the first newline at or after offset - 1.
            var begin: UInt64? = split.offset == 0 ? 0 : nil
            var position = split.offset == 0 ? 0 : split.offset - 1
            while begin == nil, position < end {
                let length = min(probeBytes, end - position)
                let probe = try await client.readAll(split.path, offset: position, length: length)
                fetched += UInt64(probe.count)
                if let start = LineSplit.firstLineStart(offset: position + 1, splitEnd: end, probe: probe) {
                    begin = start
                } else if probe.contains(UInt8(ascii: "\n")) {
                    // A newline, but the line after it starts at or past the split's end.
                    break
                }
                guard !probe.isEmpty else { break }
                position += UInt64(probe.count)
            }
            guard let begin, begin < end else {
                pipe.begin(at: 0)
                pipe.finish(at: 0)
                return Result(bytes: 0, localBytes: 0, remoteBytes: fetched)
            }
            pipe.begin(at: begin)

            // The split's body, decoded on the client's codec threads into the pipe's buffers,
            // out of order; the pipe's writer puts it into the pipe in order.
            body = try await client.readPositioned(split.path, offset: begin, length: end - begin, into: pipe)
            var streamEnd = begin + body

            // The last line, read on into the next block to its newline.
            if end < split.fileLength {
                let last = try await client.readAll(split.path, offset: end - 1, length: 1)
                var tailPosition = last.first == UInt8(ascii: "\n") ? split.fileLength : end
                while tailPosition < split.fileLength {
                    let chunk = try await client.readAll(split.path, offset: tailPosition, length: min(probeBytes, split.fileLength - tailPosition))
                    guard !chunk.isEmpty else { break }
                    fetched += UInt64(chunk.count)
                    let lineEnd = LineSplit.tailLength(endsWithNewline: false, tail: chunk)
                    let take = lineEnd ?? chunk.count
                    try pipe.append(Array(chunk.prefix(take)), at: streamEnd)
                    streamEnd += UInt64(take)
                    if lineEnd != nil { break }
                    tailPosition += UInt64(chunk.count)
                }
            }
            pipe.finish(at: streamEnd)
            return result(bytes: streamEnd - begin)
        } catch {
            // The task closed its input, or the agent stopped the stream: not the read's failure.
            guard let ending = pipe.endingNow, ending == .readerGone || ending == .cancelled else { throw error }
            body = max(body, pipe.receivedBytes)
            return result(bytes: pipe.receivedBytes)
        }
    }
}
