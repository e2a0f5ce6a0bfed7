import CLibSSH2
import Foundation
import Glibc

/// A server's host key as presented in an SSH handshake: not trusted, only shown so an operator can pin it.
public struct ScannedHostKey: Sendable, Equatable {
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, …
    public var keyType: String
    /// The public key blob.
    public var key: [UInt8]

    public init(keyType: String, key: [UInt8]) {
        self.keyType = keyType
        self.key = key
    }

    /// OpenSSH's `SHA256:` fingerprint, as `ssh-keygen -lf` prints it.
    public var fingerprint: String { KnownHosts.fingerprint(key) }

    /// The known_hosts line that pins this key for `host` and `port`.
    public func knownHostsLine(host: String, port: Int) -> String {
        KnownHosts.line(host: host, port: port, keyType: keyType, key: key)
    }
}

/// Fetches a server's host key like `ssh-keyscan`: connect, SSH handshake, read the key, disconnect. No user
/// authentication is attempted and nothing is sent beyond the key exchange.
public enum HostKeyScan {
    /// Key types in preference order; the server picks the first it has.
    public static let defaultKeyTypes = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
                                         "ecdsa-sha2-nistp521", "ssh-rsa"]

    /// - Parameters:
    ///   - keyTypes: accepted host-key algorithms, most preferred first.
    ///   - gateway: an authenticated connection to a jump host; the scan then runs through a `direct-tcpip` channel
    ///     of it, so `host` is resolved and reached by the jump host.
    public static func scan(
        host: String, port: Int, keyTypes: [String] = defaultKeyTypes, via gateway: SSHConnection? = nil,
        timeout: Duration = .seconds(15)
    ) async throws(SSHError) -> ScannedHostKey {
        let unknown = keyTypes.filter { !HostKeyType.preferenceOrder.contains($0) }
        guard !keyTypes.isEmpty, unknown.isEmpty else {
            throw SSHError(.invalidArgument, "unsupported host key type(s) \(unknown.joined(separator: ", ")); libssh2 "
                               + "1.10 knows \(HostKeyType.preferenceOrder.joined(separator: ", "))", retryable: false)
        }
        let endpoint = "\(host):\(port)"
        let gateKey = "\(gateway.map { "\($0.endpoint)>" } ?? "")\(endpoint)"
        return try await DialGate.shared.withSlot(for: gateKey) { () async throws(SSHError) -> ScannedHostKey in
            var tunnelFD: Int32?
            if let gateway { tunnelFD = try await gateway.openTunnel(host: host, port: port) }
            let pref = keyTypes.joined(separator: ",")
            let fdForScan = tunnelFD
            let result = await withCheckedContinuation { (cont: CheckedContinuation<Result<ScannedHostKey, SSHError>, Never>) in
                let thread = Thread {
                    cont.resume(returning: Result { () throws(SSHError) -> ScannedHostKey in
                        try scanBlocking(host: host, port: port, preference: pref, tunnelFD: fdForScan, timeout: timeout)
                    })
                }
                thread.name = "ssh-keyscan \(endpoint)"
                thread.start()
            }
            return try result.get()
        }
    }

    /// Runs on its own thread: every call here may block (bounded by the deadline).
    private static func scanBlocking(
        host: String, port: Int, preference: String, tunnelFD: Int32?, timeout: Duration
    ) throws(SSHError) -> ScannedHostKey {
        let where_ = KnownHosts.hostName(host, port: port)
        guard LibSSH2.initialised else { throw SSHError(.internalError, "libssh2_init failed", retryable: false) }
        let fd: Int32
        if let tunnelFD {
            fd = tunnelFD
        } else {
            fd = try TCPSocket.connect(host: host, port: port, timeout: timeout, userTimeout: nil)
        }
        defer { Glibc.close(fd) }
        let stats = UnsafeMutablePointer<cssh2_io_stats>.allocate(capacity: 1)
        stats.initialize(to: cssh2_io_stats(last_recv_ns: 0, bytes_in: 0, bytes_out: 0))
        defer { stats.deallocate() }
        guard let session = cssh2_session_new(stats) else {
            throw SSHError(.internalError, "libssh2_session_init failed", retryable: true)
        }
        defer {
            shutdown(fd, Int32(SHUT_RDWR))
            let until = ContinuousClock.now + .seconds(1)
            while libssh2_session_free(session) == LIBSSH2_ERROR_EAGAIN, ContinuousClock.now < until {}
        }
        libssh2_session_set_blocking(session, 0)
        if libssh2_session_method_pref(session, LIBSSH2_METHOD_HOSTKEY, preference) != 0 {
            throw SSHError(.invalidArgument, "libssh2 refused the host key preference \(preference)", retryable: false)
        }
        let deadline = ContinuousClock.now + timeout
        var rc: Int32
        repeat {
            rc = libssh2_session_handshake(session, libssh2_socket_t(fd))
            if rc == LIBSSH2_ERROR_EAGAIN {
                let left = ContinuousClock.now.duration(to: deadline)
                guard left > .zero else {
                    throw SSHError(.timeout, "the SSH handshake with \(where_) did not finish within \(timeout)",
                                   retryable: true)
                }
                let dirs = libssh2_session_block_directions(session)
                var events: Int16 = 0
                if dirs & LIBSSH2_SESSION_BLOCK_INBOUND != 0 { events |= Int16(POLLIN) }
                if dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { events |= Int16(POLLOUT) }
                if events == 0 { events = Int16(POLLIN) }
                var p = pollfd(fd: fd, events: events, revents: 0)
                _ = poll(&p, 1, Int32(clamping: min(left.milliseconds + 1, 1000)))
            }
        } while rc == LIBSSH2_ERROR_EAGAIN
        guard rc == 0 else {
            let (_, msg) = LibSSH2.lastError(session)
            var hint = ""
            if rc == LIBSSH2_ERROR_KEX_FAILURE {
                hint = "; the server offers none of the host key types \(preference), or no algorithm libssh2 1.10 "
                    + "supports"
            }
            throw SSHError(.handshakeFailed, "SSH handshake with \(where_) failed: \(msg)\(hint)", libssh2Code: rc,
                           retryable: rc != LIBSSH2_ERROR_KEX_FAILURE)
        }
        var len = 0
        var type: Int32 = 0
        guard let raw = libssh2_session_hostkey(session, &len, &type), len > 0 else {
            throw SSHError(.handshakeFailed, "\(where_) sent no host key", retryable: true)
        }
        let key = raw.withMemoryRebound(to: UInt8.self, capacity: len) { Array(UnsafeBufferPointer(start: $0, count: len)) }
        guard let typeName = HostKeyType.name(libssh2Type: type) else {
            throw SSHError(.handshakeFailed, "\(where_) presented a host key of unknown type \(type)", retryable: false)
        }
        let until = ContinuousClock.now + .milliseconds(500)
        while cssh2_session_disconnect(session, "host key scan") == LIBSSH2_ERROR_EAGAIN, ContinuousClock.now < until {
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&p, 1, 50)
        }
        return ScannedHostKey(keyType: typeName, key: key)
    }
}
