/// Secret material (private keys, passphrases, cloud secrets) that cannot print itself.
///
/// `description`, `debugDescription` and reflection all show `<redacted>`, so a secret that slips into a log
/// message, an error or a dump shows nothing. Read the bytes only inside `withBytes`.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }
    public init(_ string: String) { self.bytes = Array(string.utf8) }

    public func withBytes<R, E: Error>(_ body: ([UInt8]) throws(E) -> R) throws(E) -> R { try body(bytes) }

    /// Number of bytes; safe to show.
    public var count: Int { bytes.count }
    public var isEmpty: Bool { bytes.isEmpty }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: [:]) }
}
