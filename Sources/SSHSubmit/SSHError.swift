/// An SSH transport error with a stable code, an actionable message and whether retrying can help.
///
/// Equal by code only, so tests and callers match on `error.code == .hostKeyChanged` and messages may improve.
public struct SSHError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let id: String
        public init(_ id: String) { self.id = id }
        public var description: String { id }

        public static let invalidArgument = Code("ssh.invalid-argument")
        public static let nameResolution = Code("ssh.name-resolution")
        public static let connectRefused = Code("ssh.connect-refused")
        public static let hostUnreachable = Code("ssh.host-unreachable")
        public static let connectTimeout = Code("ssh.connect-timeout")
        public static let handshakeFailed = Code("ssh.handshake-failed")
        public static let hostKeyUnknown = Code("ssh.host-key-unknown")
        public static let hostKeyChanged = Code("ssh.host-key-changed")
        public static let hostKeyRevoked = Code("ssh.host-key-revoked")
        public static let knownHostsUnreadable = Code("ssh.known-hosts-unreadable")
        public static let keyInvalid = Code("ssh.key-invalid")
        public static let authFailed = Code("ssh.auth-failed")
        public static let channelRejected = Code("ssh.channel-rejected")
        public static let requestDenied = Code("ssh.request-denied")
        public static let timeout = Code("ssh.timeout")
        public static let outputTooLarge = Code("ssh.output-too-large")
        public static let sessionLost = Code("ssh.session-lost")
        public static let remoteExit = Code("ssh.remote-exit")
        public static let sftp = Code("ssh.sftp")
        public static let cancelled = Code("ssh.cancelled")
        public static let shutdown = Code("ssh.shutdown")
        public static let backingOff = Code("ssh.backing-off")
        public static let internalError = Code("ssh.internal")
    }

    public var code: Code
    public var message: String
    /// `user@host:port` the error concerns, when known.
    public var endpoint: String?
    /// The libssh2 error number behind this error, when there is one.
    public var libssh2Code: Int32?
    /// Whether the same request can succeed later (a network blip, a restarted server, a full channel budget).
    public var isRetryable: Bool
    /// False when the remote command certainly did not start (failure before the exec request was sent), so a
    /// caller may safely retry even a non-idempotent command; true when the outcome is unknown.
    public var commandMayHaveRun: Bool
    /// The SFTP status code (`LIBSSH2_FX_*`, e.g. 2 = no such file) for SFTP failures.
    public var sftpStatus: UInt?

    public init(
        _ code: Code, _ message: String, endpoint: String? = nil, libssh2Code: Int32? = nil,
        retryable: Bool, commandMayHaveRun: Bool = false
    ) {
        self.code = code
        self.message = message
        self.endpoint = endpoint
        self.libssh2Code = libssh2Code
        self.isRetryable = retryable
        self.commandMayHaveRun = commandMayHaveRun
    }

    public var description: String {
        var s = "[\(code.id)]"
        if let endpoint { s += " \(endpoint):" }
        s += " \(message)"
        if let libssh2Code { s += " (libssh2 \(libssh2Code))" }
        return s
    }

    public static func == (a: SSHError, b: SSHError) -> Bool { a.code == b.code }

    func at(_ endpoint: String) -> SSHError {
        var e = self
        if e.endpoint == nil { e.endpoint = endpoint }
        return e
    }
}
