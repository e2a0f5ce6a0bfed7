import AuthProfiles
import CLibSSH2
import Foundation
import Glibc
import Logging
import Synchronization

/// Linux POLLRDHUP (peer closed its end); Glibc exports it only under _GNU_SOURCE.
private let pollRDHUP: Int16 = 0x2000

/// What one step of an operation achieved.
enum StepResult {
    /// Waiting for the socket (libssh2 said EAGAIN) or for another operation.
    case blocked
    /// Something moved; stepping again may move more.
    case progressed
    /// Done: the waiter has its answer and every libssh2 resource of the operation is released.
    case finished
    /// The server refused a channel because enough are open (MaxSessions): wait for a free slot and retry.
    case requeue
}

/// One unit of work on a session, driven by the session's thread as a non-blocking state machine.
///
/// `@unchecked Sendable`: an operation is built by the caller, handed to the loop through its locked inbox, and from
/// then on touched only on the loop's thread.
class LoopOperation: @unchecked Sendable {
    var id = 0
    var deadline: ContinuousClock.Instant?
    /// Whether the operation occupies a session channel (counted against the channel budget).
    var needsSlot: Bool { false }
    var holdsSlot = false
    /// Set once the waiter has been answered early (timeout, cancel); the operation is only cleaning up.
    var aborted = false

    func step(_ loop: SessionLoop) -> StepResult { .finished }
    /// Gives the waiter `error` now and switches to releasing resources; the loop keeps stepping until `.finished`.
    func abort(_ error: SSHError, _ loop: SessionLoop) {}
    /// Extra descriptor the loop should poll for this operation (tunnels).
    var pollDescriptor: pollfd? { nil }
}

/// Owns one libssh2 session and the OS thread that every libssh2 call for it runs on.
///
/// The thread connects, verifies the host key and authenticates, then runs an event loop: operations (exec
/// channels, SFTP requests, tunnels) are non-blocking state machines stepped in turn; when none can move, the
/// thread sleeps in `poll()` on the socket, a wake-up eventfd and any tunnel descriptors. This multiplexes up to
/// `channelBudget` channels on one connection with one thread, and keeps blocking calls off Swift's cooperative pool.
///
/// libssh2 rules the loop enforces:
/// - one channel open (or SFTP start) in flight per session (`sessionLockOwner`): libssh2 keeps its state in the
///   session;
/// - while a packet is half-sent (`LIBSSH2_SESSION_BLOCK_OUTBOUND`), only the operation that started it may call
///   libssh2 (`sendOwner`); anybody else would get LIBSSH2_ERROR_BAD_USE;
/// - keepalives are sent only when no operation is active, for the same reason.
final class SessionLoop: @unchecked Sendable {
    // Shared with other threads, under the lock.
    private struct Inbox {
        var submitted: [LoopOperation] = []
        var cancelled: [Int] = []
        var closeRequested = false
        var closeDeadline: ContinuousClock.Instant?
        var closeWaiters: [CheckedContinuation<Void, Never>] = []
        var state: State = .connecting
        var nextID = 1
        var load = 0
    }
    enum State: Equatable { case connecting, open, closing, closed }
    private let inbox = Mutex(Inbox())
    private let wakeFD: Int32

    // Thread-confined from here on.
    let endpoint: SSHEndpoint
    let options: SSHOptions
    let logger: Logger
    private(set) var session: OpaquePointer?
    private var socketFD: Int32 = -1
    private let stats: UnsafeMutablePointer<cssh2_io_stats>
    /// Read buffer shared by the operations of this session (they run one at a time on its thread).
    let scratch = UnsafeMutableBufferPointer<CChar>.allocate(capacity: 256 << 10)
    private var active: [LoopOperation] = []
    private var waiting: [LoopOperation] = []
    private(set) var budget: Int
    private var slotsInUse = 0
    var sessionLockOwner: Int?
    private var sendOwner: Int?
    private var failure: SSHError?
    private var lastBusy = ContinuousClock.now
    private var nextKeepalive: ContinuousClock.Instant?
    // SFTP subsystem, shared by the SFTP operations of this session, which run one at a time.
    var sftp: OpaquePointer?
    var sftpStarting: Int?
    var sftpOwner: Int?
    var sftpChannelSlot = false

    init(endpoint: SSHEndpoint, options: SSHOptions, logger: Logger) {
        self.endpoint = endpoint
        self.options = options
        self.logger = logger
        self.budget = max(1, options.channelBudget)
        self.wakeFD = cssh2_eventfd()
        self.stats = .allocate(capacity: 1)
        self.stats.initialize(to: cssh2_io_stats(last_recv_ns: 0, bytes_in: 0, bytes_out: 0))
    }

    deinit {
        Glibc.close(wakeFD)
        stats.deallocate()
        scratch.deallocate()
    }

    // MARK: - API used from any thread

    var state: State { inbox.withLock { $0.state } }
    /// Operations submitted and not yet finished.
    var load: Int { inbox.withLock { $0.load } }

    /// Starts the thread: it connects and authenticates, reports through `connected`, then serves operations.
    func start(
        identity: SSHIdentity, knownHosts: KnownHosts, tunnelFD: Int32?,
        connected: @escaping @Sendable (Result<Void, SSHError>) -> Void
    ) {
        let thread = Thread { [self] in
            let result = Result { () throws(SSHError) in
                try self.establish(identity: identity, knownHosts: knownHosts, tunnelFD: tunnelFD)
            }
            switch result {
            case .success:
                let stillWanted = inbox.withLock { s -> Bool in
                    if s.closeRequested { return false }
                    s.state = .open
                    return true
                }
                connected(stillWanted ? .success(()) : .failure(SSHError(.cancelled, "connect was cancelled", retryable: true)))
                if stillWanted { runLoop() }
                teardown(sendDisconnect: stillWanted)
            case .failure(let error):
                teardown(sendDisconnect: false)
                connected(.failure(error.at(endpoint.description)))
            }
        }
        thread.name = "ssh \(endpoint)"
        thread.start()
    }

    /// Hands an operation to the loop, or fails it at once when the session is closing or gone.
    func submit(_ op: LoopOperation) -> Int? {
        let accepted = inbox.withLock { s -> Int? in
            guard s.state == .open, !s.closeRequested else { return nil }
            op.id = s.nextID
            s.nextID += 1
            s.submitted.append(op)
            s.load += 1
            return op.id
        }
        if accepted != nil { wake() }
        return accepted
    }

    func cancel(_ id: Int) {
        inbox.withLock { $0.cancelled.append(id) }
        wake()
    }

    /// Stops accepting work, lets running operations finish (bounded by `grace`), then disconnects.
    func close(grace: Duration) async {
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            let done = inbox.withLock { s -> Bool in
                if s.state == .closed { return true }
                s.closeRequested = true
                s.closeDeadline = min(s.closeDeadline ?? .now + grace, .now + grace)
                s.closeWaiters.append(cont)
                return false
            }
            if done { cont.resume() } else { wake() }
        }
    }

    private func wake() {
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    // MARK: - Connect, host key, authentication (on the thread, before the loop)

    private func establish(identity: SSHIdentity, knownHosts: KnownHosts, tunnelFD: Int32?) throws(SSHError) {
        guard LibSSH2.initialised else {
            throw SSHError(.internalError, "libssh2_init failed", retryable: false)
        }
        let userTimeout: Duration? = options.keepaliveInterval > .zero
            ? options.keepaliveInterval * options.keepaliveCountMax : nil
        if let tunnelFD {
            socketFD = tunnelFD
        } else {
            socketFD = try TCPSocket.connect(host: endpoint.host, port: endpoint.port, timeout: options.connectTimeout,
                                             userTimeout: userTimeout)
        }
        guard let s = cssh2_session_new(stats) else {
            throw SSHError(.internalError, "libssh2_session_init failed", retryable: true)
        }
        session = s
        libssh2_session_set_blocking(s, 0)
        let deadline = ContinuousClock.now + options.handshakeTimeout

        let known = knownHosts.knownKeyTypes(host: endpoint.host, port: endpoint.port)
        let pref = known.isEmpty ? HostKeyType.discovery : known.joined(separator: ",")
        libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY, pref)

        var rc: Int32
        repeat {
            rc = libssh2_session_handshake(s, libssh2_socket_t(socketFD))
            if rc == LIBSSH2_ERROR_EAGAIN { try waitForSocket(until: deadline, doing: "the SSH handshake") }
        } while rc == LIBSSH2_ERROR_EAGAIN
        if rc != 0 {
            let (_, msg) = LibSSH2.lastError(s)
            var hint = ""
            if rc == LIBSSH2_ERROR_KEX_FAILURE, !known.isEmpty {
                hint = "; the server offered none of the pinned host key types (\(pref)) or no algorithm libssh2 1.10 "
                    + "supports (it lacks chacha20-poly1305, AES-GCM, -etm MACs and sntrup761)"
            }
            throw SSHError(.handshakeFailed, "SSH handshake failed: \(msg)\(hint)", libssh2Code: rc,
                           retryable: rc != LIBSSH2_ERROR_KEX_FAILURE)
        }

        try verifyHostKey(s, knownHosts)
        try authenticate(s, identity, deadline: deadline)

        if options.keepaliveInterval > .zero {
            // want_reply = 0: replies would pile up unread in libssh2's packet list on an idle session; a dead peer is
            // found by TCP_USER_TIMEOUT instead, since the keepalive bytes stay unacknowledged.
            libssh2_keepalive_config(s, 0, UInt32(max(1, options.keepaliveInterval.components.seconds)))
            nextKeepalive = .now + options.keepaliveInterval
        }
    }

    private func verifyHostKey(_ s: OpaquePointer, _ knownHosts: KnownHosts) throws(SSHError) {
        var len = 0
        var type: Int32 = 0
        guard let raw = libssh2_session_hostkey(s, &len, &type) else {
            throw SSHError(.handshakeFailed, "the server sent no host key", retryable: true)
        }
        let key = raw.withMemoryRebound(to: UInt8.self, capacity: len) { Array(UnsafeBufferPointer(start: $0, count: len)) }
        let typeName = HostKeyType.name(libssh2Type: type) ?? "unknown-type-\(type)"
        let fingerprint = KnownHosts.fingerprint(key)
        let name = KnownHosts.hostName(endpoint.host, port: endpoint.port)
        switch knownHosts.verify(host: endpoint.host, port: endpoint.port, keyType: typeName, key: key) {
        case .trusted:
            return
        case .unknown:
            let line = KnownHosts.line(host: endpoint.host, port: endpoint.port, keyType: typeName, key: key)
            throw SSHError(
                .hostKeyUnknown,
                "host key of \(name) is not known: \(typeName) \(fingerprint). No credentials or commands were sent. Check the "
                    + "fingerprint with the site, then trust it with `apf-agent target trust <target> --fingerprint "
                    + "\(fingerprint)` or add this line to \(knownHosts.source): \(line)",
                retryable: false)
        case .changed(let types, let lines):
            throw SSHError(
                .hostKeyChanged,
                "HOST KEY CHANGED for \(name): it now presents \(typeName) \(fingerprint), which does not match the "
                    + "\(types.joined(separator: ", ")) key pinned at \(knownHosts.source) line(s) "
                    + "\(lines.map(String.init).joined(separator: ",")). Refused: this can be an attack. If the site "
                    + "really re-keyed, remove the old line and trust the new key explicitly.",
                retryable: false)
        case .revoked(let line):
            throw SSHError(.hostKeyRevoked,
                           "host key of \(name) (\(fingerprint)) is marked @revoked at \(knownHosts.source):\(line)",
                           retryable: false)
        }
    }

    private func authenticate(_ s: OpaquePointer, _ identity: SSHIdentity, deadline: ContinuousClock.Instant) throws(SSHError) {
        let user = endpoint.user
        let userLen = UInt(user.utf8.count)
        var rc: Int32
        repeat {
            rc = identity.privateKey.withBytes { key -> Int32 in
                let pass: [CChar]? = identity.passphrase?.withBytes { $0.map { CChar(bitPattern: $0) } + [0] }
                return key.withUnsafeBufferPointer { kb in
                    kb.withMemoryRebound(to: CChar.self) { kc in
                        if let pass {
                            return pass.withUnsafeBufferPointer { pb in
                                libssh2_userauth_publickey_frommemory(s, user, Int(userLen), nil, 0, kc.baseAddress,
                                                                      kc.count, pb.baseAddress)
                            }
                        }
                        return libssh2_userauth_publickey_frommemory(s, user, Int(userLen), nil, 0, kc.baseAddress,
                                                                     kc.count, nil)
                    }
                }
            }
            if rc == LIBSSH2_ERROR_EAGAIN { try waitForSocket(until: deadline, doing: "authentication") }
        } while rc == LIBSSH2_ERROR_EAGAIN
        guard rc != 0 else { return }
        let (_, msg) = LibSSH2.lastError(s)
        switch rc {
        case LIBSSH2_ERROR_AUTHENTICATION_FAILED, LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED:
            var text = "public key authentication as \(user) failed (\(msg)): the key is not in the account's "
                + "authorized_keys, or the server refuses its signature algorithm"
            let info = try? SSHPrivateKey.inspect(identity.privateKey, passphrase: identity.passphrase, source: identity.id)
            if info?.publicKey.rsaSHA1Only == true {
                text = "RSA/SHA-1 refused: libssh2 1.10 signs RSA keys only with ssh-rsa (SHA-1), which OpenSSH ≥ 8.8 "
                    + "refuses by default. Use an Ed25519 or ECDSA key (or a server with "
                    + "`PubkeyAcceptedAlgorithms +ssh-rsa`). libssh2 said: \(msg)"
            }
            throw SSHError(.authFailed, text, libssh2Code: rc, retryable: false)
        case LIBSSH2_ERROR_FILE, LIBSSH2_ERROR_KEYFILE_AUTH_FAILED, LIBSSH2_ERROR_METHOD_NOT_SUPPORTED:
            throw SSHError(.keyInvalid,
                           "the private key of identity '\(identity.id)' could not be used: wrong passphrase, or a "
                               + "format libssh2 cannot read (\(msg))",
                           libssh2Code: rc, retryable: false)
        default:
            throw SSHError(.authFailed, "authentication failed: \(msg)", libssh2Code: rc,
                           retryable: LibSSH2.isTransportFatal(rc))
        }
    }

    /// Blocks in poll() until the socket is ready in the direction libssh2 waits for, or the deadline passes.
    private func waitForSocket(until deadline: ContinuousClock.Instant, doing what: String) throws(SSHError) {
        if inbox.withLock({ $0.closeRequested }) {
            throw SSHError(.cancelled, "connect was cancelled during \(what)", retryable: true)
        }
        let left = ContinuousClock.now.duration(to: deadline)
        guard left > .zero else {
            throw SSHError(.timeout, "\(what) did not finish within \(options.handshakeTimeout)", retryable: true)
        }
        let dirs = libssh2_session_block_directions(session)
        var events: Int16 = 0
        if dirs & LIBSSH2_SESSION_BLOCK_INBOUND != 0 { events |= Int16(POLLIN) }
        if dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { events |= Int16(POLLOUT) }
        if events == 0 { events = Int16(POLLIN) }
        var fds = [pollfd(fd: socketFD, events: events, revents: 0), pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        _ = poll(&fds, 2, Int32(clamping: min(left.milliseconds + 1, 1000)))
        drainWake()
    }

    private func drainWake() {
        var v: UInt64 = 0
        _ = read(wakeFD, &v, 8)
    }

    // MARK: - The event loop

    private func runLoop() {
        lastBusy = .now
        while true {
            let (closeDeadline, cancels) = takeInbox()
            for id in cancels { abortOperation(id, SSHError(.cancelled, "cancelled by the caller", retryable: true)) }
            if failure != nil { break }
            if let closeDeadline {
                if active.isEmpty, waiting.isEmpty { break }
                if ContinuousClock.now >= closeDeadline {
                    for op in active + waiting where !op.aborted {
                        abortOperation(op.id, SSHError(.shutdown, "the SSH session is shutting down",
                                                       endpoint: endpoint.description, retryable: true,
                                                       commandMayHaveRun: true))
                    }
                    if ContinuousClock.now >= closeDeadline + .seconds(5) { break }
                }
            }
            admit()

            let bytesBefore = stats.pointee.bytes_in
            var progressed = false
            var index = 0
            while index < active.count {
                let op = active[index]
                if let owner = sendOwner, owner != op.id { index += 1; continue }
                var result = StepResult.blocked
                var rounds = 0
                repeat {
                    result = op.step(self)
                    rounds += 1
                    if result == .progressed { progressed = true }
                } while result == .progressed && rounds < 64 && failure == nil
                if failure != nil { break }
                if result == .finished {
                    finish(op)
                    progressed = true
                    continue  // `active[index]` is now the next operation
                }
                if result == .requeue {
                    requeue(op)
                    continue
                }
                let dirs = libssh2_session_block_directions(session)
                if dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 {
                    sendOwner = op.id
                } else if sendOwner == op.id {
                    sendOwner = nil
                }
                index += 1
            }
            if failure != nil { break }
            if stats.pointee.bytes_in != bytesBefore { progressed = true }
            if !active.isEmpty || !waiting.isEmpty { lastBusy = .now }
            if progressed { continue }

            let now = ContinuousClock.now
            if expireDeadlines(now) { continue }
            if active.isEmpty, waiting.isEmpty {
                if now - lastBusy >= options.idleTimeout {
                    logger.debug("closing idle SSH session", metadata: ["endpoint": "\(endpoint)"])
                    break
                }
                sendKeepaliveIfDue(now)
            }
            pollOnce(now)
        }
        let error = failure ?? SSHError(.shutdown, "the SSH session was closed", endpoint: endpoint.description,
                                        retryable: true)
        failEverything(error)
    }

    /// Moves new work in; returns the close deadline if a close was requested, and which operations to cancel.
    private func takeInbox() -> (ContinuousClock.Instant?, [Int]) {
        let (ops, cancels, closing) = inbox.withLock { s -> ([LoopOperation], [Int], ContinuousClock.Instant?) in
            defer { s.submitted = []; s.cancelled = [] }
            if s.closeRequested, s.state == .open { s.state = .closing }
            return (s.submitted, s.cancelled, s.closeDeadline)
        }
        waiting.append(contentsOf: ops)
        return (closing, cancels)
    }

    private func admit() {
        while let op = waiting.first {
            if op.needsSlot {
                guard slotsInUse < budget else { return }
                slotsInUse += 1
                op.holdsSlot = true
            }
            waiting.removeFirst()
            active.append(op)
        }
    }

    private func finish(_ op: LoopOperation) {
        if let i = active.firstIndex(where: { $0 === op }) { active.remove(at: i) }
        releaseSlot(op)
        if sessionLockOwner == op.id { sessionLockOwner = nil }
        if sendOwner == op.id { sendOwner = nil }
        if sftpOwner == op.id { sftpOwner = nil }
        inbox.withLock { $0.load -= 1 }
    }

    private func releaseSlot(_ op: LoopOperation) {
        if op.holdsSlot {
            op.holdsSlot = false
            slotsInUse -= 1
        }
    }

    /// Whether a refused channel open (LIBSSH2_ERROR_CHANNEL_FAILURE) should be retried: yes when other channels
    /// are open, since the server's MaxSessions is then simply below our budget.
    func canRequeueAfterRefusal() -> Bool { slotsInUse > 1 }

    /// Lowers the budget to what the server granted and queues the operation again; the connection is fine.
    private func requeue(_ op: LoopOperation) {
        let othersOpen = slotsInUse - 1
        if budget > othersOpen, othersOpen >= 1 {
            logger.info("server refused a channel; lowering channel budget",
                        metadata: ["endpoint": "\(endpoint)", "ssh.budget": "\(othersOpen)"])
            budget = othersOpen
        }
        if let i = active.firstIndex(where: { $0 === op }) { active.remove(at: i) }
        releaseSlot(op)
        if sessionLockOwner == op.id { sessionLockOwner = nil }
        waiting.insert(op, at: 0)
    }

    /// Claims the SFTP channel's slot, if one is free.
    func claimSFTPSlot() -> Bool {
        guard slotsInUse < budget else { return false }
        slotsInUse += 1
        sftpChannelSlot = true
        return true
    }

    private func abortOperation(_ id: Int, _ error: SSHError) {
        if let i = waiting.firstIndex(where: { $0.id == id }) {
            let op = waiting.remove(at: i)
            op.abort(error, self)
            inbox.withLock { $0.load -= 1 }
            return
        }
        guard let op = active.first(where: { $0.id == id }) else { return }
        abortActive(op, error)
    }

    private func abortActive(_ op: LoopOperation, _ error: SSHError) {
        if sendOwner == op.id {
            // A half-sent packet belongs to this operation; nothing else may be sent until it completes, and the
            // operation is giving up. The session cannot be used safely any more.
            sessionFailed(SSHError(.sessionLost, "an operation was abandoned in the middle of sending a packet",
                                   endpoint: endpoint.description, retryable: true, commandMayHaveRun: true))
            return
        }
        op.abort(error, self)
    }

    private func expireDeadlines(_ now: ContinuousClock.Instant) -> Bool {
        var any = false
        for op in active + waiting {
            guard let d = op.deadline, d <= now else { continue }
            op.deadline = nil
            any = true
            if op.aborted {
                // Cleaning up after an abort took too long: the peer no longer answers.
                sessionFailed(SSHError(.sessionLost, "the server did not confirm closing a channel",
                                       endpoint: endpoint.description, retryable: true, commandMayHaveRun: true))
                break
            }
            abortOperation(op.id, SSHError(.timeout, "the operation did not finish in time", endpoint: endpoint.description,
                                           retryable: true, commandMayHaveRun: true))
            if failure != nil { break }
        }
        return any
    }

    private func sendKeepaliveIfDue(_ now: ContinuousClock.Instant) {
        guard let next = nextKeepalive, now >= next, let session else { return }
        var seconds: Int32 = 0
        let rc = libssh2_keepalive_send(session, &seconds)
        if rc != 0, rc != LIBSSH2_ERROR_EAGAIN {
            sessionFailed(sessionError(rc, "sending a keepalive"))
            return
        }
        nextKeepalive = now + options.keepaliveInterval
    }

    private func pollOnce(_ now: ContinuousClock.Instant) {
        var timeout = Duration.seconds(1)
        for op in active + waiting {
            if let d = op.deadline { timeout = min(timeout, now.duration(to: d)) }
        }
        if active.isEmpty, waiting.isEmpty {
            if let k = nextKeepalive { timeout = min(timeout, now.duration(to: k)) }
            timeout = min(timeout, now.duration(to: lastBusy + options.idleTimeout))
        }
        var socketEvents = pollRDHUP
        if !active.isEmpty {
            // With nothing active nobody would consume input (an unanswered keepalive reply, say), so only watch
            // for hang-ups then; otherwise poll would report the same readable byte forever.
            socketEvents |= Int16(POLLIN)
            if libssh2_session_block_directions(session) & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 {
                socketEvents |= Int16(POLLOUT)
            }
        }
        var fds = [pollfd(fd: socketFD, events: socketEvents, revents: 0),
                   pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        for op in active { if let p = op.pollDescriptor { fds.append(p) } }
        let ms = Int32(clamping: max(0, timeout.milliseconds) + 1)
        let n = poll(&fds, nfds_t(fds.count), ms)
        if n > 0 {
            if fds[1].revents != 0 { drainWake() }
            let bad = Int16(POLLERR) | Int16(POLLHUP) | pollRDHUP | Int16(POLLNVAL)
            if fds[0].revents & bad != 0 {
                if active.isEmpty {
                    sessionFailed(SSHError(.sessionLost, "the server closed the connection",
                                           endpoint: endpoint.description, retryable: true))
                }
                // With active operations, their next libssh2 call reports the precise error.
            }
        }
    }

    // MARK: - Failure and teardown

    /// Translates a libssh2 error on this session; marks the session dead when the transport is gone.
    func sessionError(_ rc: Int32, _ doing: String, commandMayHaveRun: Bool = false) -> SSHError {
        let (_, msg) = LibSSH2.lastError(session)
        if LibSSH2.isTransportFatal(rc) {
            return SSHError(.sessionLost, "connection lost while \(doing): \(msg)", endpoint: endpoint.description,
                            libssh2Code: rc, retryable: true, commandMayHaveRun: commandMayHaveRun)
        }
        switch rc {
        case LIBSSH2_ERROR_CHANNEL_FAILURE:
            return SSHError(.channelRejected, "the server refused a channel while \(doing): \(msg)",
                            endpoint: endpoint.description, libssh2Code: rc, retryable: true)
        case LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED, LIBSSH2_ERROR_REQUEST_DENIED:
            return SSHError(.requestDenied, "the server denied the request while \(doing): \(msg)",
                            endpoint: endpoint.description, libssh2Code: rc, retryable: false)
        default:
            return SSHError(.internalError, "libssh2 failed while \(doing): \(msg)", endpoint: endpoint.description,
                            libssh2Code: rc, retryable: true, commandMayHaveRun: commandMayHaveRun)
        }
    }

    /// Called by operations (and the loop) when the transport is unusable; every operation then fails.
    func sessionFailed(_ error: SSHError) {
        if failure == nil {
            failure = error
            logger.info("SSH session lost", metadata: ["endpoint": "\(endpoint)", "error": "\(error)"])
        }
    }

    var isFailed: Bool { failure != nil }

    private func failEverything(_ error: SSHError) {
        inbox.withLock { s in
            s.state = .closing
            waiting.append(contentsOf: s.submitted)
            s.submitted = []
        }
        let ops = active + waiting
        active = []
        waiting = []
        for op in ops {
            var e = error
            if e.code == .sessionLost, !(op is ExecOperation) { e.commandMayHaveRun = false }
            op.abort(e, self)
        }
        inbox.withLock { $0.load = 0 }
    }

    private func teardown(sendDisconnect: Bool) {
        if let session {
            // Channels and SFTP handles were dropped with the operations; libssh2 frees them with the session.
            if sendDisconnect, failure == nil {
                let deadline = ContinuousClock.now + .seconds(1)
                while cssh2_session_disconnect(session, "apf-agent closing") == LIBSSH2_ERROR_EAGAIN,
                      ContinuousClock.now < deadline {
                    var p = pollfd(fd: socketFD, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&p, 1, 50)
                }
            }
            // Make every further send fail at once instead of blocking, so freeing cannot hang on a dead peer.
            if socketFD >= 0 { shutdown(socketFD, Int32(SHUT_RDWR)) }
            sftp = nil
            let deadline = ContinuousClock.now + .seconds(1)
            while libssh2_session_free(session) == LIBSSH2_ERROR_EAGAIN, ContinuousClock.now < deadline {}
            self.session = nil
        }
        if socketFD >= 0 {
            Glibc.close(socketFD)
            socketFD = -1
        }
        let waiters = inbox.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.state = .closed
            defer { s.closeWaiters = [] }
            for op in s.submitted { op.abort(SSHError(.shutdown, "the SSH session was closed", retryable: true), self) }
            s.submitted = []
            return s.closeWaiters
        }
        for w in waiters { w.resume() }
    }
}
