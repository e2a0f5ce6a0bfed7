public import AuthProfiles

/// Where to connect: host (name, IPv4 or IPv6 literal) and port, as the operator configured them.
public struct SSHEndpoint: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String

    public init(host: String, port: Int = 22, user: String) {
        self.host = host
        self.port = port
        self.user = user
    }

    public var description: String {
        host.contains(":") ? "\(user)@[\(host)]:\(port)" : "\(user)@\(host):\(port)"
    }
}

/// A private key held in memory (OpenSSH, PEM or PKCS#8 text), handed to libssh2 without touching `~/.ssh`.
public struct SSHIdentity: Sendable {
    /// A stable, non-secret name for pooling and logs (a profile name or key fingerprint).
    public var id: String
    public var privateKey: Secret
    public var passphrase: Secret?

    public init(id: String, privateKey: Secret, passphrase: Secret? = nil) {
        self.id = id
        self.privateKey = privateKey
        self.passphrase = passphrase
    }
}

/// Transport tuning. Defaults suit a pilot factory talking to a login node for months.
public struct SSHOptions: Sendable {
    /// TCP connect, per resolved address.
    public var connectTimeout: Duration = .seconds(10)
    /// SSH handshake plus authentication.
    public var handshakeTimeout: Duration = .seconds(30)
    /// Default per-command timeout when a command sets none.
    public var commandTimeout: Duration = .seconds(300)
    /// Interval of SSH keepalive messages on an open session; 0 disables them.
    public var keepaliveInterval: Duration = .seconds(15)
    /// Keepalives that may go unacknowledged (at TCP level) before the session is declared dead.
    public var keepaliveCountMax: Int = 3
    /// Concurrent session channels on one connection (exec and SFTP), below OpenSSH's MaxSessions 10.
    public var channelBudget: Int = 8
    /// stdout plus stderr of one command.
    public var maxOutputBytes: Int = 64 << 20
    /// Close a connection after this long with nothing to do.
    public var idleTimeout: Duration = .seconds(300)
    /// Reconnect back-off: first delay, doubling per failure, capped.
    public var reconnectBaseDelay: Duration = .milliseconds(500)
    public var reconnectMaxDelay: Duration = .seconds(60)

    public init() {}
}

/// What a remote command returned.
public struct ExecResult: Sendable {
    public var exitStatus: Int32
    /// Signal name without "SIG" (e.g. "KILL") when the command was killed by a signal.
    public var exitSignal: String?
    public var stdout: [UInt8]
    public var stderr: [UInt8]

    public init(exitStatus: Int32, exitSignal: String?, stdout: [UInt8], stderr: [UInt8]) {
        self.exitStatus = exitStatus
        self.exitSignal = exitSignal
        self.stdout = stdout
        self.stderr = stderr
    }

    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    public var succeeded: Bool { exitStatus == 0 && exitSignal == nil }

    /// Throws `remoteExit` unless the command exited 0, quoting the first line of stderr.
    @discardableResult
    public func check(_ what: String) throws(SSHError) -> ExecResult {
        guard !succeeded else { return self }
        let firstLine = stderrText.split(separator: "\n").first.map(String.init) ?? ""
        let how = exitSignal.map { "was killed by SIG\($0)" } ?? "exited \(exitStatus)"
        throw SSHError(.remoteExit, "\(what) \(how)\(firstLine.isEmpty ? "" : ": \(firstLine)")",
                       retryable: false, commandMayHaveRun: true)
    }
}

/// A remote command as an argument vector; rendered with `ShellQuote`, never pasted into a string.
public struct RemoteCommand: Sendable {
    public var argv: [String]
    /// Set for this command only (as `NAME='value' cmd …`), so sshd's AcceptEnv does not matter.
    public var environment: [(String, String)]
    public var stdin: [UInt8]
    public var workingDirectory: String?
    public var timeout: Duration?

    public init(
        _ argv: [String], environment: [(String, String)] = [], stdin: [UInt8] = [],
        workingDirectory: String? = nil, timeout: Duration? = nil
    ) {
        self.argv = argv
        self.environment = environment
        self.stdin = stdin
        self.workingDirectory = workingDirectory
        self.timeout = timeout
    }

    public func rendered() throws(SSHError) -> String {
        try ShellQuote.render(argv, environment: environment, workingDirectory: workingDirectory)
    }
}

/// Attributes of a remote file.
public struct RemoteFileInfo: Sendable, Equatable {
    public var size: UInt64
    /// Permission bits plus file type bits (`S_IFDIR` etc.), as the SFTP server reports them.
    public var mode: UInt32
    public var modificationTime: UInt64

    public var isDirectory: Bool { mode & 0o170000 == 0o040000 }
    public var isRegularFile: Bool { mode & 0o170000 == 0o100000 }
    public var permissions: UInt32 { mode & 0o7777 }
}
