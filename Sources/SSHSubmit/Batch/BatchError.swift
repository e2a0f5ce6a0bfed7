/// An error of a batch driver, with a stable code and a message saying what to do (STYLE §6).
///
/// `isPermanent` says whether the same request would fail the same way (a rejected option, an unknown account); a
/// transient error (the login node is unreachable, the scheduler timed out) may succeed later. Equal by code only.
public struct BatchError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let id: String
        public init(_ id: String) { self.id = id }
        public var description: String { id }

        /// The SSH transport or the local process runner failed (see `transport`).
        public static let transport = Code("batch.transport")
        /// A batch command exited non-zero with a message the driver does not recognise.
        public static let commandFailed = Code("batch.command-failed")
        /// The batch system refused the request (bad account, partition, limit reached).
        public static let rejected = Code("batch.rejected")
        /// Output that does not have the expected machine-readable shape.
        public static let unparsableOutput = Code("batch.unparsable-output")
        /// An option or payload setting is invalid; fix the queue configuration.
        public static let invalidOption = Code("batch.invalid-option")
        /// A template uses an unknown placeholder or bad syntax.
        public static let template = Code("batch.template")
        /// The remote helper is missing, of another version, or answered without a valid frame.
        public static let helper = Code("batch.helper")
        /// The operation took longer than its timeout.
        public static let timeout = Code("batch.timeout")
        /// Something the target's batch system does not support (e.g. finished-job history on Torque).
        public static let unsupported = Code("batch.unsupported")
    }

    public var code: Code
    public var message: String
    /// The target (`user@host:port` or `local`), when known.
    public var target: String?
    public var isPermanent: Bool
    /// The underlying transport error, if any.
    public var transport: SSHError?

    public init(_ code: Code, _ message: String, target: String? = nil, permanent: Bool, transport: SSHError? = nil) {
        self.code = code
        self.message = message
        self.target = target
        self.isPermanent = permanent
        self.transport = transport
    }

    public var description: String {
        var s = "[\(code.id)]"
        if let target { s += " \(target):" }
        return s + " \(message)"
    }

    public static func == (a: BatchError, b: BatchError) -> Bool { a.code == b.code }

    func at(_ target: String) -> BatchError {
        var e = self
        if e.target == nil { e.target = target }
        return e
    }
}
