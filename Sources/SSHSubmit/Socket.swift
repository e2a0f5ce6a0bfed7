import Glibc

/// TCP connection set-up for a session: resolves the host (IPv4 and IPv6), connects to each address in turn with
/// a deadline, and tunes the socket. Runs on the connection's own thread, where blocking is allowed.
enum TCPSocket {
    static func connect(host: String, port: Int, timeout: Duration, userTimeout: Duration?) throws(SSHError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let first = result else {
            let why = rc == 0 ? "no address" : String(cString: gai_strerror(rc))
            throw SSHError(.nameResolution, "cannot resolve \(host): \(why)", retryable: true)
        }
        defer { freeaddrinfo(result) }

        let deadline = ContinuousClock.now + timeout
        var lastError = SSHError(.connectTimeout, "no address of \(host) answered", retryable: true)
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            ai = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), a.pointee.ai_protocol)
            if fd < 0 { continue }
            do {
                try setNonBlocking(fd)
                try connectOne(fd, a.pointee.ai_addr, a.pointee.ai_addrlen, deadline: deadline, host: host, port: port)
                tune(fd, userTimeout: userTimeout)
                return fd
            } catch {
                close(fd)
                lastError = error
                if error.code == .connectTimeout { break }  // the deadline covers all addresses
            }
        }
        throw lastError
    }

    static func setNonBlocking(_ fd: Int32) throws(SSHError) {
        let flags = fcntl(fd, F_GETFL)
        if flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 {
            throw SSHError(.internalError, "fcntl(O_NONBLOCK) failed: \(errnoText())", retryable: true)
        }
    }

    private static func connectOne(
        _ fd: Int32, _ addr: UnsafeMutablePointer<sockaddr>?, _ len: socklen_t, deadline: ContinuousClock.Instant,
        host: String, port: Int
    ) throws(SSHError) {
        if Glibc.connect(fd, addr, len) == 0 { return }
        guard errno == EINPROGRESS else { throw connectError(errno, host: host, port: port) }
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            if left <= .zero {
                throw SSHError(.connectTimeout, "TCP connect to \(host) port \(port) timed out", retryable: true)
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let n = poll(&pfd, 1, Int32(clamping: left.milliseconds + 1))
            if n < 0 && errno == EINTR { continue }
            if n == 0 { continue }
            var err: Int32 = 0
            var errLen = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errLen)
            if err == 0 { return }
            throw connectError(err, host: host, port: port)
        }
    }

    private static func connectError(_ err: Int32, host: String, port: Int) -> SSHError {
        let text = String(cString: strerror(err))
        switch err {
        case ECONNREFUSED:
            return SSHError(.connectRefused, "connection to \(host) port \(port) refused: is sshd running there?",
                            retryable: true)
        case EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, ENETDOWN:
            return SSHError(.hostUnreachable, "\(host) port \(port): \(text)", retryable: true)
        case ETIMEDOUT:
            return SSHError(.connectTimeout, "TCP connect to \(host) port \(port) timed out", retryable: true)
        default:
            return SSHError(.hostUnreachable, "connect to \(host) port \(port): \(text)", retryable: true)
        }
    }

    /// TCP_NODELAY (without it every channel costs ~44 ms of Nagle plus delayed ACK), TCP keepalive, and
    /// TCP_USER_TIMEOUT so a peer that stops acknowledging (blackhole) kills the socket instead of hanging.
    private static func tune(_ fd: Int32, userTimeout: Duration?) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size))
        if let userTimeout {
            var ms = UInt32(clamping: userTimeout.milliseconds)
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_USER_TIMEOUT, &ms, socklen_t(MemoryLayout<UInt32>.size))
            var idle = Int32(max(1, userTimeout.milliseconds / 3000))
            var count: Int32 = 3
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, &idle, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, &idle, socklen_t(MemoryLayout<Int32>.size))
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPCNT, &count, socklen_t(MemoryLayout<Int32>.size))
        }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

extension Duration {
    var milliseconds: Int64 {
        let (s, atto) = components
        return s * 1000 + atto / 1_000_000_000_000_000
    }
}
