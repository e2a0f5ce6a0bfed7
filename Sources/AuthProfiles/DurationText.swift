public import Foundation

/// Durations as operators write them (`6h`, `30m`, `1h30m`, `2d`, `90s`, `90`) and as messages show them.
public enum DurationText {
    /// Parses `<n><unit>…` with units d, h, m, s; a bare number means seconds.
    public static func parse(_ text: String, option: String) throws(AuthError) -> Int {
        let s = text.trimmingCharacters(in: .whitespaces)
        if let n = Int(s), n >= 0 { return n }
        var total = 0
        var number = ""
        var sawUnit = false
        for ch in s {
            if ch.isASCII, ch.isNumber {
                number.append(ch)
                continue
            }
            let unit: Int
            switch ch {
            case "d": unit = 86_400
            case "h": unit = 3_600
            case "m": unit = 60
            case "s": unit = 1
            default: throw bad(text, option)
            }
            guard let n = Int(number) else { throw bad(text, option) }
            let (product, overflow) = n.multipliedReportingOverflow(by: unit)
            guard !overflow else { throw bad(text, option) }
            total += product
            number = ""
            sawUnit = true
        }
        guard sawUnit, number.isEmpty else { throw bad(text, option) }
        return total
    }

    private static func bad(_ text: String, _ option: String) -> AuthError {
        .input(.badValue, "\(option) '\(text.prefix(40))' is not a duration: write e.g. 6h, 30m, 1h30m, 2d or 90s")
    }

    /// "3d 4h", "5h 59m", "4m 10s", "12s": two most significant units.
    public static func format(seconds: Int) -> String {
        var s = abs(seconds)
        let d = s / 86_400; s %= 86_400
        let h = s / 3_600; s %= 3_600
        let m = s / 60; s %= 60
        let parts: [(Int, String)] = [(d, "d"), (h, "h"), (m, "m"), (s, "s")]
        let used = parts.drop(while: { $0.0 == 0 }).prefix(2).filter { $0.0 > 0 }
        if used.isEmpty { return "0s" }
        return used.map { "\($0.0)\($0.1)" }.joined(separator: " ")
    }

    /// ISO 8601 UTC to the second, e.g. 2025-03-01T12:00:00Z.
    public static func date(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }

    /// "expires in 5h 59m (at …)" or "EXPIRED at … (2h ago)".
    public static func expiry(_ notAfter: Date, now: Date) -> String {
        let left = Int(notAfter.timeIntervalSince(now).rounded(.down))
        if left <= 0 { return "EXPIRED at \(date(notAfter)) (\(format(seconds: -left)) ago)" }
        return "expires in \(format(seconds: left)) (at \(date(notAfter)))"
    }
}
