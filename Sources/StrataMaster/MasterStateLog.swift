import Foundation
import StrataClient
import StrataCompute

/// Where the master keeps its records: on the DFS, a snapshot plus an append-only log under
/// `/system/master/` (`DFSStateStore`).
public protocol MasterStateLog: Sendable {
    /// Takes the log over and returns the newest snapshot and the records after it.
    func open() async throws -> (snapshot: [UInt8]?, records: [[UInt8]])
    /// Returns once the records are durable.
    func append(_ records: [[UInt8]]) async throws
    /// Replaces everything logged so far with `bytes`.
    func writeSnapshot(_ bytes: [UInt8]) async throws
    func close() async throws
}

/// How records and snapshots are encoded in the master's log: JSON, one record per log record;
/// a snapshot is the array of records that rebuilds the state (`MasterState.snapshotRecords`).
enum MasterRecordCoding {
    static func encode(_ record: MasterRecord) throws -> [UInt8] {
        Array(try JSONEncoder().encode(record))
    }

    static func decode(_ bytes: [UInt8]) throws -> MasterRecord {
        try JSONDecoder().decode(MasterRecord.self, from: Data(bytes))
    }

    static func encodeSnapshot(_ records: [MasterRecord]) throws -> [UInt8] {
        Array(try JSONEncoder().encode(records))
    }

    static func decodeSnapshot(_ bytes: [UInt8]) throws -> [MasterRecord] {
        try JSONDecoder().decode([MasterRecord].self, from: Data(bytes))
    }
}

extension DFSStateStore: MasterStateLog {}
