import CLibSSH2

/// Process-wide libssh2 state. `libssh2_init` runs exactly once (its counter is not thread-safe); `libssh2_exit`
/// is never called, because sessions may live until the process ends.
enum LibSSH2 {
    static let initialised: Bool = libssh2_init(0) == 0

    /// libssh2's last error text for a session.
    static func lastError(_ session: OpaquePointer?) -> (code: Int32, message: String) {
        guard let session else { return (0, "no session") }
        var msg: UnsafeMutablePointer<CChar>?
        var len: Int32 = 0
        let code = libssh2_session_last_error(session, &msg, &len, 0)
        return (code, msg.map { String(cString: $0) } ?? "")
    }

    /// Errors after which the transport is unusable: the session must be dropped and reconnected.
    static func isTransportFatal(_ rc: Int32) -> Bool {
        switch rc {
        case LIBSSH2_ERROR_SOCKET_NONE, LIBSSH2_ERROR_BANNER_RECV, LIBSSH2_ERROR_BANNER_SEND,
             LIBSSH2_ERROR_INVALID_MAC, LIBSSH2_ERROR_KEX_FAILURE, LIBSSH2_ERROR_SOCKET_SEND,
             LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE, LIBSSH2_ERROR_TIMEOUT, LIBSSH2_ERROR_DECRYPT,
             LIBSSH2_ERROR_SOCKET_DISCONNECT, LIBSSH2_ERROR_PROTO, LIBSSH2_ERROR_SOCKET_TIMEOUT,
             LIBSSH2_ERROR_SOCKET_RECV, LIBSSH2_ERROR_ENCRYPT, LIBSSH2_ERROR_BAD_SOCKET, LIBSSH2_ERROR_ALLOC,
             LIBSSH2_ERROR_BAD_USE:
            return true
        default:
            return false
        }
    }
}
