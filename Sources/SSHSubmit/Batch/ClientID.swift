import Synchronization

/// The factory's short tag: 1–4 characters, a lower-case letter then letters or digits (`apf`, `b2`).
///
/// Every client ID starts with it, so listings can be narrowed to this factory's own jobs; it is also why IDs fit the
/// 15-character job-name limit of old PBS servers.
public struct FactoryTag: Hashable, Sendable, CustomStringConvertible {
    public let value: String

    public init(_ value: String) throws(BatchError) {
        let bytes = Array(value.utf8)
        guard (1...4).contains(bytes.count), bytes[0] >= UInt8(ascii: "a"), bytes[0] <= UInt8(ascii: "z"),
              bytes.allSatisfy({ ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) })
        else {
            throw BatchError(.invalidOption, "factory tag '\(value)' must be 1-4 characters: a lower-case letter, then lower-case letters or digits",
                             permanent: true)
        }
        self.value = value
    }

    public var description: String { value }
}

/// A pilot's client-side ID, minted (and persisted by the caller) **before** anything is submitted, so a pilot can be
/// found after a crash or an unknown submit outcome without its native batch ID (LESSONS §1).
///
/// Text form: `<tag>-<10 base32 characters>`, at most 15 characters, safe as a job name on every supported system
/// (starts with a letter; only `[a-z0-9-]`). The 50-bit serial is `seconds since 2025-01-01 UTC << 20 | sequence`, so
/// IDs sort by mint time, a batch minted together is contiguous (an array job's task *i* is `first + (i - 1)`), and
/// `mintedAtUnixSeconds` bounds accounting look-ups.
public struct ClientID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let tag: FactoryTag
    /// 50-bit serial; see the type's documentation.
    public let serial: UInt64

    static let serialBits = 50
    static let maxSerial: UInt64 = (1 << 50) - 1
    static let sequenceBits = 20
    /// 2025-01-01T00:00:00Z.
    static let epochUnixSeconds: UInt64 = 1_735_689_600
    static let alphabet: [UInt8] = Array("0123456789abcdefghjkmnpqrstvwxyz".utf8)  // Crockford base32, lower case

    public init(tag: FactoryTag, serial: UInt64) {
        precondition(serial <= Self.maxSerial, "client ID serial out of range")
        self.tag = tag
        self.serial = serial
    }

    /// Parses the exact text form; anything else (upper case, wrong length, foreign tag syntax) is nil.
    public init?(_ text: String) {
        var text = text
        guard let parsed = text.withUTF8({ Self.parse(UnsafeRawBufferPointer($0)) }) else { return nil }
        self = parsed
    }

    /// Parses bytes without allocating for the common (invalid or valid) case; used by the listing parsers.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> ClientID? {
        let n = bytes.count
        guard n >= 12, n <= 15, bytes[n - 11] == UInt8(ascii: "-") else { return nil }
        var serial: UInt64 = 0
        for i in (n - 10)..<n {
            guard let v = decode(bytes[i]) else { return nil }
            serial = serial << 5 | UInt64(v)
        }
        let tagText = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<(n - 11)]), as: UTF8.self)
        guard let tag = try? FactoryTag(tagText) else { return nil }
        return ClientID(tag: tag, serial: serial)
    }

    private static let decodeTable: [Int8] = {
        var t = [Int8](repeating: -1, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = Int8(i) }
        return t
    }()

    @inline(__always) static func decode(_ c: UInt8) -> UInt8? {
        let v = decodeTable[Int(c)]
        return v < 0 ? nil : UInt8(v)
    }

    public var description: String {
        var out = Array(tag.value.utf8)
        out.append(UInt8(ascii: "-"))
        for shift in stride(from: 45, through: 0, by: -5) {
            out.append(Self.alphabet[Int((serial >> UInt64(shift)) & 31)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The ID `n` places after this one (array task `i` of a batch whose first ID is `self` is `advanced(by: i - 1)`).
    public func advanced(by n: Int) -> ClientID? {
        let s = Int64(serial) + Int64(n)
        guard s >= 0, UInt64(s) <= Self.maxSerial else { return nil }
        return ClientID(tag: tag, serial: UInt64(s))
    }

    /// How far after `other` this ID is, when both have the same tag.
    public func distance(from other: ClientID) -> Int? {
        guard tag == other.tag else { return nil }
        return Int(Int64(serial) - Int64(other.serial))
    }

    /// When the ID was minted (whole seconds, UTC), from its serial.
    public var mintedAtUnixSeconds: UInt64 { Self.epochUnixSeconds + (serial >> UInt64(Self.sequenceBits)) }

    public static func < (a: ClientID, b: ClientID) -> Bool {
        a.tag.value == b.tag.value ? a.serial < b.serial : a.tag.value < b.tag.value
    }
}

/// Mints client IDs: strictly increasing, and contiguous within one `mint(count:)` call, so the batch can become one
/// array job. Seed it with the last ID the store holds (`after:`) so a restarted agent never re-issues an ID, even
/// when the previous run minted ahead of the clock.
public final class ClientIDMinter: Sendable {
    public let tag: FactoryTag
    private let last: Mutex<UInt64>
    private let now: @Sendable () -> UInt64

    /// - Parameters:
    ///   - after: the newest ID already issued with this tag (from the caller's store), if any.
    ///   - unixSeconds: the clock, injectable for tests.
    public init(tag: FactoryTag, after: ClientID? = nil, unixSeconds: @escaping @Sendable () -> UInt64 = ClientIDMinter.systemSeconds) {
        self.tag = tag
        self.now = unixSeconds
        self.last = Mutex(after.map { $0.tag == tag ? $0.serial : 0 } ?? 0)
    }

    /// `count` contiguous new IDs.
    public func mint(count: Int) -> [ClientID] {
        precondition(count >= 0)
        guard count > 0 else { return [] }
        let seconds = now()
        let clockSerial = (seconds > ClientID.epochUnixSeconds ? seconds - ClientID.epochUnixSeconds : 0) << UInt64(ClientID.sequenceBits)
        let first = last.withLock { last -> UInt64 in
            let first = max(last + 1, clockSerial)
            last = first + UInt64(count) - 1
            return first
        }
        return (0..<count).map { ClientID(tag: tag, serial: first + UInt64($0)) }
    }

    public func mint() -> ClientID { mint(count: 1)[0] }

    public static let systemSeconds: @Sendable () -> UInt64 = {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
