/// A configuration value read the way APF's `generic_get` reads it, but typed: `None` is null, `True`/`False` are
/// booleans, and numbers are numbers (APF kept them as strings, so its staleness check never fired).
public enum ConfigValue: Sendable, Hashable, CustomStringConvertible {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)

    public init(parsing text: String) {
        switch text {
        case "None", "none": self = .null
        case "True", "true": self = .bool(true)
        case "False", "false": self = .bool(false)
        default:
            if let i = ConfigValue.integer(text) {
                self = .integer(i)
            } else if let d = ConfigValue.number(text) {
                self = .number(d)
            } else {
                self = .string(text)
            }
        }
    }

    public var description: String {
        switch self {
        case .null: "None"
        case .bool(let b): b ? "True" : "False"
        case .integer(let i): String(i)
        case .number(let d): String(d)
        case .string(let s): s
        }
    }

    /// Python's `int()` on a config string: optional sign, decimal digits, surrounding blanks allowed.
    static func integer(_ text: String) -> Int? {
        let t = text.trimmingWhitespace()
        guard !t.isEmpty else { return nil }
        var digits = Substring(t)
        if digits.first == "+" || digits.first == "-" { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(t.hasPrefix("+") ? String(t.dropFirst()) : t)
    }

    /// Python's `float()` on a config string, finite values only.
    static func number(_ text: String) -> Double? {
        let t = text.trimmingWhitespace()
        guard !t.isEmpty, t.allSatisfy({ $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }),
            let d = Double(t), d.isFinite
        else { return nil }
        return d
    }

    /// `ConfigParser.getboolean`: 1/yes/true/on and 0/no/false/off, any case.
    static func boolean(_ text: String) -> Bool? {
        switch text.trimmingWhitespace().lowercased() {
        case "1", "yes", "true", "on": true
        case "0", "no", "false", "off": false
        default: nil
        }
    }

    /// True for `None`/`none` (APF's null).
    static func isNone(_ text: String) -> Bool { text == "None" || text == "none" }
}
