public import Foundation
public import Logging

/// What every test target shares about the project's testbed (testbed/tb): the env file `tb up` writes, the
/// `APF_INTEGRATION=1` gate (`make test` sets it), and running local programs without stalling other tests.
public enum TestbedEnv {
    public static let enabled = ProcessInfo.processInfo.environment["APF_INTEGRATION"] == "1"
    public static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// The env file's variables. `APF_TESTBED_DIR` moves the state directory; `APF_TB_ENV_FILE` reads another env
    /// file (only that file: `tb` keeps using the state directory).
    public static func read() throws(TestFailure) -> [String: String] {
        let process = ProcessInfo.processInfo.environment
        let dir = process["APF_TESTBED_DIR"] ?? "/var/tmp/apf-testbed"
        let file = process["APF_TB_ENV_FILE"] ?? "\(dir)/env"
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw TestFailure("no testbed env at \(file): run `testbed/tb up` (make test does)")
        }
        var env: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            env[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        return env
    }

    /// `env[key]`, or an error that says how to get it.
    public static func value(_ env: [String: String], _ key: String) throws(TestFailure) -> String {
        guard let v = env[key] else { throw TestFailure("testbed env lacks \(key): run `testbed/tb up all`") }
        return v
    }

    /// Runs `argv` (stdout and stderr together) and returns its output; throws with the output unless it exits 0.
    @discardableResult
    public static func run(_ argv: [String], environment: [String: String] = [:], stdin: String? = nil) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, b in b } }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        let input = Pipe()
        if stdin != nil { p.standardInput = input }
        try p.run()
        if let stdin {
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try input.fileHandleForWriting.close()
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0 else {
            throw TestFailure("\(argv.joined(separator: " ")) failed (\(p.terminationStatus)): \(text)")
        }
        return text
    }

    /// `run` on a thread of its own: a child process is waited for without holding one of the (two, on the test
    /// machine) cooperative threads that every other suite shares.
    @discardableResult
    public static func runOffPool(_ argv: [String], environment: [String: String] = [:]) async throws -> String {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<String, any Error>) in
            Thread.detachNewThread { c.resume(with: Result { try run(argv, environment: environment) }) }
        }
    }

    /// Runs `testbed/tb ARGS` and returns its output.
    @discardableResult
    public static func tb(_ args: [String]) throws -> String {
        try run(["/bin/bash", "\(repoRoot)/testbed/tb"] + args)
    }
}

/// A test precondition or helper that failed, with what to do about it.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

extension Logger {
    /// A logger that prints nothing (tests assert on values, not on log lines).
    public static let silent: Logger = {
        var l = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        l.logLevel = .critical
        return l
    }()
}
