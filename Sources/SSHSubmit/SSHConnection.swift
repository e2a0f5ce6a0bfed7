public import Logging
import Crypto
import Foundation
import Synchronization

/// One authenticated SSH connection (a libssh2 session on its own thread). Many commands may run on it at once, as
/// separate channels, up to `SSHOptions.channelBudget`; more wait their turn. Most callers use `SSHPool`, which
/// reconnects; a connection that died stays dead.
public final class SSHConnection: Sendable {
    public let endpoint: SSHEndpoint
    public let options: SSHOptions
    let loop: SessionLoop
    /// The gateway connection for a jump-host path; kept alive as long as this connection.
    let gateway: SSHConnection?

    private init(endpoint: SSHEndpoint, options: SSHOptions, loop: SessionLoop, gateway: SSHConnection?) {
        self.endpoint = endpoint
        self.options = options
        self.loop = loop
        self.gateway = gateway
    }

    /// Connects, verifies the host key against `knownHosts` (unknown or changed keys are refused before anything is
    /// sent) and authenticates with `identity`. With `gateway`, the TCP stream is a `direct-tcpip` channel through
    /// that connection, so `endpoint.host` is resolved and reached by the gateway.
    public static func connect(
        to endpoint: SSHEndpoint, identity: SSHIdentity, knownHosts: KnownHosts, options: SSHOptions = SSHOptions(),
        via gateway: SSHConnection? = nil, logger: Logger
    ) async throws(SSHError) -> SSHConnection {
        let gateKey = "\(gateway.map { "\($0.endpoint)>" } ?? "")\(endpoint.host):\(endpoint.port)"
        return try await DialGate.shared.withSlot(for: gateKey) { () async throws(SSHError) in
            try await establish(endpoint, identity, knownHosts, options, gateway, logger)
        }
    }

    private static func establish(
        _ endpoint: SSHEndpoint, _ identity: SSHIdentity, _ knownHosts: KnownHosts, _ options: SSHOptions,
        _ gateway: SSHConnection?, _ logger: Logger
    ) async throws(SSHError) -> SSHConnection {
        var tunnelFD: Int32?
        if let gateway {
            tunnelFD = try await gateway.openTunnel(host: endpoint.host, port: endpoint.port)
        }
        let loop = SessionLoop(endpoint: endpoint, options: options, logger: logger)
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (cont: CheckedContinuation<Result<Void, SSHError>, Never>) in
                loop.start(identity: identity, knownHosts: knownHosts, tunnelFD: tunnelFD) { cont.resume(returning: $0) }
            }
        } onCancel: {
            Task { await loop.close(grace: .zero) }
        }
        try result.get()
        logger.debug("SSH session established", metadata: ["endpoint": "\(endpoint)"])
        return SSHConnection(endpoint: endpoint, options: options, loop: loop, gateway: gateway)
    }

    /// Whether the session is still usable.
    public var isAlive: Bool { loop.state == .open }
    /// Commands and transfers submitted and not yet finished.
    public var load: Int { loop.load }

    // MARK: - Commands

    /// Runs a command: its argument vector is quoted for the remote POSIX shell, so every byte arrives as given.
    /// A non-zero exit is a result, not an error; use `ExecResult.check`.
    public func exec(_ command: RemoteCommand) async throws(SSHError) -> ExecResult {
        let line = try command.rendered()
        let deadline = ContinuousClock.now + (command.timeout ?? options.commandTimeout)
        let maxOutput = options.maxOutputBytes
        let stdin = command.stdin
        return try await run { ExecOperation(command: line, stdin: stdin, maxOutput: maxOutput, deadline: deadline, completion: $0) }
    }

    public func exec(_ argv: String..., timeout: Duration? = nil) async throws(SSHError) -> ExecResult {
        try await exec(RemoteCommand(argv, timeout: timeout))
    }

    /// Submits an operation and waits for its answer; cancelling the task cancels the operation.
    func run<T: Sendable>(_ make: (Completion<T>) -> LoopOperation) async throws(SSHError) -> T {
        if Task.isCancelled { throw SSHError(.cancelled, "cancelled by the caller", retryable: true) }
        let box = CancelBox()
        let loop = self.loop
        let endpoint = self.endpoint
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { (cont: CheckedContinuation<Result<T, SSHError>, Never>) in
                let op = make(Completion { cont.resume(returning: $0) })
                guard let id = loop.submit(op) else {
                    cont.resume(returning: .failure(SSHError(.sessionLost, "the SSH session is closed",
                                                             endpoint: endpoint.description, retryable: true)))
                    return
                }
                if box.submitted(id) { loop.cancel(id) }
            }
        } onCancel: {
            if let id = box.cancel() { loop.cancel(id) }
        }
        return try result.get()
    }

    // MARK: - Files (SFTP)

    /// File attributes, or nil when the path does not exist.
    public func stat(_ path: String) async throws(SSHError) -> RemoteFileInfo? {
        guard case .info(let info) = try await sftp(.stat(path)) else { return nil }
        return info
    }

    /// Creates a directory and its missing parents (like `mkdir -p`).
    public func createDirectories(_ path: String, mode: UInt32 = 0o755) async throws(SSHError) {
        var prefix = path.hasPrefix("/") ? "/" : ""
        for part in path.split(separator: "/") {
            prefix += (prefix.isEmpty || prefix.hasSuffix("/") ? "" : "/") + part
            if let info = try await stat(prefix) {
                guard info.isDirectory else {
                    throw SSHError(.sftp, "\(prefix) exists and is not a directory", endpoint: endpoint.description,
                                   retryable: false)
                }
                continue
            }
            do throws(SSHError) {
                _ = try await sftp(.mkdir(prefix, mode: mode))
            } catch {
                // Someone else may have created it in the meantime.
                guard let info = try await stat(prefix), info.isDirectory else { throw error }
            }
        }
    }

    /// Writes a file atomically: to a temporary name in the same directory (mode 0600 meanwhile), fsync, set `mode`,
    /// then rename over `path`. Readers see the old file or the whole new one, never a part.
    public func upload(_ data: [UInt8], to path: String, mode: UInt32 = 0o644) async throws(SSHError) {
        let (dir, base) = Self.split(path)
        let temp = "\(dir)/.\(base).apf-tmp-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
        do throws(SSHError) {
            _ = try await sftp(.writeNew(temp, data: data, mode: mode))
            do throws(SSHError) {
                _ = try await sftp(.rename(temp, to: path))
            } catch where error.code == .sftp {
                // SFTP v3 (OpenSSH) refuses to rename over an existing file, and libssh2 1.10 cannot send
                // posix-rename@openssh.com; rename(2) via mv is atomic within one directory.
                try await exec(RemoteCommand(["mv", "-f", "--", temp, path])).check("mv over \(path)")
            }
        } catch {
            _ = try? await sftp(.unlink(temp))
            throw error
        }
    }

    /// Uploads `data` under a name derived from its SHA-256 (`<directory>/<prefix><hex16><suffix>`) unless a file of
    /// that name and size is already there. Returns the path and whether it was uploaded now.
    public func uploadContentAddressed(
        _ data: [UInt8], directory: String, prefix: String, suffix: String = "", mode: UInt32 = 0o755
    ) async throws(SSHError) -> (path: String, uploaded: Bool) {
        let digest = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        let path = "\(directory)/\(prefix)\(digest.prefix(16))\(suffix)"
        if let info = try await stat(path), info.isRegularFile, info.size == UInt64(data.count),
           info.permissions == mode {
            return (path, false)
        }
        try await createDirectories(directory, mode: 0o700)
        try await upload(data, to: path, mode: mode)
        return (path, true)
    }

    /// Reads a whole remote file, refusing files larger than `maxBytes`.
    public func download(_ path: String, maxBytes: Int = 64 << 20) async throws(SSHError) -> [UInt8] {
        guard case .data(let bytes) = try await sftp(.read(path, maxBytes: maxBytes)) else { return [] }
        return bytes
    }

    public func remove(_ path: String) async throws(SSHError) {
        _ = try await sftp(.unlink(path))
    }

    private func sftp(_ request: SFTPRequest) async throws(SSHError) -> SFTPReply {
        let deadline = ContinuousClock.now + options.commandTimeout
        return try await run { SFTPOperation(request, deadline: deadline, completion: $0) }
    }

    static func split(_ path: String) -> (String, String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let dir = String(path[..<slash])
        return (dir.isEmpty ? "/" : dir, String(path[path.index(after: slash)...]))
    }

    // MARK: - Tunnels and shutdown

    func openTunnel(host: String, port: Int) async throws(SSHError) -> Int32 {
        let deadline = ContinuousClock.now + options.connectTimeout
        return try await run { TunnelOperation(host: host, port: port, deadline: deadline, completion: $0) }
    }

    /// Lets running commands finish (at most `grace`), then disconnects.
    public func close(grace: Duration = .seconds(30)) async {
        await loop.close(grace: grace)
    }
}

/// Meets an operation ID (from the submitting closure) and a cancellation (from the handler), in either order.
final class CancelBox: Sendable {
    private let state = Mutex<(id: Int?, cancelled: Bool)>((nil, false))
    /// Records the ID; true when the task was already cancelled, so the caller must cancel the operation now.
    func submitted(_ id: Int) -> Bool { state.withLock { $0.id = id; return $0.cancelled } }
    /// Records the cancellation; returns the ID to cancel if the operation was already submitted.
    func cancel() -> Int? { state.withLock { $0.cancelled = true; return $0.id } }
}
