public import Foundation

/// Client-side pilot IDs: ULIDs (48-bit millisecond time + 80 random bits, Crockford base32, 26 characters), so
/// they sort by creation time and fit a job name on every batch system.
public enum PilotID {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    public static func make(at time: Date = Date()) -> String {
        var rng = SystemRandomNumberGenerator()
        return make(at: time, using: &rng)
    }

    public static func make(at time: Date, using rng: inout some RandomNumberGenerator) -> String {
        let ms = UInt64(max(0, time.timeIntervalSince1970 * 1000).rounded(.down)) & 0xFFFF_FFFF_FFFF
        var out = [UInt8](repeating: 0, count: 26)
        var t = ms
        for i in stride(from: 9, through: 0, by: -1) {
            out[i] = alphabet[Int(t & 31)]
            t >>= 5
        }
        let hi = rng.next() & 0xFF_FFFF_FFFF  // 40 bits
        let lo = rng.next() & 0xFF_FFFF_FFFF  // 40 bits
        var r = hi
        for i in stride(from: 17, through: 10, by: -1) {
            out[i] = alphabet[Int(r & 31)]
            r >>= 5
        }
        r = lo
        for i in stride(from: 25, through: 18, by: -1) {
            out[i] = alphabet[Int(r & 31)]
            r >>= 5
        }
        return String(decoding: out, as: UTF8.self)
    }
}
