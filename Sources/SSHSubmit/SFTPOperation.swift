import CLibSSH2
import Glibc

/// What an SFTP request returns.
enum SFTPReply: Sendable {
    case done
    case info(RemoteFileInfo?)
    case data([UInt8])
}

enum SFTPRequest: Sendable {
    case stat(String)
    case mkdir(String, mode: UInt32)
    case unlink(String)
    case rename(String, to: String)
    /// Creates `path` exclusively, writes `data`, fsyncs, sets `mode` exactly (umask-independent), closes.
    case writeNew(String, data: [UInt8], mode: UInt32)
    case read(String, maxBytes: Int)
}

/// One SFTP request on the session's shared SFTP subsystem (started on first use, one request at a time).
///
/// A libssh2 SFTP call in flight keeps state in the SFTP instance, so even an aborted request runs its current call
/// to completion and closes its file handle before the next request starts.
final class SFTPOperation: LoopOperation, @unchecked Sendable {
    private enum Phase { case acquire, call, write, fsync, setMode, closeHandle, done }

    private let request: SFTPRequest
    private var completion: Completion<SFTPReply>?
    private var phase = Phase.acquire
    private var handle: OpaquePointer?
    private var offset = 0
    private var readBuffer: [UInt8] = []
    private var pendingError: SSHError?
    private var attrs = LIBSSH2_SFTP_ATTRIBUTES()

    init(_ request: SFTPRequest, deadline: ContinuousClock.Instant, completion: Completion<SFTPReply>) {
        self.request = request
        self.completion = completion
        super.init()
        self.deadline = deadline
    }

    private func deliver(_ r: Result<SFTPReply, SSHError>) {
        completion?(r)
        completion = nil
    }

    override func abort(_ error: SSHError, _ loop: SessionLoop) {
        deliver(.failure(error))
        aborted = true
        deadline = .now + .seconds(10)
        if loop.isFailed || phase == .acquire { phase = .done }
        // Otherwise the current call completes, then the handle (if any) is closed.
    }

    override func step(_ loop: SessionLoop) -> StepResult {
        guard let session = loop.session else { return .finished }
        switch phase {
        case .acquire:
            if let owner = loop.sftpOwner, owner != id { return .blocked }
            loop.sftpOwner = id
            if loop.sftp == nil {
                if !loop.sftpChannelSlot, !loop.claimSFTPSlot() { return .blocked }
                if let owner = loop.sessionLockOwner, owner != id { return .blocked }
                loop.sessionLockOwner = id
                guard let sftp = libssh2_sftp_init(session) else {
                    let rc = libssh2_session_last_errno(session)
                    if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
                    loop.sessionLockOwner = nil
                    return fail(loop.sessionError(rc, "starting the SFTP subsystem"), loop, fatal: LibSSH2.isTransportFatal(rc))
                }
                loop.sessionLockOwner = nil
                loop.sftp = sftp
            }
            phase = .call
            return .progressed

        case .call:
            return call(loop)

        case .write:
            guard case .writeNew(_, let data, _) = request else { return .finished }
            if aborted { phase = .closeHandle; return .progressed }
            while offset < data.count {
                let n = data.withUnsafeBufferPointer { p in
                    p.withMemoryRebound(to: CChar.self) { libssh2_sftp_write(handle, $0.baseAddress! + offset, data.count - offset) }
                }
                if n == Int(LIBSSH2_ERROR_EAGAIN) { return .blocked }
                if n < 0 { return callFailed(Int32(n), "writing", loop) }
                offset += n
            }
            phase = .fsync
            return .progressed

        case .fsync:
            let rc = libssh2_sftp_fsync(handle)
            if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
            // Servers without fsync@openssh.com answer "unsupported"; the rename still makes the file appear whole.
            if rc != 0, !(rc == LIBSSH2_ERROR_SFTP_PROTOCOL && libssh2_sftp_last_error(loop.sftp) == UInt(LIBSSH2_FX_OP_UNSUPPORTED)) {
                return callFailed(rc, "fsync", loop)
            }
            phase = .setMode
            return .progressed

        case .setMode:
            guard case .writeNew(_, _, let mode) = request else { return .finished }
            attrs = LIBSSH2_SFTP_ATTRIBUTES()
            attrs.flags = UInt(LIBSSH2_SFTP_ATTR_PERMISSIONS)
            attrs.permissions = UInt(mode)
            let rc = cssh2_sftp_fsetstat(handle, &attrs)
            if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
            if rc != 0 { return callFailed(rc, "setting the file mode", loop) }
            phase = .closeHandle
            return .progressed

        case .closeHandle:
            let rc = libssh2_sftp_close_handle(handle)
            if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
            handle = nil
            if let e = pendingError {
                deliver(.failure(e))
            } else if rc != 0 {
                deliver(.failure(sftpError(rc, "closing the file", loop)))
            } else if case .read = request {
                deliver(.success(.data(readBuffer)))
            } else {
                deliver(.success(.done))
            }
            phase = .done
            return .finished

        case .done:
            return .finished
        }
    }

    /// The request's first call (the only one, except for writes and reads).
    private func call(_ loop: SessionLoop) -> StepResult {
        let sftp = loop.sftp
        switch request {
        case .stat(let path):
            let rc = cssh2_sftp_stat(sftp, path, &attrs)
            if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
            if rc == LIBSSH2_ERROR_SFTP_PROTOCOL,
               [UInt(LIBSSH2_FX_NO_SUCH_FILE), UInt(LIBSSH2_FX_NO_SUCH_PATH)].contains(libssh2_sftp_last_error(sftp)) {
                return succeed(.info(nil))
            }
            if rc != 0 { return callFailed(rc, "stat \(path)", loop) }
            return succeed(.info(RemoteFileInfo(size: attrs.filesize, mode: UInt32(truncatingIfNeeded: attrs.permissions),
                                                modificationTime: UInt64(attrs.mtime))))
        case .mkdir(let path, let mode):
            let rc = cssh2_sftp_mkdir(sftp, path, Int(mode))
            if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
            if rc != 0 { return callFailed(rc, "mkdir \(path)", loop) }
            return succeed(.done)
        case .unlink(let path):
            let rc = cssh2_sftp_unlink(sftp, path)
            if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
            if rc != 0 { return callFailed(rc, "unlink \(path)", loop) }
            return succeed(.done)
        case .rename(let from, let to):
            let rc = cssh2_sftp_rename(sftp, from, to)
            if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
            if rc != 0 { return callFailed(rc, "rename \(from) to \(to)", loop) }
            return succeed(.done)
        case .writeNew(let path, _, let mode):
            let flags = UInt(LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_EXCL)
            guard let h = cssh2_sftp_open(sftp, path, flags, Int(mode & 0o700)) else {
                let rc = libssh2_session_last_errno(loop.session)
                if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
                return callFailed(rc, "create \(path)", loop)
            }
            handle = h
            phase = aborted ? .closeHandle : .write
            return .progressed
        case .read(let path, let maxBytes):
            if handle == nil {
                guard let h = cssh2_sftp_open(sftp, path, UInt(LIBSSH2_FXF_READ), 0) else {
                    let rc = libssh2_session_last_errno(loop.session)
                    if rc == LIBSSH2_ERROR_EAGAIN { return .blocked }
                    return callFailed(rc, "open \(path)", loop)
                }
                handle = h
            }
            if aborted { phase = .closeHandle; return .progressed }
            while true {
                let n = libssh2_sftp_read(handle, loop.scratch.baseAddress, loop.scratch.count)
                if n == Int(LIBSSH2_ERROR_EAGAIN) { return .blocked }
                if n < 0 { return callFailed(Int32(n), "reading \(path)", loop) }
                if n == 0 { break }
                if readBuffer.count + n > maxBytes {
                    pendingError = SSHError(.outputTooLarge, "\(path) is larger than the \(maxBytes)-byte limit",
                                            endpoint: loop.endpoint.description, retryable: false)
                    break
                }
                UnsafeRawBufferPointer(start: loop.scratch.baseAddress, count: n).withMemoryRebound(to: UInt8.self) {
                    readBuffer.append(contentsOf: $0)
                }
            }
            phase = .closeHandle
            return .progressed
        }
    }

    private func succeed(_ reply: SFTPReply) -> StepResult {
        deliver(.success(reply))
        phase = .done
        return .finished
    }

    private func callFailed(_ rc: Int32, _ what: String, _ loop: SessionLoop) -> StepResult {
        let error = sftpError(rc, what, loop)
        if LibSSH2.isTransportFatal(rc) { return fail(error, loop, fatal: true) }
        if handle != nil {
            pendingError = error
            phase = .closeHandle
            return .progressed
        }
        return fail(error, loop, fatal: false)
    }

    private func fail(_ error: SSHError, _ loop: SessionLoop, fatal: Bool) -> StepResult {
        if fatal { loop.sessionFailed(error) }
        deliver(.failure(error))
        phase = .done
        return .finished
    }

    private func sftpError(_ rc: Int32, _ what: String, _ loop: SessionLoop) -> SSHError {
        guard rc == LIBSSH2_ERROR_SFTP_PROTOCOL else { return loop.sessionError(rc, "SFTP \(what)") }
        let status = libssh2_sftp_last_error(loop.sftp)
        let text: String
        switch status {
        case UInt(LIBSSH2_FX_NO_SUCH_FILE), UInt(LIBSSH2_FX_NO_SUCH_PATH): text = "no such file or directory"
        case UInt(LIBSSH2_FX_PERMISSION_DENIED): text = "permission denied"
        case UInt(LIBSSH2_FX_FILE_ALREADY_EXISTS): text = "already exists"
        case UInt(LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM): text = "no space left on the remote file system"
        case UInt(LIBSSH2_FX_QUOTA_EXCEEDED): text = "quota exceeded"
        case UInt(LIBSSH2_FX_FAILURE): text = "failed (the server gives no reason; often: the target exists)"
        default: text = "SFTP status \(status)"
        }
        var e = SSHError(.sftp, "SFTP \(what): \(text)", endpoint: loop.endpoint.description, libssh2Code: rc,
                         retryable: false)
        e.sftpStatus = status
        return e
    }
}
