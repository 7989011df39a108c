// swift-tools-version: 6.1
import PackageDescription

let strictSwift: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Strata",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "strata", targets: ["strata"]),
        .library(name: "StrataBlockFormat", targets: ["StrataBlockFormat"]),
        .library(name: "StrataCore", targets: ["StrataCore"]),
        .library(name: "StrataCompute", targets: ["StrataCompute"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        // SHA-256 for the image store's content addresses. 3.12.3 up to the next major but one:
        // the package graph (swift-nio-extras, swift-certificates) already resolves 4.x.
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        // System libraries, found through pkg-config (Debian: libzstd-dev, libisal-dev).
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        // zlib, for gzip-compressed image layers (Debian: zlib1g-dev).
        .systemLibrary(
            name: "CZlib",
            path: "Sources/CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // glibc's malloc.h, for heap statistics in benchmarks.
        .systemLibrary(name: "CMalloc"),
        // Linux calls Swift's Glibc module leaves out (sync_file_range).
        .systemLibrary(name: "CLinux"),
        .systemLibrary(
            name: "CISAL",
            pkgConfig: "libisal",
            providers: [.apt(["libisal-dev"])]
        ),
        // The name node's journal (Debian: libsqlite3-dev).
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(
            name: "StrataCore",
            dependencies: ["CLinux", "CMalloc"],
            swiftSettings: strictSwift
        ),
        .target(
            name: "StrataBlockFormat",
            dependencies: ["CZstd", "CISAL", "StrataCore"],
            swiftSettings: strictSwift
        ),
        .target(
            name: "StrataJournal",
            dependencies: ["CSQLite", "StrataCore", "StrataBlockFormat"],
            swiftSettings: strictSwift
        ),
        .target(
            name: "StrataWire",
            dependencies: [
                "StrataCore",
                "CMalloc",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        // Hadoop's RPC (ClientProtocol over protobuf) on the name node's port: the code generated
        // from Hadoop's .proto files (Protos/hadoop), the framing and the connection state.
        .target(
            name: "StrataHadoopWire",
            dependencies: [
                "StrataWire",
                // Chunk checksums of the DataTransferProtocol: CRC32C (ISA-L, through the block
                // format) and CRC32 (zlib).
                "StrataBlockFormat", "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "StrataNameNode",
            dependencies: ["StrataCore", "StrataWire", "StrataHadoopWire", "StrataJournal", "StrataBlockFormat"],
            swiftSettings: strictSwift
        ),
        .target(
            name: "StrataClient",
            dependencies: ["StrataCore", "StrataWire", "StrataBlockFormat", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSwift
        ),
        .target(
            name: "StrataDataNode",
            dependencies: ["StrataCore", "StrataWire", "StrataHadoopWire", "StrataBlockFormat", "StrataClient"],
            swiftSettings: strictSwift
        ),
        // The HTTP server every Strata daemon answers on (Hummingbird), as a Service.
        .target(
            name: "StrataHTTP",
            dependencies: [
                "StrataCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        // WebHDFS over HTTP: the name node's routes and the data nodes' routes.
        .target(
            name: "StrataWebHDFS",
            dependencies: [
                "StrataCore", "StrataWire", "StrataClient", "StrataNameNode", "StrataDataNode", "StrataBlockFormat", "StrataHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        // The daemons as services (swift-service-lifecycle) and their compositions: what
        // `strata namenode`, `strata datanode` and `strata cluster up` run.
        .target(
            name: "StrataCluster",
            dependencies: [
                "StrataCore", "StrataNameNode", "StrataDataNode", "StrataWebHDFS", "StrataHTTP",
                "StrataMaster", "StrataAgent", "StrataCompute", "StrataImages", "StrataRegistry", "StrataClient",
                "StrataLauncher", "StrataCronService",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        // The compute half's decisions: resources, placement, constraints, task states, the
        // master's job and task state machine. No I/O.
        .target(
            name: "StrataCompute",
            dependencies: ["StrataCore"],
            swiftSettings: strictSwift
        ),
        // The launcher's decisions: Marathon app definitions and their validation, deployment
        // planning, launch backoff, health-check verdicts, records for its state on the DFS. No I/O.
        .target(
            name: "StrataApps",
            dependencies: ["StrataCore", "StrataCompute"],
            swiftSettings: strictSwift
        ),
        // Cron's schedule logic: ISO 8601 repeating intervals and cron expressions in a time
        // zone, next fire times, catch-up of missed runs, run ids. No I/O.
        .target(
            name: "StrataCron",
            dependencies: ["StrataCore"],
            swiftSettings: strictSwift
        ),
        // The cron service's shell: Chronos' REST API, each run submitted to the master as a
        // job, its state on the DFS.
        .target(
            name: "StrataCronService",
            dependencies: [
                "StrataCore", "StrataCron", "StrataCompute", "StrataClient", "StrataHTTP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "StrataLauncher",
            dependencies: [
                "StrataCore", "StrataApps", "StrataCompute", "StrataClient", "StrataHTTP", "StrataImages",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        // The agent: executors (processes in cgroups, runc containers), sandboxes, its HTTP API.
        .target(
            name: "StrataAgent",
            dependencies: [
                "StrataCore", "StrataCompute", "StrataClient", "StrataWire", "StrataHTTP", "StrataImages", "CZlib", "CZstd",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        // The resource master: agents, jobs and tasks over HTTP, state on the DFS.
        .target(
            name: "StrataMaster",
            dependencies: [
                "StrataCore", "StrataCompute", "StrataClient", "StrataWire", "StrataHTTP", "StrataImages",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        // The image store: OCI manifests, indexes and configs; content-addressed blobs and an
        // index of repositories and tags on the DFS; image layouts and archives to push from.
        .target(
            name: "StrataImages",
            dependencies: [
                "StrataCore", "StrataClient",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        // The OCI distribution API (v2) over the image store.
        .target(
            name: "StrataRegistry",
            dependencies: [
                "StrataHTTP", "StrataImages",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .target(
            name: "StrataTestKit",
            dependencies: [
                "StrataNameNode", "StrataDataNode", "StrataClient", "StrataWebHDFS", "StrataCluster", "StrataMaster", "StrataAgent",
                "StrataRegistry", "StrataImages", "StrataLauncher", "StrataCronService",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),
        .executableTarget(
            name: "strata",
            dependencies: [
                "StrataCore",
                "StrataBlockFormat",
                "StrataJournal",
                "StrataNameNode",
                "StrataDataNode",
                "StrataClient",
                "StrataWebHDFS",
                "StrataCluster",
                "StrataCompute",
                "StrataMaster",
                "StrataAgent",
                "StrataImages",
                "StrataLauncher",
                "StrataCronService",
                "StrataCron",
                "CMalloc",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataBlockFormatTests",
            dependencies: ["StrataBlockFormat", "StrataCore", "StrataTestKit"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataDFSTests",
            dependencies: [
                "StrataTestKit", "StrataClient", "StrataNameNode", "StrataDataNode", "StrataBlockFormat", "StrataWire", "StrataHadoopWire",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataWebHDFSTests",
            dependencies: [
                "StrataTestKit", "StrataWebHDFS", "StrataClient", "StrataNameNode", "StrataWire",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataCLITests",
            dependencies: ["StrataTestKit", "StrataClient", "StrataWire", .product(name: "NIOPosix", package: "swift-nio")],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataClusterTests",
            dependencies: [
                "StrataCluster", "StrataClient", "StrataTestKit",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataNameNodeTests",
            dependencies: ["StrataNameNode", "StrataWire", "StrataTestKit"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataComputeTests",
            dependencies: ["StrataCompute", "StrataCore", "StrataTestKit"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataAppsTests",
            dependencies: ["StrataApps", "StrataCompute", "StrataCore"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataCronTests",
            dependencies: ["StrataCron"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataCronServiceTests",
            dependencies: [
                "StrataCronService", "StrataCron", "StrataCompute", "StrataCore", "StrataTestKit", "StrataClient", "StrataCluster",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataLauncherTests",
            dependencies: [
                "StrataLauncher", "StrataApps", "StrataMaster", "StrataCompute", "StrataCore", "StrataTestKit", "StrataClient",
                "StrataCluster",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataAgentTests",
            dependencies: ["StrataAgent", "StrataCompute", "StrataCore", "StrataImages", "StrataTestKit"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataMasterTests",
            dependencies: [
                "StrataMaster", "StrataAgent", "StrataCompute", "StrataCore", "StrataTestKit", "StrataClient", "StrataCluster", "StrataImages",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataCoreTests",
            dependencies: ["CLinux"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataRegistryTests",
            dependencies: [
                "StrataRegistry", "StrataImages", "StrataTestKit", "StrataCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataImagesTests",
            dependencies: ["StrataImages", "StrataClient", "StrataCore", "StrataTestKit", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataHadoopWireTests",
            dependencies: [
                "StrataHadoopWire", "StrataWire", "StrataTestKit", "StrataClient", "StrataNameNode",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "StrataJournalTests",
            dependencies: ["StrataJournal", "StrataCore", "StrataTestKit"],
            swiftSettings: strictSwift
        ),
    ]
)
