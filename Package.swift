// swift-tools-version:6.1
import PackageDescription

// Only the package versions copied onto our build machines resolve (see README: "Offline builds").
let package = Package(
    name: "investigate",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "investigate", targets: ["investigate"]),
        .executable(name: "logsim", targets: ["logsim"]),
        .library(name: "InvestigateKit", targets: ["InvestigateKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        .package(url: "https://github.com/JohnSundell/Ink", from: "0.6.0"),
    ],
    targets: [
        // zlib from the system (Debian: zlib1g-dev), for gzip input and CloudWatch subscription payloads.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        // SHA-256's compression function on the x86 SHA extensions, when the CPU has them.
        .target(name: "CSHA256"),
        .target(
            name: "InvestigateKit",
            dependencies: [
                "CZlib",
                "CSHA256",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .executableTarget(
            name: "investigate",
            dependencies: [
                "InvestigateKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // The importers' libFuzzer target (scripts/fuzz.sh); a plain build replays input files.
        .executableTarget(
            name: "investigate-fuzz",
            dependencies: ["InvestigateKit"],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // The traffic simulator: plays requests through a modelled stack and writes each layer's log.
        .target(
            name: "LogSimKit",
            dependencies: ["CZlib"],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .executableTarget(
            name: "logsim",
            dependencies: [
                "LogSimKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "InvestigateKitTests",
            dependencies: [
                "InvestigateKit",
                "LogSimKit",
                .product(name: "Ink", package: "Ink"),
            ],
            // Inputs the fuzzer found, read from the source tree by FuzzRegressionTests.
            exclude: ["FuzzFindings"],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
    ]
)
