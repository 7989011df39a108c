import Foundation
import NIOHTTP1
import StrataTestKit
import Testing

@Suite("WebHDFS operations")
struct WebHDFSOperationTests {
    let fileStatusKeys: Set<String> = [
        "accessTime", "blockSize", "childrenNum", "fileId", "group", "length", "modificationTime", "owner", "pathSuffix",
        "permission", "replication", "storagePolicy", "type",
    ]

    @Test("CREATE, APPEND and OPEN redirect to data nodes; noredirect answers the Location as JSON")
    func twoStepProtocol() async throws {
        try await withCluster { cluster in
            try await withWebClient(cluster) { web in
                let dataPorts = Set(cluster.dataNodeHTTP.map(\.port))
                let first = try await web.send(.PUT, "/webhdfs/v1/data/a.bin?op=CREATE&user.name=strata&permission=640")
                #expect(first.status == 307)
                let location = try #require(first.location.flatMap { URL(string: $0) })
                #expect(dataPorts.contains(location.port ?? 0))
                #expect(first.body.isEmpty)

                let noRedirect = try await web.send(.PUT, "/webhdfs/v1/data/a.bin?op=CREATE&user.name=strata&noredirect=true")
                #expect(noRedirect.status == 200)
                let jsonLocation = try #require(noRedirect.json["Location"] as? String)
                #expect(dataPorts.contains(URL(string: jsonLocation)?.port ?? 0))

                let bytes = randomBytes(700_000, seed: 1)
                let created = try await web.send(.PUT, location.absoluteString, body: bytes)
                #expect(created.status == 201)
                #expect(created.location == "webhdfs://127.0.0.1:\(cluster.nameNodeHTTPPort)/data/a.bin")
                #expect(created.body.isEmpty)

                let open = try await web.send(.GET, "/webhdfs/v1/data/a.bin?op=OPEN&user.name=strata")
                #expect(open.status == 307)
                let read = try await web.send(.GET, try #require(open.location))
                #expect(read.status == 200)
                #expect(read.headers["content-type"] == "application/octet-stream")
                #expect(read.body == bytes)

                let ranged = try await web.twoStep(.GET, "/webhdfs/v1/data/a.bin?op=OPEN&offset=123456&length=1000&buffersize=4096")
                #expect(ranged.body == Array(bytes[123_456..<124_456]))
                let tail = try await web.twoStep(.GET, "/webhdfs/v1/data/a.bin?op=OPEN&offset=699990")
                #expect(tail.body == Array(bytes[699_990...]))
                let atEnd = try await web.twoStep(.GET, "/webhdfs/v1/data/a.bin?op=OPEN&offset=700000")
                #expect(atEnd.status == 200 && atEnd.body.isEmpty)

                let more = randomBytes(5000, seed: 2)
                let appended = try await web.twoStep(.POST, "/webhdfs/v1/data/a.bin?op=APPEND&user.name=strata", body: more)
                #expect(appended.status == 200)
                #expect(appended.body.isEmpty)
                let whole = try await web.twoStep(.GET, "/webhdfs/v1/data/a.bin?op=OPEN&user.name=strata")
                #expect(whole.body == bytes + more)

                let noRedirectOpen = try await web.send(.GET, "/webhdfs/v1/data/a.bin?op=OPEN&noredirect=true")
                #expect(noRedirectOpen.status == 200 && noRedirectOpen.json["Location"] is String)
            }
        }
    }

    @Test("Every namespace operation answers the spec's JSON")
    func jsonShapes() async throws {
        try await withCluster { cluster in
            try await withWebClient(cluster) { web in
                let mkdirs = try await web.send(.PUT, "/webhdfs/v1/d/sub?op=MKDIRS&user.name=strata&permission=750")
                #expect(mkdirs.status == 200 && mkdirs.text == #"{"boolean":true}"#)
                for name in ["b", "a", "c"] {
                    let created = try await web.twoStep(.PUT, "/webhdfs/v1/d/\(name)?op=CREATE&user.name=strata", body: Array(name.utf8))
                    #expect(created.status == 201)
                }

                let status = try await web.send(.GET, "/webhdfs/v1/d/a?op=GETFILESTATUS")
                let fileStatus = try #require(status.json["FileStatus"] as? [String: Any])
                #expect(Set(fileStatus.keys) == fileStatusKeys)
                #expect(fileStatus["type"] as? String == "FILE")
                #expect(fileStatus["permission"] as? String == "644")
                #expect(fileStatus["length"] as? Int == 1)
                #expect(fileStatus["pathSuffix"] as? String == "")
                #expect(fileStatus["owner"] as? String == "strata")
                let directoryStatus = try await web.send(.GET, "/webhdfs/v1/d/sub?op=GETFILESTATUS")
                #expect((directoryStatus.json["FileStatus"] as? [String: Any])?["permission"] as? String == "750")
                #expect((directoryStatus.json["FileStatus"] as? [String: Any])?["type"] as? String == "DIRECTORY")

                let list = try await web.send(.GET, "/webhdfs/v1/d?op=LISTSTATUS")
                let entries = try #require((list.json["FileStatuses"] as? [String: Any])?["FileStatus"] as? [[String: Any]])
                #expect(entries.map { $0["pathSuffix"] as? String } == ["a", "b", "c", "sub"])
                #expect(entries.allSatisfy { Set($0.keys) == fileStatusKeys })
                let listFile = try await web.send(.GET, "/webhdfs/v1/d/a?op=LISTSTATUS")
                let fileEntries = try #require((listFile.json["FileStatuses"] as? [String: Any])?["FileStatus"] as? [[String: Any]])
                #expect(fileEntries.count == 1 && fileEntries[0]["pathSuffix"] as? String == "")

                let batch = try await web.send(.GET, "/webhdfs/v1/d?op=LISTSTATUS_BATCH&startAfter=b")
                let listing = try #require(batch.json["DirectoryListing"] as? [String: Any])
                #expect(listing["remainingEntries"] as? Int == 0)
                let partial = (listing["partialListing"] as? [String: Any])?["FileStatuses"] as? [String: Any]
                #expect((partial?["FileStatus"] as? [[String: Any]])?.map { $0["pathSuffix"] as? String } == ["c", "sub"])

                let summary = try await web.send(.GET, "/webhdfs/v1/d?op=GETCONTENTSUMMARY")
                let content = try #require(summary.json["ContentSummary"] as? [String: Any])
                #expect(content["directoryCount"] as? Int == 2)
                #expect(content["fileCount"] as? Int == 3)
                #expect(content["length"] as? Int == 3)
                #expect(content["spaceConsumed"] as? Int == 9)
                #expect(content["quota"] as? Int == -1 && content["spaceQuota"] as? Int == -1)

                let checksum = try await web.twoStep(.GET, "/webhdfs/v1/d/a?op=GETFILECHECKSUM")
                let fileChecksum = try #require(checksum.json["FileChecksum"] as? [String: Any])
                #expect(fileChecksum["algorithm"] as? String == "MD5-of-0MD5-of-512CRC32C")
                #expect(fileChecksum["length"] as? Int == 28)
                #expect((fileChecksum["bytes"] as? String)?.count == 56)

                let home = try await web.send(.GET, "/webhdfs/v1/?op=GETHOMEDIRECTORY&user.name=alice")
                #expect(home.text == #"{"Path":"/user/alice"}"#)

                let locations = try await web.send(.GET, "/webhdfs/v1/d/a?op=GETFILEBLOCKLOCATIONS")
                let blocks = try #require((locations.json["BlockLocations"] as? [String: Any])?["BlockLocation"] as? [[String: Any]])
                #expect(blocks.count == 1)
                #expect((blocks.first?["hosts"] as? [String])?.count == 3)
                #expect(blocks.first?["length"] as? Int == 1 && blocks.first?["offset"] as? Int == 0)

                let defaults = try await web.send(.GET, "/webhdfs/v1/?op=GETSERVERDEFAULTS")
                let serverDefaults = try #require(defaults.json["FsServerDefaults"] as? [String: Any])
                #expect(serverDefaults["replication"] as? Int == 3)
                #expect(serverDefaults["blockSize"] as? Int == 128 * 1024 * 1024)

                #expect(try await web.send(.PUT, "/webhdfs/v1/d/a?op=SETREPLICATION&replication=2").text == #"{"boolean":true}"#)
                #expect(try await web.send(.PUT, "/webhdfs/v1/d/sub?op=SETREPLICATION&replication=2").text == #"{"boolean":false}"#)
                #expect(try await web.send(.PUT, "/webhdfs/v1/d/a?op=SETPERMISSION&permission=600").status == 200)
                #expect(try await web.send(.PUT, "/webhdfs/v1/d/a?op=SETOWNER&owner=bob&group=staff&user.name=strata").status == 200)
                #expect(try await web.send(.PUT, "/webhdfs/v1/d/a?op=SETTIMES&modificationtime=1000&accesstime=2000").status == 200)
                let changed = try #require(try await web.send(.GET, "/webhdfs/v1/d/a?op=GETFILESTATUS").json["FileStatus"] as? [String: Any])
                #expect(changed["replication"] as? Int == 2 && changed["permission"] as? String == "600")
                #expect(changed["owner"] as? String == "bob" && changed["group"] as? String == "staff")
                #expect(changed["modificationTime"] as? Int == 1000 && changed["accessTime"] as? Int == 2000)

                // RENAME is HDFS's legacy rename: into a directory, false instead of errors.
                #expect(try await web.send(.PUT, "/webhdfs/v1/d/b?op=RENAME&destination=/d/sub").text == #"{"boolean":true}"#)
                #expect(try await web.send(.GET, "/webhdfs/v1/d/sub/b?op=GETFILESTATUS").status == 200)
                #expect(try await web.send(.PUT, "/webhdfs/v1/d/missing?op=RENAME&destination=/d/x").text == #"{"boolean":false}"#)
                #expect(try await web.send(.PUT, "/webhdfs/v1/d/c?op=RENAME&destination=/d/a").text == #"{"boolean":false}"#)
                #expect(try await web.send(.PUT, "/webhdfs/v1/d/c?op=RENAME&destination=/nowhere/c").text == #"{"boolean":false}"#)
                #expect(try await web.send(.PUT, "/webhdfs/v1/d/c?op=RENAME&destination=/d/c2").text == #"{"boolean":true}"#)

                let deleted = try await web.send(.DELETE, "/webhdfs/v1/d/c2?op=DELETE")
                #expect(deleted.text == #"{"boolean":true}"#)
                #expect(try await web.send(.DELETE, "/webhdfs/v1/d/c2?op=DELETE").text == #"{"boolean":false}"#)
                let notEmpty = try await web.send(.DELETE, "/webhdfs/v1/d/sub?op=DELETE")
                #expect(notEmpty.status == 403 && notEmpty.exception == "PathIsNotEmptyDirectoryException")
                #expect(try await web.send(.DELETE, "/webhdfs/v1/d/sub?op=DELETE&recursive=true").text == #"{"boolean":true}"#)
            }
        }
    }

    @Test("CONCAT joins whole-block files; TRUNCATE cuts on and inside block boundaries")
    func concatAndTruncate() async throws {
        try await withCluster { cluster in
            try await withWebClient(cluster) { web in
                let one = randomBytes(2048, seed: 3)
                let two = randomBytes(1024, seed: 4)
                let three = randomBytes(700, seed: 5)
                for (name, bytes) in [("t", one), ("s1", two), ("s2", three)] {
                    let created = try await web.twoStep(.PUT, "/webhdfs/v1/c/\(name)?op=CREATE&blocksize=1024", body: bytes)
                    #expect(created.status == 201)
                }
                let concat = try await web.send(.POST, "/webhdfs/v1/c/t?op=CONCAT&sources=/c/s1,/c/s2")
                #expect(concat.status == 200 && concat.body.isEmpty)
                #expect(try await web.twoStep(.GET, "/webhdfs/v1/c/t?op=OPEN").body == one + two + three)
                #expect(try await web.send(.GET, "/webhdfs/v1/c/s1?op=GETFILESTATUS").status == 404)

                // A partial block may only end the result.
                _ = try await web.twoStep(.PUT, "/webhdfs/v1/c/u?op=CREATE&blocksize=1024", body: randomBytes(10, seed: 6))
                let partial = try await web.send(.POST, "/webhdfs/v1/c/t?op=CONCAT&sources=/c/u")
                #expect(partial.status == 400 && partial.exception == "HadoopIllegalArgumentException")

                let whole = one + two + three
                let onBoundary = try await web.send(.POST, "/webhdfs/v1/c/t?op=TRUNCATE&newlength=3072")
                #expect(onBoundary.text == #"{"boolean":true}"#)
                #expect(try await web.twoStep(.GET, "/webhdfs/v1/c/t?op=OPEN").body == Array(whole[0..<3072]))
                let inside = try await web.send(.POST, "/webhdfs/v1/c/t?op=TRUNCATE&newlength=1500")
                #expect(inside.text == #"{"boolean":true}"#)
                #expect(try await web.twoStep(.GET, "/webhdfs/v1/c/t?op=OPEN").body == Array(whole[0..<1500]))
                let listing = try await web.send(.GET, "/webhdfs/v1/c?op=LISTSTATUS")
                #expect(!listing.text.contains("truncate"))
                let larger = try await web.send(.POST, "/webhdfs/v1/c/t?op=TRUNCATE&newlength=99999")
                #expect(larger.status == 400 && larger.exception == "HadoopIllegalArgumentException")
                // Appending after a truncate continues the new last block.
                _ = try await web.twoStep(.POST, "/webhdfs/v1/c/t?op=APPEND", body: Array("tail".utf8))
                #expect(try await web.twoStep(.GET, "/webhdfs/v1/c/t?op=OPEN").body == Array(whole[0..<1500]) + Array("tail".utf8))
            }
        }
    }

    @Test("/metrics on name node and data nodes in Prometheus text format")
    func metrics() async throws {
        try await withCluster { cluster in
            try await withWebClient(cluster) { web in
                _ = try await web.twoStep(.PUT, "/webhdfs/v1/m?op=CREATE", body: randomBytes(1000, seed: 7))
                _ = try await web.twoStep(.GET, "/webhdfs/v1/m?op=OPEN")
                let nameNode = try await web.send(.GET, "/metrics")
                #expect(nameNode.status == 200)
                #expect(nameNode.headers["content-type"]?.hasPrefix("text/plain") == true)
                #expect(nameNode.text.contains(#"strata_namenode_webhdfs_requests_total{op="CREATE",code="307"} 1"#))
                #expect(nameNode.text.contains(#"strata_namenode_webhdfs_request_duration_seconds_count{op="OPEN"} 1"#))
                #expect(nameNode.text.contains("strata_namenode_files 1"))
                #expect(nameNode.text.contains(#"strata_namenode_datanodes{state="live"} 3"#))
                #expect(nameNode.text.contains(#"strata_namenode_datanodes{state="dead"} 0"#))
                #expect(nameNode.text.contains("strata_namenode_blocks 1"))
                var written = 0
                var read = 0
                for node in cluster.dataNodeHTTP {
                    let text = try await web.send(.GET, "http://127.0.0.1:\(node.port)/metrics").text
                    #expect(text.contains("strata_datanode_blocks 1"))
                    #expect(text.contains("strata_datanode_scanner_corrupt_replicas_total 0"))
                    for line in text.split(separator: "\n") {
                        if line.hasPrefix("strata_datanode_webhdfs_bytes_written_total ") { written += Int(line.split(separator: " ")[1]) ?? 0 }
                        if line.hasPrefix("strata_datanode_webhdfs_bytes_read_total ") { read += Int(line.split(separator: " ")[1]) ?? 0 }
                    }
                }
                #expect(written == 1000 && read == 1000)
            }
        }
    }
}
