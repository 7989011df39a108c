import Foundation
import StrataWire

/// The spec's JSON objects, built from Strata's wire messages.
enum WebHDFSJSON {
    /// `fileStatusProperties`: `pathSuffix` is the entry's name in a listing and empty for
    /// GETFILESTATUS; `permission` is an octal string; Strata has one storage policy (HDFS's
    /// "unspecified", 0).
    static func fileStatus(_ status: Strata_Wire_FileStatus, pathSuffix: String) -> JSONValue {
        let isDirectory = status.kind == .directory
        return .object([
            ("accessTime", .integer(status.accessTimeMs)),
            ("blockSize", .unsigned(isDirectory ? 0 : status.blockSize)),
            ("childrenNum", .integer(Int64(status.childrenCount))),
            ("fileId", .unsigned(status.fileID)),
            ("group", .string(status.group)),
            ("length", .unsigned(isDirectory ? 0 : status.length)),
            ("modificationTime", .integer(status.modificationTimeMs)),
            ("owner", .string(status.owner)),
            ("pathSuffix", .string(pathSuffix)),
            ("permission", .string(String(status.permission & 0o1777, radix: 8))),
            ("replication", .integer(isDirectory ? 0 : Int64(status.replication))),
            ("storagePolicy", .integer(0)),
            ("type", .string(isDirectory ? "DIRECTORY" : "FILE")),
        ])
    }

    static func name(of status: Strata_Wire_FileStatus) -> String {
        status.path == "/" ? "" : (status.path as NSString).lastPathComponent
    }

    static func fileStatuses(_ entries: [Strata_Wire_FileStatus], listedFile: Bool) -> JSONValue {
        .object([
            (
                "FileStatuses",
                .object([
                    ("FileStatus", .array(entries.map { fileStatus($0, pathSuffix: listedFile ? "" : name(of: $0)) }))
                ])
            )
        ])
    }

    static func contentSummary(_ summary: Strata_Wire_ContentSummary) -> JSONValue {
        .object([
            (
                "ContentSummary",
                .object([
                    ("directoryCount", .unsigned(summary.directoryCount)),
                    ("fileCount", .unsigned(summary.fileCount)),
                    ("length", .unsigned(summary.length)),
                    ("quota", .integer(summary.quota)),
                    ("spaceConsumed", .unsigned(summary.spaceConsumed)),
                    ("spaceQuota", .integer(summary.spaceQuota)),
                    ("typeQuota", .object([])),
                ])
            )
        ])
    }

    static func boolean(_ value: Bool) -> JSONValue { .object([("boolean", .boolean(value))]) }

    static func path(_ value: String) -> JSONValue { .object([("Path", .string(value))]) }

    static func location(_ value: String) -> JSONValue { .object([("Location", .string(value))]) }

    static func blockLocations(_ located: Strata_Wire_LocatedBlocks) -> JSONValue {
        var blocks = located.blocks
        if located.hasLastBlock { blocks.append(located.lastBlock) }
        return .object([
            (
                "BlockLocations",
                .object([
                    (
                        "BlockLocation",
                        .array(
                            blocks.map { block in
                                .object([
                                    ("cachedHosts", .array([])),
                                    ("corrupt", .boolean(block.corrupt)),
                                    ("hosts", .array(block.locations.map { .string($0.hostname.isEmpty ? $0.ipAddress : $0.hostname) })),
                                    ("length", .unsigned(block.block.numBytes)),
                                    ("names", .array(block.locations.map { .string("\($0.ipAddress):\($0.transferPort)") })),
                                    ("offset", .unsigned(block.offset)),
                                    ("storageTypes", .array(block.locations.map { _ in .string("DISK") })),
                                    ("topologyPaths", .array(block.locations.map { .string("/default-rack/\($0.ipAddress):\($0.transferPort)") })),
                                ])
                            })
                    )
                ])
            )
        ])
    }

    /// HDFS's `FsServerDefaults`, with Strata's block size and replication. Checksums are CRC32C
    /// (`checksumType` 2) over 512 bytes, as GETFILECHECKSUM computes them.
    static func serverDefaults(_ defaults: Strata_Wire_ServerDefaults) -> JSONValue {
        .object([
            (
                "FsServerDefaults",
                .object([
                    ("replication", .integer(Int64(defaults.replication))),
                    ("encryptDataTransfer", .boolean(false)),
                    ("defaultStoragePolicyId", .integer(7)),
                    ("writePacketSize", .integer(65536)),
                    ("fileBufferSize", .integer(4096)),
                    ("checksumType", .integer(2)),
                    ("trashInterval", .integer(0)),
                    ("keyProviderUri", .string("")),
                    ("blockSize", .unsigned(defaults.blockSize)),
                    ("bytesPerChecksum", .integer(512)),
                ])
            )
        ])
    }

    static func fileChecksum(_ checksum: FileChecksum) -> JSONValue {
        .object([
            (
                "FileChecksum",
                .object([
                    ("algorithm", .string(checksum.algorithm)),
                    ("bytes", .string(checksum.bytes.map { String(format: "%02x", $0) }.joined())),
                    ("length", .integer(Int64(checksum.bytes.count))),
                ])
            )
        ])
    }
}
