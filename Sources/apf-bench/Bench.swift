import ArgumentParser
import Foundation

@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apf-bench",
        abstract: "Benchmarks of apf-agent against the ways its peers do the same work (run by `make bench-*`).",
        subcommands: [SSHBench.self, SubmitBench.self, AgentBench.self])
}

/// Where the testbed (testbed/tb up) listens and keeps its keys.
struct TestbedEnv {
    var values: [String: String] = [:]

    static func load() throws -> TestbedEnv {
        let dir = ProcessInfo.processInfo.environment["APF_TESTBED_DIR"] ?? "/var/tmp/apf-testbed"
        guard let text = try? String(contentsOfFile: "\(dir)/env", encoding: .utf8) else {
            throw ValidationError("no testbed at \(dir): run `testbed/tb up` first (make bench-ssh does)")
        }
        var env = TestbedEnv()
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            env.values[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return env
    }

    subscript(_ key: String) -> String? { values[key] }
}

/// Runs a process without blocking a cooperative thread; returns its exit status.
func spawn(_ argv: [String]) async throws -> Int32 {
    try await withCheckedThrowingContinuation { cont in
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        p.terminationHandler = { cont.resume(returning: $0.terminationStatus) }
        do { try p.run() } catch { cont.resume(throwing: error) }
    }
}

func measure(_ body: () async throws -> Void) async rethrows -> Duration {
    let start = ContinuousClock.now
    try await body()
    return ContinuousClock.now - start
}

extension Duration {
    var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
