// swift-tools-version: 6.1
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its folder, which differs between checkouts.
let strataPackage = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "StrataBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "BlockFormat",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "StrataBlockFormat", package: strataPackage),
                .product(name: "StrataCore", package: strataPackage),
            ],
            path: "Benchmarks/BlockFormat",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "Placement",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "StrataCompute", package: strataPackage),
                .product(name: "StrataCore", package: strataPackage),
            ],
            path: "Benchmarks/Placement",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
