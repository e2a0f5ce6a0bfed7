#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// One key of a section after `[DEFAULT]` inheritance, merging, `~` expansion and `%(name)s` interpolation.
public struct ConfigEntry: Sendable, Hashable {
    public var key: String
    /// The value after `~` expansion, before interpolation.
    public var raw: String
    /// The interpolated value; nil when interpolation failed (a diagnostic says why).
    public var value: String?
    /// Where the winning value was written (a `[DEFAULT]` line for an inherited value).
    public var location: ConfigLocation
    /// True when the value comes from the `[DEFAULT]` section of the file.
    public var inherited: Bool
}

/// A section ready for typed validation: every key it has, own or inherited, interpolated.
public struct ResolvedSection: Sendable {
    public var name: String
    public var location: ConfigLocation
    public private(set) var entries: [ConfigEntry] = []
    private var index: [String: Int] = [:]

    public init(name: String, location: ConfigLocation) {
        self.name = name
        self.location = location
    }

    public subscript(key: String) -> ConfigEntry? { index[key].map { entries[$0] } }
    public var keys: [String] { entries.map(\.key) }

    mutating func set(_ e: ConfigEntry) {
        if let i = index[e.key] { entries[i] = e } else {
            index[e.key] = entries.count
            entries.append(e)
        }
    }

    mutating func update(_ key: String, _ body: (inout ConfigEntry) -> Void) {
        guard let i = index[key] else { return }
        body(&entries[i])
    }
}

/// Expands a leading `~` or `~user` like Python's `os.path.expanduser`.
public struct HomeExpander: Sendable {
    public var home: @Sendable () -> String?
    public var userHome: @Sendable (String) -> String?

    public init(home: @escaping @Sendable () -> String?, userHome: @escaping @Sendable (String) -> String?) {
        self.home = home
        self.userHome = userHome
    }

    /// `$HOME`, else the password database; `~user` from the password database.
    public static let system = HomeExpander(
        home: {
            if let h = getenv("HOME") { return String(cString: h) }
            return passwdHome(uid: getuid())
        },
        userHome: { user in passwdHome(name: user) })

    public func expand(_ value: String) -> String {
        guard value.hasPrefix("~") else { return value }
        let rest = value.dropFirst()
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let user = String(rest[..<slash])
        let base = user.isEmpty ? home() : userHome(user)
        guard let base else { return value }
        let tail = rest[slash...]
        if base.hasSuffix("/") && tail.hasPrefix("/") { return base + tail.dropFirst() }
        return base + tail
    }

    private static func passwdHome(uid: uid_t) -> String? {
        guard let pw = getpwuid(uid), let dir = pw.pointee.pw_dir else { return nil }
        return String(cString: dir)
    }

    private static func passwdHome(name: String) -> String? {
        guard let pw = getpwnam(name), let dir = pw.pointee.pw_dir else { return nil }
        return String(cString: dir)
    }
}

/// APF's rules for turning parsed files into sections (APF.md §2.1).
enum SectionResolver {
    /// Every section of `sources` (each parsed alone, so its `[DEFAULT]` reaches only its own sections), merged key
    /// by key with later sources winning, then `~`-expanded and interpolated.
    static func resolve(
        _ sources: [INIDocument], expander: HomeExpander
    ) -> (sections: [ResolvedSection], diagnostics: [ConfigDiagnostic]) {
        var merged: [ResolvedSection] = []
        var index: [String: Int] = [:]
        for doc in sources {
            for section in doc.sections {
                var entries: [ConfigEntry] = []
                for e in section.entries {
                    entries.append(
                        ConfigEntry(key: e.key, raw: e.value, value: nil, location: e.location, inherited: false))
                }
                if let defaults = doc.defaults {
                    for d in defaults.entries where section[d.key] == nil {
                        entries.append(
                            ConfigEntry(key: d.key, raw: d.value, value: nil, location: d.location, inherited: true))
                    }
                }
                let i: Int
                if let existing = index[section.name] {
                    i = existing
                } else {
                    i = merged.count
                    index[section.name] = i
                    merged.append(ResolvedSection(name: section.name, location: section.location))
                }
                for e in entries { merged[i].set(e) }
            }
        }
        var diags: [ConfigDiagnostic] = []
        for i in merged.indices {
            for key in merged[i].keys {
                merged[i].update(key) { $0.raw = expander.expand($0.raw) }
            }
            interpolate(&merged[i], into: &diags)
        }
        return (merged, diags)
    }

    /// Python 2.7 `SafeConfigParser` interpolation: `%(name)s` is replaced by the section's value of `name`
    /// (recursively, at most 10 levels deep), `%%` is a literal `%`; any other `%` is an error.
    static func interpolate(_ section: inout ResolvedSection, into diags: inout [ConfigDiagnostic]) {
        var map: [String: String] = ["__name__": section.name]
        for e in section.entries { map[e.key] = e.raw }
        for key in section.keys {
            guard let entry = section[key] else { continue }
            var out = ""
            if let problem = expand(entry.raw, map: map, depth: 1, into: &out) {
                let where_ = entry.inherited ? "[DEFAULT] " : ""
                let d: ConfigDiagnostic
                switch problem {
                case .missing(let name):
                    d = ConfigDiagnostic(
                        .error, .interpolationMissing, at: entry.location, section: section.name, key: key,
                        value: entry.raw,
                        "\(where_)'\(key)' refers to %(\(name))s, but section [\(section.name)] has no key '\(name)'"
                            + (entry.inherited ? " (set it in [\(section.name)] or in [DEFAULT])" : ""))
                case .syntax(let rest):
                    d = ConfigDiagnostic(
                        .error, .interpolationSyntax, at: entry.location, section: entry.inherited ? "DEFAULT" : section.name,
                        key: key, value: entry.raw,
                        "'%' must be followed by '%' or '(name)s' in '\(key)', found '\(rest.prefix(20))' (write %% for a literal %)"
                    )
                case .depth:
                    d = ConfigDiagnostic(
                        .error, .interpolationDepth, at: entry.location, section: section.name, key: key,
                        value: entry.raw,
                        "'\(key)' refers to itself through %(name)s references (more than 10 levels deep)")
                }
                diags.append(d)
                continue
            }
            section.update(key) { $0.value = out }
        }
    }

    enum Problem {
        case missing(String)
        case syntax(String)
        case depth
    }

    /// Names referenced by `%(name)s` in `raw`.
    static func references(in raw: String) -> [String] {
        var names: [String] = []
        var rest = Substring(raw)
        while let p = rest.firstIndex(of: "%") {
            rest = rest[p...]
            let next = rest.dropFirst().first
            if next == "%" {
                rest = rest.dropFirst(2)
            } else if next == "(", let close = rest.firstIndex(of: ")") {
                let name = rest[rest.index(p, offsetBy: 2)..<close]
                names.append(String(name))
                rest = rest[rest.index(after: close)...]
            } else {
                rest = rest.dropFirst()
            }
        }
        return names
    }

    private static func expand(_ raw: String, map: [String: String], depth: Int, into out: inout String) -> Problem? {
        if depth > 10 { return .depth }
        var rest = Substring(raw)
        while !rest.isEmpty {
            guard let p = rest.firstIndex(of: "%") else {
                out += rest
                return nil
            }
            out += rest[..<p]
            rest = rest[p...]
            let afterPercent = rest.dropFirst()
            if afterPercent.first == "%" {
                out += "%"
                rest = afterPercent.dropFirst()
            } else if afterPercent.first == "(" {
                // %\(([^)]+)\)s
                let nameStart = afterPercent.dropFirst()
                guard let close = nameStart.firstIndex(of: ")"), close > nameStart.startIndex,
                    nameStart[nameStart.index(after: close)...].first == "s"
                else { return .syntax(String(rest)) }
                let name = String(nameStart[..<close])
                rest = nameStart[nameStart.index(close, offsetBy: 2)...]
                guard let v = map[name] else { return .missing(name) }
                if v.contains("%") {
                    if let p = expand(v, map: map, depth: depth + 1, into: &out) { return p }
                } else {
                    out += v
                }
            } else {
                return .syntax(String(rest))
            }
        }
        return nil
    }
}
