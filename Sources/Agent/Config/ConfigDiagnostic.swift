/// Where a configuration value came from: a file and a 1-based line.
public struct ConfigLocation: Sendable, Hashable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int

    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    public var description: String { "\(file):\(line)" }
}

/// One finding of the configuration checker: an error (the queue or profile cannot run) or a warning.
///
/// Every diagnostic names its file and line, and, where they apply, the section, the key, the bad value and the
/// valid choices, so that an operator can fix it without reading the source. Equal by code and location.
public struct ConfigDiagnostic: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable, Codable {
        case error
        case warning
    }

    /// A stable identifier such as `config.unknown-key`; an extensible set of static members, never a growing enum.
    public struct Code: Hashable, Sendable, Codable, CustomStringConvertible {
        public let id: String
        public init(_ id: String) { self.id = id }
        public var description: String { id }

        public init(from decoder: any Decoder) throws { id = try decoder.singleValueContainer().decode(String.self) }
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.singleValueContainer()
            try c.encode(id)
        }

        // Reading files.
        public static let unreadable = Code("config.unreadable")
        public static let syntax = Code("config.syntax")
        public static let missingSectionHeader = Code("config.missing-section-header")
        public static let duplicateKey = Code("config.duplicate-key")
        public static let interpolationMissing = Code("config.interpolation-missing-key")
        public static let interpolationSyntax = Code("config.interpolation-syntax")
        public static let interpolationDepth = Code("config.interpolation-depth")
        public static let oldFormat = Code("config.apf1-format")
        public static let notRead = Code("config.file-not-read")
        // Keys and values.
        public static let unknownKey = Code("config.unknown-key")
        public static let ignoredKey = Code("config.ignored-key")
        public static let missingKey = Code("config.missing-key")
        public static let notANumber = Code("config.not-a-number")
        public static let notABoolean = Code("config.not-a-boolean")
        public static let outOfRange = Code("config.out-of-range")
        public static let badChoice = Code("config.bad-choice")
        public static let badName = Code("config.bad-name")
        public static let conflict = Code("config.conflict")
        // Plugins.
        public static let unknownPlugin = Code("config.unknown-plugin")
        public static let notSupportedYet = Code("config.not-supported-yet")
        public static let removedPlugin = Code("config.removed-plugin")
        public static let chainBlocks = Code("config.chain-blocks")
        public static let passThrough = Code("config.step-passes-through")
        // References between files.
        public static let unknownProfile = Code("config.unknown-profile")
        public static let wrongProfileKind = Code("config.wrong-profile-kind")
        public static let crossTenant = Code("config.cross-tenant")
        public static let unknownMonitor = Code("config.unknown-monitor-section")
        public static let noQueues = Code("config.no-queues")
        public static let keyType = Code("config.key-type")
    }

    public var severity: Severity
    public var code: Code
    public var file: String
    public var line: Int
    /// The INI section (`DEFAULT` for a value written in the DEFAULT section), when the finding concerns one.
    public var section: String?
    public var key: String?
    public var value: String?
    public var message: String
    /// The valid values or names, when the set is closed.
    public var choices: [String]?
    /// The nearest valid key or name (edit distance), for unknown words.
    public var suggestion: String?

    public init(
        _ severity: Severity, _ code: Code, at location: ConfigLocation, section: String? = nil, key: String? = nil,
        value: String? = nil, _ message: String, choices: [String]? = nil, suggestion: String? = nil
    ) {
        self.severity = severity
        self.code = code
        self.file = location.file
        self.line = location.line
        self.section = section
        self.key = key
        self.value = value
        self.message = message
        self.choices = choices
        self.suggestion = suggestion
    }

    public var location: ConfigLocation { ConfigLocation(file: file, line: line) }
    public var isError: Bool { severity == .error }

    /// `queues.conf:41: error: [config.unknown-key] [Q] 'x' ...; did you mean 'y'? (valid: a, b)`
    public var description: String {
        var s = "\(file):\(line): \(severity.rawValue): [\(code.id)] "
        if let section { s += "[\(section)] " }
        s += message
        if let suggestion { s += "; did you mean '\(suggestion)'?" }
        if let choices, !choices.isEmpty { s += " (valid: \(choices.joined(separator: ", ")))" }
        return s
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.code == b.code && a.file == b.file && a.line == b.line && a.section == b.section && a.key == b.key
            && a.message == b.message
    }

    public func hash(into h: inout Hasher) {
        h.combine(code)
        h.combine(file)
        h.combine(line)
        h.combine(section)
        h.combine(key)
        h.combine(message)
    }
}

/// A configuration that cannot be used, thrown by APIs that need a valid one (e.g. the chain simulator).
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [ConfigDiagnostic]

    public init(_ diagnostics: [ConfigDiagnostic]) { self.diagnostics = diagnostics }

    public var description: String {
        diagnostics.filter(\.isError).map(\.description).joined(separator: "\n")
    }
}

/// Collects diagnostics, dropping repeats: a bad value written once in `[DEFAULT]` is reported once, not once per
/// section that inherits it.
struct DiagnosticSink {
    private(set) var all: [ConfigDiagnostic] = []
    private var seen: Set<ConfigDiagnostic> = []

    mutating func add(_ d: ConfigDiagnostic) {
        if seen.insert(d).inserted { all.append(d) }
    }

    mutating func add(contentsOf ds: [ConfigDiagnostic]) {
        for d in ds { add(d) }
    }

    var errors: [ConfigDiagnostic] { all.filter(\.isError) }
    var warnings: [ConfigDiagnostic] { all.filter { !$0.isError } }
}
