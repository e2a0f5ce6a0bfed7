/// An error about tenants, profiles, targets or credentials: a stable code, a message that names the problem and the
/// fix, and whether it was caused by the caller's input (the CLI exits 2 for those, 1 for the rest).
///
/// Equal by code only. Messages never contain secret material: they name files and profiles, never their contents.
public struct AuthError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let id: String
        public init(_ id: String) { self.id = id }
        public var description: String { id }

        public static let badName = Code("auth.bad-name")
        public static let badValue = Code("auth.bad-value")
        public static let duplicate = Code("auth.duplicate")
        public static let notFound = Code("auth.not-found")
        public static let crossTenant = Code("auth.cross-tenant")
        public static let inUse = Code("auth.in-use")
        public static let wrongKind = Code("auth.wrong-kind")
        public static let permissions = Code("auth.permissions")
        public static let unreadable = Code("auth.unreadable")
        public static let malformedPEM = Code("auth.malformed-pem")
        public static let malformedKey = Code("auth.malformed-key")
        public static let unsupportedKey = Code("auth.unsupported-key")
        public static let wrongPassphrase = Code("auth.wrong-passphrase")
        public static let missingSecret = Code("auth.missing-secret")
        public static let expired = Code("auth.expired")
        public static let belowMinlife = Code("auth.below-minlife")
        public static let chainInvalid = Code("auth.chain-invalid")
        public static let renewFailed = Code("auth.renew-failed")
        public static let noUsableCredential = Code("auth.no-usable-credential")
        public static let cloudAuthFailed = Code("auth.cloud-auth-failed")
        public static let cloudUnreachable = Code("auth.cloud-unreachable")
        public static let cloudResponse = Code("auth.cloud-response")
        public static let storeIO = Code("auth.store-io")
        public static let internalError = Code("auth.internal")
    }

    public var code: Code
    public var message: String
    /// True when the caller's input was wrong (bad name, malformed file, wrong passphrase…): the CLI exits 2.
    public var isBadInput: Bool

    public init(_ code: Code, _ message: String, badInput: Bool = false) {
        self.code = code
        self.message = message
        self.isBadInput = badInput
    }

    /// An error in what the caller gave us.
    public static func input(_ code: Code, _ message: String) -> AuthError { AuthError(code, message, badInput: true) }

    public var description: String { "[\(code.id)] \(message)" }
    public static func == (a: AuthError, b: AuthError) -> Bool { a.code == b.code }
}
