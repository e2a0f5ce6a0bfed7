// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "apf-agent",
    platforms: [.macOS(.v15)],  // production runs on Linux
    products: [
        .executable(name: "apf-agent", targets: ["apf-agent"]),
        .executable(name: "apf-bench", targets: ["apf-bench"]),
        .library(name: "Agent", targets: ["Agent"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        // Auth profiles (issue 5): X.509 proxies and VOMS attribute certificates.
        .package(url: "https://github.com/apple/swift-certificates", exact: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", exact: "1.0.2"),  // batch drivers' local mode
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", exact: "2.13.0"),  // the daemon (issue 7)
    ],
    targets: [
        .systemLibrary(
            name: "CLibSSH2", pkgConfig: "libssh2",
            providers: [.apt(["libssh2-1-dev"]), .brew(["libssh2"])]),
        .target(
            name: "AuthProfiles",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strict),
        .target(
            name: "SSHSubmit",
            dependencies: [
                "CLibSSH2", "AuthProfiles",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            swiftSettings: strict),
        .target(
            name: "Agent",
            dependencies: [
                "AuthProfiles", "SSHSubmit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "apf-agent",
            dependencies: [
                "Agent", "AuthProfiles", "SSHSubmit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "apf-bench",
            dependencies: ["Agent", "SSHSubmit", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                           .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict),
        // What the test targets share: the testbed's env file, running local programs, a silent logger.
        .target(
            name: "TestSupport",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            path: "Tests/TestSupport",
            swiftSettings: strict),
        .testTarget(
            name: "AgentTests",
            dependencies: ["Agent", "AuthProfiles", "SSHSubmit", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")],
            resources: [.copy("Fixtures")],
            swiftSettings: strict),
        // End-to-end tests of the agent (issue 7): the real apf-agent daemon against the testbed's SLURM and SGE.
        .testTarget(
            name: "AgentIntegrationTests",
            dependencies: ["Agent", "AuthProfiles", "SSHSubmit", "apf-agent", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict),
        .testTarget(
            name: "SSHSubmitTests",
            dependencies: ["SSHSubmit", "AuthProfiles", "TestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "AuthProfilesTests",
            dependencies: [
                "AuthProfiles", "SSHSubmit", "Agent", "apf-agent", "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strict),
    ]
)
