import Synchronization

/// The factory's short tag: 1–4 characters, a lower-case letter then letters or digits (`apf`, `b2`).
///
/// Every client ID starts with it, so listings can be narrowed to this factory's own jobs; it is also why IDs fit the
/// 15-character job-name limit of old PBS servers.
public struct FactoryTag: Hashable, Sendable, CustomStringConvertible {
    /// The tag's bytes packed little-endian (1-4 bytes): a plain value, so IDs and records stay trivially copyable.
    let packed: UInt32
    let length: UInt8

    public init(_ value: String) throws(BatchError) {
        var packed: UInt32 = 0
        var n = 0
        var ok = true
        for c in value.utf8 {
            let letter = c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")
            let digit = c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")
            if n >= 4 || !(letter || (digit && n > 0)) { ok = false; break }
            packed |= UInt32(c) << (8 * UInt32(n))
            n += 1
        }
        guard ok, n >= 1 else {
            throw BatchError(.invalidOption, "factory tag '\(value)' must be 1-4 characters: a lower-case letter, then lower-case letters or digits",
                             permanent: true)
        }
        self.packed = packed
        self.length = UInt8(n)
    }

    /// Builds a tag from packed bytes already checked by the caller.
    init?(packed: UInt32, length: Int) {
        guard (1...4).contains(length) else { return nil }
        for i in 0..<length {
            let c = UInt8(truncatingIfNeeded: packed >> (8 * UInt32(i)))
            let letter = c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")
            let digit = c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")
            guard letter || (digit && i > 0) else { return nil }
        }
        self.packed = packed
        self.length = UInt8(length)
    }

    public var value: String {
        String(decoding: (0..<Int(length)).map { UInt8(truncatingIfNeeded: packed >> (8 * UInt32($0))) }, as: UTF8.self)
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

    static var serialBits: Int { 50 }
    static var maxSerial: UInt64 { 0x3_FFFF_FFFF_FFFF }  // 2^50 - 1
    static var sequenceBits: Int { 20 }
    /// 2025-01-01T00:00:00Z.
    static var epochUnixSeconds: UInt64 { 1_735_689_600 }
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

    /// Parses bytes without allocating; `expected` (the caller's own tag) skips building a tag from the bytes.
    @inline(__always)
    static func parse(_ bytes: UnsafeRawBufferPointer, expected: FactoryTag? = nil) -> ClientID? {
        let n = bytes.count
        guard n >= 12, n <= 15, bytes[n - 11] == UInt8(ascii: "-") else { return nil }
        var serial: UInt64 = 0
        for i in (n - 10)..<n {
            guard let v = decode(bytes[i]) else { return nil }
            serial = serial << 5 | UInt64(v)
        }
        let tagLength = n - 11
        var packed: UInt32 = 0
        for i in 0..<tagLength { packed |= UInt32(bytes[i]) << (8 * UInt32(i)) }
        if let expected, expected.packed == packed, Int(expected.length) == tagLength {
            return ClientID(tag: expected, serial: serial)
        }
        guard let tag = FactoryTag(packed: packed, length: tagLength) else { return nil }
        return ClientID(tag: tag, serial: serial)
    }

    /// Crockford base32, lower case: 0-9, a-h, j, k, m, n, p-t, v-z.
    @inline(__always) static func decode(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "h"): return c &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "j"), UInt8(ascii: "k"): return c &- UInt8(ascii: "j") &+ 18
        case UInt8(ascii: "m"), UInt8(ascii: "n"): return c &- UInt8(ascii: "m") &+ 20
        case UInt8(ascii: "p")...UInt8(ascii: "t"): return c &- UInt8(ascii: "p") &+ 22
        case UInt8(ascii: "v")...UInt8(ascii: "z"): return c &- UInt8(ascii: "v") &+ 27
        default: return nil
        }
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
        a.tag == b.tag ? a.serial < b.serial : a.tag.value < b.tag.value
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
