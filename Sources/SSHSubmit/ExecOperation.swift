import CLibSSH2
import Glibc

/// Answers a waiting caller exactly once, from the loop thread.
struct Completion<T: Sendable>: Sendable {
    private let body: @Sendable (Result<T, SSHError>) -> Void
    init(_ body: @escaping @Sendable (Result<T, SSHError>) -> Void) { self.body = body }
    func callAsFunction(_ r: Result<T, SSHError>) { body(r) }
}

/// Runs one command on its own session channel: open, exec, feed stdin, drain stdout and stderr together (draining
/// one first can stall the other's window), then close, wait for the server's close, and read the exit status.
final class ExecOperation: LoopOperation, @unchecked Sendable {
    private enum Phase { case open, exec, io, close, waitClosed, free, done }

    private let command: [UInt8]
    private let stdin: [UInt8]
    private let maxOutput: Int
    private var completion: Completion<ExecResult>?
    private var phase = Phase.open
    private var channel: OpaquePointer?
    private var stdinOffset = 0
    private var eofSent = false
    private var stdout: [UInt8] = []
    private var stderr: [UInt8] = []
    private var execStarted = false

    init(command: String, stdin: [UInt8], maxOutput: Int, deadline: ContinuousClock.Instant,
         completion: Completion<ExecResult>) {
        self.command = Array(command.utf8)
        self.stdin = stdin
        self.maxOutput = maxOutput
        self.completion = completion
        super.init()
        self.deadline = deadline
    }

    override var needsSlot: Bool { true }

    private func deliver(_ r: Result<ExecResult, SSHError>) {
        completion?(r)
        completion = nil
    }

    override func abort(_ error: SSHError, _ loop: SessionLoop) {
        var e = error
        e.commandMayHaveRun = execStarted
        deliver(.failure(e))
        aborted = true
        deadline = .now + .seconds(10)
        if loop.isFailed {
            phase = .done
            channel = nil  // freed with the session
        } else if phase == .open {
            // An open in flight must complete (libssh2 keeps its state in the session), then the channel is freed;
            // an open not yet begun is simply skipped.
            if loop.sessionLockOwner != id { phase = .done }
        } else {
            phase = channel == nil ? .done : .free
        }
    }

    /// Handles a libssh2 failure: a dead transport fails the session; anything else fails this command only.
    private func failed(_ rc: Int32, _ doing: String, _ loop: SessionLoop) -> StepResult {
        let error = loop.sessionError(rc, doing, commandMayHaveRun: execStarted)
        if LibSSH2.isTransportFatal(rc) {
            loop.sessionFailed(error)
            deliver(.failure(error))
            return .finished
        }
        deliver(.failure(error))
        aborted = true
        phase = channel == nil ? .done : .free
        return .progressed
    }

    private func sendBlocked(_ loop: SessionLoop) -> Bool {
        libssh2_session_block_directions(loop.session) & LIBSSH2_SESSION_BLOCK_OUTBOUND != 0
    }

    override func step(_ loop: SessionLoop) -> StepResult {
        guard let session = loop.session else { return .finished }
        switch phase {
        case .open:
            if let owner = loop.sessionLockOwner, owner != id { return .blocked }
            loop.sessionLockOwner = id
            guard let ch = cssh2_channel_open_session(session) else {
                let rc = libssh2_session_last_errno(session)
                if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
                loop.sessionLockOwner = nil
                if rc == LIBSSH2_ERROR_CHANNEL_FAILURE, !aborted, loop.canRequeueAfterRefusal() { return .requeue }
                return failed(rc, "opening a session channel", loop)
            }
            loop.sessionLockOwner = nil
            channel = ch
            phase = aborted ? .free : .exec
            return .progressed

        case .exec:
            execStarted = true
            let rc = command.withUnsafeBufferPointer { p in
                p.withMemoryRebound(to: CChar.self) { cssh2_channel_exec(channel, $0.baseAddress, UInt32($0.count)) }
            }
            if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
            if rc != 0 { return failed(rc, "starting the command", loop) }
            phase = .io
            return .progressed

        case .io:
            return pump(loop)

        case .close:
            let rc = libssh2_channel_close(channel)
            if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
            if rc != 0, LibSSH2.isTransportFatal(rc) { return failed(rc, "closing the channel", loop) }
            phase = .waitClosed
            return .progressed

        case .waitClosed:
            let rc = libssh2_channel_wait_closed(channel)
            if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
            if rc != 0, LibSSH2.isTransportFatal(rc) { return failed(rc, "closing the channel", loop) }
            let status = libssh2_channel_get_exit_status(channel)
            deliver(.success(ExecResult(exitStatus: status, exitSignal: exitSignal(session), stdout: stdout,
                                        stderr: stderr)))
            stdout = []
            stderr = []
            phase = .free
            return .progressed

        case .free:
            let rc = libssh2_channel_free(channel)
            if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
            channel = nil
            phase = .done
            return .finished

        case .done:
            return .finished
        }
    }

    /// Moves stdin out and stdout/stderr in, as far as the socket and windows allow.
    private func pump(_ loop: SessionLoop) -> StepResult {
        var moved = false
        let remoteEOF = libssh2_channel_eof(channel) == 1

        if !remoteEOF {
            if stdinOffset < stdin.count {
                let n = stdin.withUnsafeBufferPointer { p in
                    p.withMemoryRebound(to: CChar.self) {
                        cssh2_channel_write(channel, $0.baseAddress! + stdinOffset, stdin.count - stdinOffset)
                    }
                }
                if n > 0 {
                    stdinOffset += n
                    moved = true
                } else if n == Int(LIBSSH2_ERROR_EAGAIN) {
                    if sendBlocked(loop) { return .blocked }  // a half-sent packet: nothing else may be sent now
                } else if n < 0 {
                    return failed(Int32(n), "sending stdin", loop)
                }
            } else if !eofSent {
                let rc = libssh2_channel_send_eof(channel)
                if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
                if rc != 0 { return failed(rc, "sending EOF", loop) }
                eofSent = true
                moved = true
            }
        }

        var drained = true
        for stream in [0, 1] {
            while true {
                let b = loop.scratch
                let n = stream == 0 ? cssh2_channel_read(channel, b.baseAddress, b.count)
                    : cssh2_channel_read_stderr(channel, b.baseAddress, b.count)
                if n > 0 {
                    moved = true
                    if stdout.count + stderr.count + n > maxOutput {
                        abort(SSHError(.outputTooLarge,
                                       "the command wrote more than \(maxOutput) bytes (stdout plus stderr); raise "
                                           + "SSHOptions.maxOutputBytes or make the command write less",
                                       endpoint: loop.endpoint.description, retryable: false), loop)
                        return .progressed
                    }
                    UnsafeRawBufferPointer(start: b.baseAddress, count: n).withMemoryRebound(to: UInt8.self) {
                        if stream == 0 { stdout.append(contentsOf: $0) } else { stderr.append(contentsOf: $0) }
                    }
                    continue
                }
                if n == 0 { break }
                drained = false
                if n == Int(LIBSSH2_ERROR_EAGAIN) {
                    if sendBlocked(loop) { return .blocked }  // a window adjust is half-sent
                    break
                }
                return failed(Int32(n), "reading output", loop)
            }
        }
        if drained, libssh2_channel_eof(channel) == 1 {
            phase = .close
            return .progressed
        }
        return moved ? .progressed : .blocked
    }

    private func exitSignal(_ session: OpaquePointer) -> String? {
        var sig: UnsafeMutablePointer<CChar>?
        var sigLen = 0
        guard libssh2_channel_get_exit_signal(channel, &sig, &sigLen, nil, nil, nil, nil) == 0, let sig else {
            return nil
        }
        defer { libssh2_free(session, sig) }
        return sigLen > 0 ? String(cString: sig) : nil
    }
}
