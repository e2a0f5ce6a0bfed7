public import Logging
import Synchronization

/// Keeps one SSH connection to a (target, identity) pair open and shares it: every command is a channel on it, at
/// most `SSHOptions.channelBudget` at once. A dead connection (EOF, keepalive timeout, transport error) is replaced
/// on the next request; failed connects back off exponentially (capped), and while backing off requests fail at
/// once with `backingOff`, so a sick host costs nothing. Idle connections close themselves.
public final class SSHPool: Sendable {
    public let endpoint: SSHEndpoint
    public let identityID: String
    let identity: SSHIdentity
    /// Where host keys come from: a file read on every connect, or a fixed set.
    enum HostKeys: Sendable {
        case file(String)
        case fixed(KnownHosts)
    }
    let hostKeys: HostKeys
    let options: SSHOptions
    let gateway: SSHPool?
    let logger: Logger

    private struct State {
        var connection: SSHConnection?
        var connecting: Task<Result<SSHConnection, SSHError>, Never>?
        var failures = 0
        var retryAt: ContinuousClock.Instant?
        var lastError: SSHError?
        var shutDown = false
        var connects = 0
    }
    private let state = Mutex(State())

    /// - Parameters:
    ///   - knownHostsPath: read on every connect, so a newly trusted key takes effect without a restart.
    ///   - gateway: a pool to the jump host; this pool's connections are tunnelled through its connection.
    public convenience init(
        endpoint: SSHEndpoint, identity: SSHIdentity, knownHostsPath: String, options: SSHOptions = SSHOptions(),
        gateway: SSHPool? = nil, logger: Logger
    ) {
        self.init(endpoint: endpoint, identity: identity, hostKeys: .file(knownHostsPath), options: options,
                  gateway: gateway, logger: logger)
    }

    public convenience init(
        endpoint: SSHEndpoint, identity: SSHIdentity, knownHosts: KnownHosts, options: SSHOptions = SSHOptions(),
        gateway: SSHPool? = nil, logger: Logger
    ) {
        self.init(endpoint: endpoint, identity: identity, hostKeys: .fixed(knownHosts), options: options,
                  gateway: gateway, logger: logger)
    }

    init(endpoint: SSHEndpoint, identity: SSHIdentity, hostKeys: HostKeys, options: SSHOptions, gateway: SSHPool?,
         logger: Logger) {
        self.endpoint = endpoint
        self.identity = identity
        self.identityID = identity.id
        self.hostKeys = hostKeys
        self.options = options
        self.gateway = gateway
        var logger = logger
        logger[metadataKey: "endpoint"] = "\(endpoint)"
        self.logger = logger
    }

    public enum Health: Sendable, Equatable {
        case connected
        case idle
        case backingOff(until: ContinuousClock.Instant, reason: String)
        case shutDown
    }

    public var health: Health {
        state.withLock { s in
            if s.shutDown { return .shutDown }
            if let c = s.connection, c.isAlive { return .connected }
            if let until = s.retryAt, until > .now { return .backingOff(until: until, reason: s.lastError?.description ?? "") }
            return .idle
        }
    }

    /// Successful connects so far (a reconnect counts again); for tests and status.
    public var connectCount: Int { state.withLock { $0.connects } }

    // MARK: - Work

    /// Runs a command on the pooled connection. A command that certainly did not start because the connection had
    /// died is retried once on a fresh connection; a command that may have run is never repeated.
    public func exec(_ command: RemoteCommand) async throws(SSHError) -> ExecResult {
        var attempt = 0
        while true {
            attempt += 1
            let connection = try await connection()
            do {
                return try await connection.exec(command)
            } catch {
                guard error.code == .sessionLost, !error.commandMayHaveRun, attempt == 1 else { throw error }
                drop(connection)
            }
        }
    }

    public func exec(_ argv: String..., timeout: Duration? = nil) async throws(SSHError) -> ExecResult {
        try await exec(RemoteCommand(argv, timeout: timeout))
    }

    /// Runs `body` with the pooled connection (for SFTP transfers and multi-step work).
    public func withConnection<T: Sendable>(
        _ body: (SSHConnection) async throws(SSHError) -> T
    ) async throws(SSHError) -> T {
        let connection = try await connection()
        return try await body(connection)
    }

    /// The live connection, connecting (once, shared by all waiters) when there is none.
    public func connection() async throws(SSHError) -> SSHConnection {
        enum Next { case ready(SSHConnection), wait(Task<Result<SSHConnection, SSHError>, Never>), fail(SSHError) }
        let next = state.withLock { s -> Next in
            if s.shutDown { return .fail(SSHError(.shutdown, "the SSH pool is shut down", endpoint: endpoint.description, retryable: false)) }
            if let c = s.connection {
                if c.isAlive { return .ready(c) }
                s.connection = nil
            }
            if let task = s.connecting { return .wait(task) }
            if let until = s.retryAt, until > .now, let last = s.lastError {
                let left = ContinuousClock.now.duration(to: until)
                return .fail(SSHError(.backingOff, "not reconnecting for another \(left.secondsText) after: \(last.message)",
                                      endpoint: endpoint.description, libssh2Code: last.libssh2Code,
                                      retryable: last.isRetryable))
            }
            let task = Task { await self.dial() }
            s.connecting = task
            return .wait(task)
        }
        switch next {
        case .ready(let c): return c
        case .fail(let e): throw e
        case .wait(let task): return try await Self.waitCancellably(for: task).get()
        }
    }

    /// The dial is shared by every waiter, so one waiter's cancellation must not cancel it; that waiter stops
    /// waiting at once instead (a handshake to a loaded host can take seconds).
    private static func waitCancellably(
        for task: Task<Result<SSHConnection, SSHError>, Never>
    ) async -> Result<SSHConnection, SSHError> {
        let once = FirstAnswer<Result<SSHConnection, SSHError>>()
        Task { once.resume(with: await task.value) }
        return await once.value {
            .failure(SSHError(.cancelled, "cancelled by the caller while connecting", retryable: true))
        }
    }

    private func dial() async -> Result<SSHConnection, SSHError> {
        let result: Result<SSHConnection, SSHError>
        do throws(SSHError) {
            let knownHosts: KnownHosts
            switch hostKeys {
            case .fixed(let set): knownHosts = set
            case .file(let path): knownHosts = try KnownHosts.load(path: path)
            }
            let via = try await gateway?.connection()
            result = .success(try await connectRetryingDroppedBanners(knownHosts: knownHosts, via: via))
        } catch {
            result = .failure(error)
        }
        let shutDown = state.withLock { s -> Bool in
            s.connecting = nil
            switch result {
            case .success(let c):
                s.connection = c
                s.failures = 0
                s.retryAt = nil
                s.lastError = nil
                s.connects += 1
            case .failure(let e):
                s.failures += 1
                s.lastError = e
                s.retryAt = .now + backoff(failures: s.failures)
            }
            return s.shutDown
        }
        switch result {
        case .success(let c):
            if shutDown { await c.close(grace: .zero) }
            logger.info("SSH connected")
        case .failure(let e):
            logger.warning("SSH connect failed", metadata: ["error": "\(e)"])
        }
        return result
    }

    /// A server over its MaxStartups closes new connections before the banner; other clients' bursts can cause
    /// that even when we stay under the limit, so such a failure is retried twice after a short random pause.
    private func connectRetryingDroppedBanners(knownHosts: KnownHosts, via: SSHConnection?) async throws(SSHError) -> SSHConnection {
        var attempt = 0
        while true {
            attempt += 1
            do throws(SSHError) {
                return try await SSHConnection.connect(to: endpoint, identity: identity, knownHosts: knownHosts,
                                                       options: options, via: via, logger: logger)
            } catch {
                let dropped = error.code == .handshakeFailed
                    && [-2, -13, -43].contains(error.libssh2Code ?? 0)
                guard dropped, attempt < 3, !Task.isCancelled else { throw error }
                try? await Task.sleep(for: .milliseconds(Int.random(in: 50...250)))
            }
        }
    }

    /// Capped exponential back-off with ±20 % jitter, so many pools do not reconnect in lockstep.
    private func backoff(failures: Int) -> Duration {
        let exp = options.reconnectBaseDelay * (1 << min(failures - 1, 20))
        let capped = min(exp, options.reconnectMaxDelay)
        return capped * Double.random(in: 0.8...1.2)
    }

    private func drop(_ connection: SSHConnection) {
        state.withLock { s in
            if s.connection === connection { s.connection = nil }
        }
    }

    /// Stops accepting work, lets running commands finish (at most `grace`), closes the connection.
    public func shutdown(grace: Duration = .seconds(30)) async {
        let (connection, task) = state.withLock { s -> (SSHConnection?, Task<Result<SSHConnection, SSHError>, Never>?) in
            s.shutDown = true
            defer { s.connection = nil }
            return (s.connection, s.connecting)
        }
        if let task, case .success(let c) = await task.value { await c.close(grace: grace) }
        await connection?.close(grace: grace)
    }
}

/// Pools by (host, port, user, identity, jump path): the single place a process gets SSH connections from.
public final class SSHPools: Sendable {
    public struct Key: Hashable, Sendable {
        public var endpoint: SSHEndpoint
        public var identityID: String
        public var via: [SSHEndpoint]
    }
    private let pools = Mutex<[Key: SSHPool]>([:])
    private let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    /// The pool for `endpoint` as `identity`; `jump` lists gateways outermost first, each with its own identity.
    public func pool(
        for endpoint: SSHEndpoint, identity: SSHIdentity, knownHostsPath: String, options: SSHOptions = SSHOptions(),
        jump: [(SSHEndpoint, SSHIdentity)] = []
    ) -> SSHPool {
        var gateway: SSHPool?
        var path: [SSHEndpoint] = []
        for (hop, hopIdentity) in jump {
            gateway = pool(key: Key(endpoint: hop, identityID: hopIdentity.id, via: path)) {
                SSHPool(endpoint: hop, identity: hopIdentity, knownHostsPath: knownHostsPath, options: options,
                        gateway: gateway, logger: logger)
            }
            path.append(hop)
        }
        return pool(key: Key(endpoint: endpoint, identityID: identity.id, via: path)) {
            SSHPool(endpoint: endpoint, identity: identity, knownHostsPath: knownHostsPath, options: options,
                    gateway: gateway, logger: logger)
        }
    }

    private func pool(key: Key, make: () -> SSHPool) -> SSHPool {
        pools.withLock { p in
            if let existing = p[key] { return existing }
            let new = make()
            p[key] = new
            return new
        }
    }

    /// Shuts every pool down, innermost paths first so tunnels close before their gateways.
    public func shutdown(grace: Duration = .seconds(30)) async {
        let all = pools.withLock { p -> [SSHPool] in
            defer { p = [:] }
            return p.sorted { $0.key.via.count > $1.key.via.count }.map(\.value)
        }
        for pool in all { await pool.shutdown(grace: grace) }
    }
}

extension Duration {
    /// "1.5 s": for messages.
    var secondsText: String {
        let ms = milliseconds
        return ms % 1000 == 0 ? "\(ms / 1000) s" : "\(Double(ms) / 1000) s"
    }
}
