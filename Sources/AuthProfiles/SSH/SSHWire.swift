/// SSH wire encoding (RFC 4251 §5): uint32, string, mpint.
struct SSHWireWriter {
    var bytes: [UInt8] = []

    mutating func uint32(_ v: UInt32) {
        bytes += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }
    mutating func string(_ s: [UInt8]) {
        uint32(UInt32(s.count))
        bytes += s
    }
    mutating func string(_ s: String) { string(Array(s.utf8)) }
    /// A non-negative big-endian integer as mpint: no superfluous leading zeros, a zero byte before a set top bit.
    mutating func mpint(_ magnitude: [UInt8]) {
        var m = Array(magnitude.drop(while: { $0 == 0 }))
        if let first = m.first, first & 0x80 != 0 { m.insert(0, at: 0) }
        string(m)
    }
}

struct SSHWireReader {
    let bytes: [UInt8]
    var pos = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - pos }

    mutating func take(_ n: Int) -> [UInt8]? {
        guard n >= 0, pos + n <= bytes.count else { return nil }
        defer { pos += n }
        return Array(bytes[pos..<pos + n])
    }
    mutating func uint32() -> UInt32? {
        guard let b = take(4) else { return nil }
        return b.reduce(0) { $0 << 8 | UInt32($1) }
    }
    mutating func string() -> [UInt8]? {
        guard let n = uint32(), n <= 1 << 24 else { return nil }
        return take(Int(n))
    }
    mutating func text() -> String? { string().map { String(decoding: $0, as: UTF8.self) } }
}
