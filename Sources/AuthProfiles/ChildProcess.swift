import Foundation
import Synchronization

/// Runs a local program from an argument vector (never a shell string) with an explicit, minimal environment.
enum ChildProcess {
    struct Result: Sendable {
        var status: Int32
        var timedOut: Bool
        var output: String
    }

    /// Variables passed on to renewal commands; nothing else (in particular no secrets) reaches them.
    static let passedEnvironment = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR",
                                    "X509_CERT_DIR", "X509_VOMS_DIR", "X509_VOMSES", "VOMS_USERCONF"]

    static func minimalEnvironment(_ from: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        var env: [String: String] = [:]
        for k in passedEnvironment { if let v = from[k] { env[k] = v } }
        if env["PATH"] == nil { env["PATH"] = "/usr/local/bin:/usr/bin:/bin" }
        return env
    }

    /// Finds `name` in PATH unless it contains a slash.
    static func resolve(_ name: String, path: String?) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for dir in (path ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static func run(_ argv: [String], environment: [String: String], timeout: Duration,
                    maxOutput: Int = 16 << 10) async -> Result {
        guard let exe = resolve(argv[0], path: environment["PATH"]) else {
            return Result(status: 127, timedOut: false, output: "\(argv[0]): not found in PATH")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: exe)
        process.arguments = Array(argv.dropFirst())
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let output = Mutex<[UInt8]>([])
        let reader = Thread {
            let handle = pipe.fileHandleForReading
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                output.withLock { o in if o.count < maxOutput { o += chunk.prefix(maxOutput - o.count) } }
            }
        }
        let exited = Mutex(false)
        do {
            try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, any Error>) in
                process.terminationHandler = { _ in
                    exited.withLock { $0 = true }
                    cont.resume()
                }
                do {
                    try process.run()
                    reader.start()
                } catch {
                    process.terminationHandler = nil
                    cont.resume(throwing: error)
                }
                let pid = process.processIdentifier
                if pid > 0 {
                    Thread.detachNewThread {
                        let deadline = ContinuousClock.now + timeout
                        while ContinuousClock.now < deadline {
                            if exited.withLock({ $0 }) { return }
                            Thread.sleep(forTimeInterval: 0.05)
                        }
                        if !exited.withLock({ $0 }) { kill(pid, SIGKILL) }
                    }
                }
            }
        } catch {
            return Result(status: 126, timedOut: false, output: "cannot start \(exe): \(error.localizedDescription)")
        }
        try? pipe.fileHandleForWriting.close()
        // The reader ends when every writer (the child and its children) closed the pipe.
        let deadline = ContinuousClock.now + .seconds(2)
        while !reader.isFinished, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        let timedOut = process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL
        return Result(status: process.terminationStatus, timedOut: timedOut,
                      output: String(decoding: output.withLock { $0 }, as: UTF8.self))
    }
}
