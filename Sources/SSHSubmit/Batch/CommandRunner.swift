import Crypto
import Foundation
import Subprocess
import Synchronization

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// Where a batch driver's commands run: over SSH on a login node (`SSHCommandRunner`, the usual case) or on this
/// machine (`LocalCommandRunner`, for a non-root head-node deployment without SSH). The drivers are the same.
///
/// Commands are argument vectors (`RemoteCommand`); relative paths are relative to the account's home directory in
/// both modes.
public protocol CommandRunner: Sendable {
    /// `user@host:port`, or `local` — for messages and metrics labels.
    var target: String { get }
    /// Runs a command. A non-zero exit is a result, not an error; errors are transport failures, and
    /// `SSHError.commandMayHaveRun` says whether the command could have started.
    func run(_ command: RemoteCommand) async throws(SSHError) -> ExecResult
    /// Stores `data` as `<directory>/<prefix><sha256 hex16><suffix>` (atomically; skipped when already there with
    /// that size and mode) and returns the path.
    func install(_ data: [UInt8], directory: String, prefix: String, suffix: String, mode: UInt32) async throws(SSHError) -> String
    /// `mkdir -p`.
    func makeDirectories(_ path: String) async throws(SSHError)
}

/// Runs commands over a pooled SSH connection (`SSHPool`): each command is one channel, files go over SFTP.
public struct SSHCommandRunner: CommandRunner {
    public let pool: SSHPool

    public init(pool: SSHPool) { self.pool = pool }

    public var target: String { pool.endpoint.description }

    public func run(_ command: RemoteCommand) async throws(SSHError) -> ExecResult {
        try await pool.exec(command)
    }

    public func install(_ data: [UInt8], directory: String, prefix: String, suffix: String, mode: UInt32) async throws(SSHError) -> String {
        try await pool.withConnection { (c: SSHConnection) async throws(SSHError) -> String in
            try await c.uploadContentAddressed(data, directory: directory, prefix: prefix, suffix: suffix, mode: mode).path
        }
    }

    public func makeDirectories(_ path: String) async throws(SSHError) {
        try await pool.withConnection { (c: SSHConnection) async throws(SSHError) in
            try await c.createDirectories(path, mode: 0o700)
        }
    }
}

extension SSHError.Code {
    /// A local command could not be started (LOCAL mode).
    public static let localSpawn = SSHError.Code("local.spawn-failed")
}

/// Runs the drivers' commands on this machine with swift-subprocess: the head-node deployment, where the agent runs
/// as the submitting user next to the batch system's client commands.
public struct LocalCommandRunner: CommandRunner {
    /// Relative paths (in commands and `install`) are relative to this directory: the user's home by default.
    public let baseDirectory: String
    /// Prepended to every command (e.g. `["runuser", "-u", "pilot", "--"]` when the agent runs as root); empty normally.
    public let prefix: [String]
    public let defaultTimeout: Duration
    public let maxOutputBytes: Int

    public init(baseDirectory: String? = nil, prefix: [String] = [], defaultTimeout: Duration = .seconds(300),
                maxOutputBytes: Int = 64 << 20) {
        self.baseDirectory = baseDirectory ?? FileManager.default.homeDirectoryForCurrentUser.path
        self.prefix = prefix
        self.defaultTimeout = defaultTimeout
        self.maxOutputBytes = maxOutputBytes
    }

    public var target: String { "local" }

    public func run(_ command: RemoteCommand) async throws(SSHError) -> ExecResult {
        let argv = prefix + command.argv
        guard let first = argv.first, !first.isEmpty else {
            throw SSHError(.invalidArgument, "the command's argument vector is empty", endpoint: target, retryable: false)
        }
        var updates: [Environment.Key: String?] = [:]
        for (name, value) in command.environment {
            guard ShellQuote.isValidName(name), let key = Environment.Key(rawValue: name) else {
                throw SSHError(.invalidArgument, "'\(name)' is not a valid environment variable name", endpoint: target, retryable: false)
            }
            updates[key] = value
        }
        var dir = baseDirectory
        if let wd = command.workingDirectory { dir = wd.hasPrefix("/") ? wd : "\(baseDirectory)/\(wd)" }
        var options = PlatformOptions()
        options.createSession = true  // a timeout tears down the command and what it started
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(2))]
        let config = Configuration(
            executable: first.contains("/") ? .path(FilePath(first)) : .name(first), arguments: Arguments(Array(argv.dropFirst())),
            environment: .inherit.updating(updates), workingDirectory: FilePath(dir), platformOptions: options)
        let stdin = command.stdin
        let limit = maxOutputBytes
        let timeout = command.timeout ?? defaultTimeout
        enum Outcome: Sendable { case done(ExecResult), timedOut }
        do {
            let outcome = try await withThrowingTaskGroup(of: Outcome.self) { group in
                group.addTask {
                    let r = try await Subprocess.run(config, input: .array(stdin), output: .bytes(limit: limit), error: .bytes(limit: limit))
                    switch r.terminationStatus {
                    case .exited(let code):
                        return .done(ExecResult(exitStatus: Int32(code), exitSignal: nil, stdout: r.standardOutput, stderr: r.standardError))
                    case .signaled(let sig):
                        return .done(ExecResult(exitStatus: -1, exitSignal: Self.signalName(Int32(sig)), stdout: r.standardOutput,
                                                stderr: r.standardError))
                    }
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return .timedOut
                }
                let first = try await group.next()!
                group.cancelAll()
                return first
            }
            switch outcome {
            case .done(let r): return r
            case .timedOut:
                throw SSHError(.timeout, "\(first) did not finish within \(timeout)", endpoint: target, retryable: true,
                               commandMayHaveRun: true)
            }
        } catch let e as SSHError {
            throw e
        } catch is CancellationError {
            throw SSHError(.cancelled, "cancelled by the caller", endpoint: target, retryable: true, commandMayHaveRun: true)
        } catch {
            // Spawn failures (no such executable, permission) happen before the command could run.
            let text = "\(error)"
            let lower = text.lowercased()
            let spawnFailed = ["spawn", "executable", "no such file", "not found", "permission denied"].contains { lower.contains($0) }
            throw SSHError(spawnFailed ? .localSpawn : .internalError, "\(first): \(text)", endpoint: target,
                           retryable: !spawnFailed, commandMayHaveRun: !spawnFailed)
        }
    }

    public func install(_ data: [UInt8], directory: String, prefix: String, suffix: String, mode: UInt32) async throws(SSHError) -> String {
        let digest = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        let path = "\(directory)/\(prefix)\(digest.prefix(16))\(suffix)"
        let full = absolute(path)
        let fm = FileManager.default
        if let attrs = try? fm.attributesOfItem(atPath: full), (attrs[.size] as? NSNumber)?.intValue == data.count,
           (attrs[.posixPermissions] as? NSNumber)?.uint32Value == mode {
            return path
        }
        try await makeDirectories(directory)
        let temp = "\(full).apf-tmp-\(UInt64.random(in: 0...UInt64.max))"
        guard fm.createFile(atPath: temp, contents: Data(data), attributes: [.posixPermissions: 0o600]) else {
            throw SSHError(.internalError, "cannot write \(temp)", endpoint: target, retryable: false)
        }
        do {
            try fm.setAttributes([.posixPermissions: mode], ofItemAtPath: temp)
            if rename(temp, full) != 0 { throw SSHError(.internalError, "cannot rename \(temp) to \(full)", endpoint: target, retryable: false) }
        } catch {
            try? fm.removeItem(atPath: temp)
            throw SSHError(.internalError, "cannot install \(full): \(error)", endpoint: target, retryable: false)
        }
        return path
    }

    public func makeDirectories(_ path: String) async throws(SSHError) {
        do {
            try FileManager.default.createDirectory(atPath: absolute(path), withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw SSHError(.internalError, "cannot create \(path): \(error)", endpoint: target, retryable: false)
        }
    }

    func absolute(_ path: String) -> String { path.hasPrefix("/") ? path : "\(baseDirectory)/\(path)" }

    static func signalName(_ sig: Int32) -> String {
        switch sig {
        case SIGKILL: return "KILL"
        case SIGTERM: return "TERM"
        case SIGINT: return "INT"
        case SIGHUP: return "HUP"
        case SIGSEGV: return "SEGV"
        case SIGABRT: return "ABRT"
        default: return "\(sig)"
        }
    }
}
