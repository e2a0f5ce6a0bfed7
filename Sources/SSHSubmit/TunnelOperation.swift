import CLibSSH2
import Glibc

/// A `direct-tcpip` channel through this session to `host:port`, bridged to one end of a local socket pair; the
/// other end becomes the socket of a second session (the jump-host path). Bytes are pumped both ways by this
/// session's loop. Either side closing ends the tunnel.
final class TunnelOperation: LoopOperation, @unchecked Sendable {
    private enum Phase { case open, pump, free, done }

    private let host: String
    private let port: Int
    private var completion: Completion<Int32>?
    private var phase = Phase.open
    private var channel: OpaquePointer?
    private var localFD: Int32 = -1
    private var toLocal: [UInt8] = []
    private var toLocalOffset = 0
    private var toChannel: [CChar] = []
    private var toChannelOffset = 0
    private var localEOF = false
    private var channelEOF = false
    private var buffer = [CChar](repeating: 0, count: 64 << 10)

    init(host: String, port: Int, deadline: ContinuousClock.Instant, completion: Completion<Int32>) {
        self.host = host
        self.port = port
        self.completion = completion
        super.init()
        self.deadline = deadline
    }

    deinit {
        if localFD >= 0 { close(localFD) }
    }

    private func deliver(_ r: Result<Int32, SSHError>) {
        completion?(r)
        completion = nil
    }

    override func abort(_ error: SSHError, _ loop: SessionLoop) {
        deliver(.failure(error))
        aborted = true
        if loop.isFailed {
            phase = .done
        } else if phase == .open {
            if loop.sessionLockOwner != id { phase = .done }
        } else if channel != nil {
            phase = .free
        }
    }

    override var pollDescriptor: pollfd? {
        guard phase == .pump, localFD >= 0 else { return nil }
        var events: Int16 = 0
        if !localEOF, toChannelOffset >= toChannel.count { events |= Int16(POLLIN) }
        if toLocalOffset < toLocal.count { events |= Int16(POLLOUT) }
        return pollfd(fd: localFD, events: events, revents: 0)
    }

    override func step(_ loop: SessionLoop) -> StepResult {
        guard let session = loop.session else { return .finished }
        switch phase {
        case .open:
            if let owner = loop.sessionLockOwner, owner != id { return .blocked }
            loop.sessionLockOwner = id
            guard let ch = cssh2_channel_direct_tcpip(session, host, Int32(port)) else {
                let rc = libssh2_session_last_errno(session)
                if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
                loop.sessionLockOwner = nil
                var error = loop.sessionError(rc, "opening a tunnel to \(host):\(port)")
                if rc == LIBSSH2_ERROR_CHANNEL_FAILURE {
                    error = SSHError(.hostUnreachable,
                                     "the jump host \(loop.endpoint) could not connect to \(host) port \(port) (or does "
                                         + "not allow TCP forwarding)",
                                     libssh2Code: rc, retryable: true)
                }
                if LibSSH2.isTransportFatal(rc) { loop.sessionFailed(error) }
                deliver(.failure(error))
                return .finished
            }
            loop.sessionLockOwner = nil
            channel = ch
            if aborted { phase = .free; return .progressed }
            var fds: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
                deliver(.failure(SSHError(.internalError, "socketpair failed: \(TCPSocket.errnoText())", retryable: true)))
                phase = .free
                return .progressed
            }
            localFD = fds[0]
            _ = fcntl(localFD, F_SETFL, fcntl(localFD, F_GETFL) | O_NONBLOCK)
            deadline = nil  // a tunnel lives as long as its session
            deliver(.success(fds[1]))
            phase = .pump
            return .progressed

        case .pump:
            return pump(loop)

        case .free:
            let rc = libssh2_channel_free(channel)
            if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
            channel = nil
            if localFD >= 0 { close(localFD); localFD = -1 }
            phase = .done
            return .finished

        case .done:
            return .finished
        }
    }

    private func pump(_ loop: SessionLoop) -> StepResult {
        var moved = false
        // Channel -> local socket.
        if toLocalOffset >= toLocal.count, !channelEOF {
            let n = buffer.withUnsafeMutableBufferPointer { cssh2_channel_read(channel, $0.baseAddress, $0.count) }
            if n > 0 {
                toLocal = buffer[0..<n].map { UInt8(bitPattern: $0) }
                toLocalOffset = 0
                moved = true
            } else if n == 0, libssh2_channel_eof(channel) == 1 {
                channelEOF = true
                shutdown(localFD, Int32(SHUT_WR))
                moved = true
            } else if n == Int(LIBSSH2_ERROR_EAGAIN) {
                if libssh2_session_block_directions(loop.session) & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { return .blocked }
            } else if n < 0 {
                return ended(loop, Int32(n))
            }
        }
        if toLocalOffset < toLocal.count {
            let n = toLocal.withUnsafeBufferPointer { write(localFD, $0.baseAddress! + toLocalOffset, toLocal.count - toLocalOffset) }
            if n > 0 {
                toLocalOffset += n
                moved = true
            } else if n < 0, errno != EAGAIN, errno != EINTR {
                localEOF = true  // the inner session is gone
            }
        }
        // Local socket -> channel.
        if toChannelOffset >= toChannel.count, !localEOF {
            let n = buffer.withUnsafeMutableBufferPointer { read(localFD, $0.baseAddress, $0.count) }
            if n > 0 {
                toChannel = Array(buffer[0..<n])
                toChannelOffset = 0
                moved = true
            } else if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) {
                localEOF = true
                moved = true
            }
        }
        if toChannelOffset < toChannel.count {
            let n = toChannel.withUnsafeBufferPointer { cssh2_channel_write(channel, $0.baseAddress! + toChannelOffset, toChannel.count - toChannelOffset) }
            if n > 0 {
                toChannelOffset += n
                moved = true
            } else if n == Int(LIBSSH2_ERROR_EAGAIN) {
                if libssh2_session_block_directions(loop.session) & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0 { return .blocked }
            } else if n < 0 {
                return ended(loop, Int32(n))
            }
        }
        if localEOF {
            // The inner session closed its socket: nothing more will be sent through this tunnel.
            phase = .free
            return .progressed
        }
        return moved ? .progressed : .blocked
    }

    private func ended(_ loop: SessionLoop, _ rc: Int32) -> StepResult {
        if LibSSH2.isTransportFatal(rc) {
            loop.sessionFailed(loop.sessionError(rc, "forwarding a tunnel"))
            return .finished
        }
        phase = .free
        return .progressed
    }
}
