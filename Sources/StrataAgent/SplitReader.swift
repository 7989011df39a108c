import Foundation
import StrataClient
import StrataCompute

#if canImport(Glibc)
import Glibc
#endif

/// Reads a task's input split from the DFS into a local file, in line mode: the lines that start
/// in the split, the last one read on to its newline (`LineSplit`). The split's block comes from
/// this machine's data node's disk when it holds a replica (short-circuit read).
enum SplitReader {
    struct Result: Sendable {
        var bytes: UInt64
        var localBytes: UInt64
        var remoteBytes: UInt64
    }

    /// How much is fetched at a time while looking for a line's end.
    static let probeBytes: UInt64 = 8 * 1024

    static func read(_ split: InputSplit, client: DFSClient, into path: String) async throws -> Result {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw AgentError(message: "cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let localBefore = client.shortCircuitBytes
        let end = min(split.offset + split.length, split.fileLength)

        // Where the split's first line begins: after the first newline at or after offset - 1.
        var begin: UInt64? = split.offset == 0 ? 0 : nil
        var position = split.offset == 0 ? 0 : split.offset - 1
        var fetched: UInt64 = 0
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
            return Result(bytes: 0, localBytes: 0, remoteBytes: fetched)
        }

        // The split's body, written at its offsets (decoded on the client's codec threads).
        let body = try await client.readPositioned(split.path, offset: begin, length: end - begin) { offset, bytes in
            var written = 0
            while written < bytes.count {
                let result = pwrite(descriptor, bytes.baseAddress! + written, bytes.count - written, off_t(offset - begin) + off_t(written))
                guard result > 0 else { throw AgentError(message: "cannot write \(path): \(String(cString: strerror(errno)))") }
                written += result
            }
        }
        var total = body

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
                try chunk.prefix(take).withUnsafeBytes { bytes in
                    let result = pwrite(descriptor, bytes.baseAddress!, take, off_t(total))
                    guard result == take else { throw AgentError(message: "cannot write \(path)") }
                }
                total += UInt64(take)
                if lineEnd != nil { break }
                tailPosition += UInt64(chunk.count)
            }
        }
        let local = client.shortCircuitBytes - localBefore
        let read = body + fetched
        return Result(bytes: total, localBytes: min(local, read), remoteBytes: read - min(local, read))
    }
}
