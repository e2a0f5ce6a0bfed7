/// One `key = value` line of an INI file, with its raw (uninterpolated) value.
public struct INIEntry: Sendable, Hashable {
    public var key: String
    /// The value as written: inline `;` comments removed, continuation lines joined with "\n".
    public var value: String
    public var location: ConfigLocation

    public init(key: String, value: String, location: ConfigLocation) {
        self.key = key
        self.value = value
        self.location = location
    }
}

/// A `[name]` section with its entries in file order (a repeated key keeps its last value, as in Python).
public struct INISection: Sendable, Hashable {
    public var name: String
    public var location: ConfigLocation
    public private(set) var entries: [INIEntry] = []
    private var index: [String: Int] = [:]

    public init(name: String, location: ConfigLocation) {
        self.name = name
        self.location = location
    }

    public subscript(key: String) -> INIEntry? { index[key].map { entries[$0] } }

    public var keys: [String] { entries.map(\.key) }

    /// Sets or replaces a key; a replaced key keeps its original position.
    public mutating func set(_ entry: INIEntry) {
        if let i = index[entry.key] {
            entries[i] = entry
        } else {
            index[entry.key] = entries.count
            entries.append(entry)
        }
    }

    mutating func appendContinuation(_ text: String, to key: String) {
        guard let i = index[key] else { return }
        entries[i].value += "\n" + text
    }
}

/// A parsed INI file (or several files parsed together, like APF's `queues.d/`), before inheritance.
///
/// Parsing follows Python 2.7's `ConfigParser` as APF used it (`optionxform = str`, so keys are case-sensitive):
/// lines starting with `#` or `;` (or the word `rem`) are comments; an indented line continues the previous value;
/// `key = value` or `key: value`; an inline comment is ` ;` (a semicolon after whitespace); `""` means empty; a
/// section or key given twice merges, the later value winning.
public struct INIDocument: Sendable {
    /// The files this document was read from, in order.
    public var files: [String]
    /// The `[DEFAULT]` section, inherited by every other section of this document.
    public var defaults: INISection?
    /// The other sections in order of first appearance.
    public private(set) var sections: [INISection] = []
    private var sectionIndex: [String: Int] = [:]

    public init(files: [String]) { self.files = files }

    public subscript(section name: String) -> INISection? { sectionIndex[name].map { sections[$0] } }

    public var sectionNames: [String] { sections.map(\.name) }

    mutating func withSection(
        _ name: String, at location: ConfigLocation, _ body: (inout INISection) -> Void
    ) {
        if name == "DEFAULT" {
            var s = defaults ?? INISection(name: "DEFAULT", location: location)
            body(&s)
            defaults = s
            return
        }
        if let i = sectionIndex[name] {
            body(&sections[i])
        } else {
            var s = INISection(name: name, location: location)
            body(&s)
            sectionIndex[name] = sections.count
            sections.append(s)
        }
    }

    /// Parses `text` as the file `file` into a new document.
    public static func parse(_ text: String, file: String) -> (INIDocument, [ConfigDiagnostic]) {
        var doc = INIDocument(files: [file])
        let diags = doc.read(text, file: file)
        return (doc, diags)
    }

    /// Reads one more file into this document (files read together share one `[DEFAULT]`, like Python's
    /// `ConfigParser.read([files])`). Returns the syntax problems found; parsing continues past them.
    public mutating func read(_ text: String, file: String) -> [ConfigDiagnostic] {
        if !files.contains(file) { files.append(file) }
        var diags: [ConfigDiagnostic] = []
        var current: String?
        var currentKey: String?
        var reportedMissingHeader = false
        var lineNumber = 0
        for rawLine in Self.lines(of: text) {
            lineNumber += 1
            let line = rawLine
            let loc = ConfigLocation(file: file, line: lineNumber)
            let trimmed = line.trimmingWhitespace()
            guard let first = line.unicodeScalars.first else { continue }
            if trimmed.isEmpty || first == "#" || first == ";" { continue }
            if first == "r" || first == "R",
                trimmed.split(whereSeparator: { $0 == " " || $0 == "\t" }).first?.lowercased() == "rem"
            {
                continue
            }
            // Continuation: an indented line after a key.
            if first == " " || first == "\t", let section = current, let key = currentKey {
                withSection(section, at: loc) { $0.appendContinuation(trimmed, to: key) }
                continue
            }
            if first == "[", let close = line.firstIndex(of: "]"), close > line.index(after: line.startIndex) {
                let name = String(line[line.index(after: line.startIndex)..<close])
                current = name
                currentKey = nil
                withSection(name, at: loc) { _ in }
                continue
            }
            guard let section = current else {
                if !reportedMissingHeader {
                    diags.append(
                        ConfigDiagnostic(
                            .error, .missingSectionHeader, at: loc,
                            "'\(trimmed)' comes before any [section] header; the file must start with a section such as [DEFAULT]"
                        ))
                    reportedMissingHeader = true
                }
                continue
            }
            guard let (key, value) = Self.splitOption(line) else {
                diags.append(
                    ConfigDiagnostic(
                        .error, .syntax, at: loc, section: section,
                        "cannot parse '\(trimmed)': expected 'key = value', a [section] header or a # comment"
                            + (first == " " || first == "\t" ? " (an indented line continues a value only after a key)" : "")))
                continue
            }
            var duplicate: INIEntry?
            withSection(section, at: loc) { s in
                duplicate = s[key]
                s.set(INIEntry(key: key, value: value, location: loc))
            }
            if let duplicate, duplicate.location.file == file {
                diags.append(
                    ConfigDiagnostic(
                        .warning, .duplicateKey, at: loc, section: section, key: key, value: value,
                        "'\(key)' is set twice in [\(section)] (first at line \(duplicate.location.line)); this later value wins"
                    ))
            }
            currentKey = key
        }
        return diags
    }

    /// Splits text into lines on "\n", "\r\n" or "\r".
    static func lines(of text: String) -> [Substring] {
        var out: [Substring] = []
        var start = text.startIndex
        var i = text.startIndex
        while i < text.endIndex {
            let c = text[i]
            if c == "\n" || c == "\r\n" || c == "\r" {
                out.append(text[start..<i])
                i = text.index(after: i)
                start = i
            } else {
                i = text.index(after: i)
            }
        }
        if start < text.endIndex { out.append(text[start...]) }
        return out
    }

    /// Python's `OPTCRE`: `(?P<option>[^:=\s][^:=]*)\s*(?P<vi>[:=])\s*(?P<value>.*)$`, then the inline-comment rule.
    static func splitOption(_ line: Substring) -> (String, String)? {
        guard let first = line.first, first != ":", first != "=", !first.isWhitespace else { return nil }
        guard let sep = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else { return nil }
        let key = String(line[..<sep]).trimmingTrailingWhitespace()
        var value = Substring(line[line.index(after: sep)...])
        if let semi = value.firstIndex(of: ";"), semi > value.startIndex,
            value[value.index(before: semi)].isWhitespace
        {
            value = value[..<semi]
        }
        var v = String(value).trimmingWhitespace()
        if v == "\"\"" { v = "" }
        return (key, v)
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }

    func trimmingTrailingWhitespace() -> String {
        var s = Substring(self)
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
