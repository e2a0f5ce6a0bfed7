/// Reads one resolved section against a key catalogue: every key is classified once (known, ignored, unknown,
/// or an interpolation variable), every known value is type-checked once, and the builders read typed values.
struct SectionReader {
    let section: ResolvedSection
    let fileKind: ConfigFileKind
    private(set) var diagnostics: [ConfigDiagnostic] = []
    private var typed: [String: ConfigValue] = [:]
    /// Keys whose value failed its type check (the owning queue or profile has an error).
    private(set) var invalid: Set<String> = []

    init(_ section: ResolvedSection, kind: ConfigFileKind, lookup: (String) -> KeyLookup) {
        self.section = section
        self.fileKind = kind
        var referenced: Set<String> = []
        for e in section.entries {
            for name in SectionResolver.references(in: e.raw) { referenced.insert(name) }
        }
        for e in section.entries {
            let diagSection = e.inherited ? "DEFAULT" : section.name
            switch lookup(e.key) {
            case .known(let type):
                guard let v = e.value else {
                    invalid.insert(e.key)  // interpolation failed; already reported
                    continue
                }
                if let typedValue = check(v, type, e, diagSection) {
                    typed[e.key] = typedValue
                } else {
                    invalid.insert(e.key)
                }
            case .ignored(let why):
                if referenced.contains(e.key) { continue }
                diagnostics.append(
                    ConfigDiagnostic(
                        .warning, .ignoredKey, at: e.location, section: diagSection, key: e.key, value: e.raw,
                        "'\(e.key)' is ignored: \(why)"))
            case .unknown(let suggestion):
                // A key that another value refers to with %(key)s is a variable, as APF's configs use them.
                if referenced.contains(e.key) { continue }
                diagnostics.append(
                    ConfigDiagnostic(
                        .warning, .unknownKey, at: e.location, section: diagSection, key: e.key, value: e.raw,
                        "'\(e.key)' is not a known \(kind.rawValue) key and is ignored", suggestion: suggestion))
            }
        }
    }

    private mutating func check(_ v: String, _ type: KeyType, _ e: ConfigEntry, _ sect: String) -> ConfigValue? {
        if ConfigValue.isNone(v) { return .null }
        func bad(_ code: ConfigDiagnostic.Code, _ message: String, choices: [String]? = nil) -> ConfigValue? {
            diagnostics.append(
                ConfigDiagnostic(
                    .error, code, at: e.location, section: sect, key: e.key, value: v,
                    "'\(e.key)' = '\(v)' \(message)", choices: choices))
            return nil
        }
        switch type {
        case .string, .list:
            return .string(v)
        case .name:
            let ok = !v.isEmpty && v.unicodeScalars.allSatisfy { c in
                (c.isASCII && (c.properties.isAlphabetic || c.properties.numericType != nil)) || "._-@+:".unicodeScalars.contains(c)
            }
            return ok ? .string(v) : bad(.badName, "is not a valid name (use letters, digits, '.', '_', '-', '@', '+', ':')")
        case .bool:
            guard let b = ConfigValue.boolean(v) else {
                return bad(.notABoolean, "is not True or False", choices: ["True", "False"])
            }
            return .bool(b)
        case .int(let lo, let hi):
            guard let i = ConfigValue.integer(v) else { return bad(.notANumber, "is not a whole number") }
            if let lo, i < lo { return bad(.outOfRange, "is below the minimum \(lo)") }
            if let hi, i > hi { return bad(.outOfRange, "is above the maximum \(hi)") }
            return .integer(i)
        case .double(let lo, let hi):
            guard let d = ConfigValue.number(v) else { return bad(.notANumber, "is not a number") }
            if let lo, d < lo { return bad(.outOfRange, "is below the minimum \(lo)") }
            if let hi, d > hi { return bad(.outOfRange, "is above the maximum \(hi)") }
            return .number(d)
        case .choice(let choices):
            guard choices.contains(v) else {
                // Case-insensitive match is accepted for lower-case word lists (batch systems, orders).
                if let m = choices.first(where: { $0.lowercased() == v.lowercased() }), m == m.lowercased() {
                    return .string(m)
                }
                return bad(.badChoice, "is not a valid choice", choices: choices)
            }
            return .string(v)
        }
    }

    // MARK: typed access

    func has(_ key: String) -> Bool { section[key] != nil }
    func isInvalid(_ key: String) -> Bool { invalid.contains(key) }
    func entry(_ key: String) -> ConfigEntry? { section[key] }
    func location(_ key: String) -> ConfigLocation { section[key]?.location ?? section.location }
    /// `DEFAULT` for an inherited key, else the section name.
    func sectionName(of key: String) -> String {
        (section[key]?.inherited ?? false) ? "DEFAULT" : section.name
    }

    func string(_ key: String) -> String? {
        if case .string(let s)? = typed[key] { return s }
        return nil
    }

    func int(_ key: String) -> Int? {
        if case .integer(let i)? = typed[key] { return i }
        return nil
    }

    func double(_ key: String) -> Double? {
        switch typed[key] {
        case .number(let d)?: d
        case .integer(let i)?: Double(i)
        default: nil
        }
    }

    func bool(_ key: String) -> Bool? {
        if case .bool(let b)? = typed[key] { return b }
        return nil
    }

    /// A comma-separated list, blanks trimmed, empty items dropped (APF: `[x.strip() for x in s.split(',')]`).
    func list(_ key: String) -> [String]? {
        guard let s = string(key) else { return nil }
        return s.split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
    }

    /// True when the key is present and explicitly `None`.
    func isNull(_ key: String) -> Bool { typed[key] == .null }
}
