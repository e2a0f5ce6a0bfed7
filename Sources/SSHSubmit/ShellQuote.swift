/// POSIX `sh` quoting for remote command lines.
///
/// The SSH protocol carries one command string, which the remote login shell parses. Every argument is rendered
/// with single quotes (`'` becomes `'\''`), so quotes, `$`, backticks, `;`, globs, newlines and any UTF-8 arrive
/// byte for byte. Arguments made only of safe characters stay bare for readable logs. The login shell must be
/// POSIX-compatible (sh, bash, dash, ksh, zsh); csh-family login shells are not supported.
public enum ShellQuote {
    public static func quote(_ argument: String) -> String {
        if !argument.isEmpty, argument.utf8.allSatisfy(isSafe) { return argument }
        var out = "'"
        for ch in argument.unicodeScalars {
            if ch == "'" { out += "'\\''" } else { out.unicodeScalars.append(ch) }
        }
        out += "'"
        return out
    }

    /// Renders an argument vector (and optional environment, applied to this command only) as one command line.
    public static func render(
        _ argv: [String], environment: [(String, String)] = [], workingDirectory: String? = nil
    ) throws(SSHError) -> String {
        guard let first = argv.first, !first.isEmpty else {
            throw SSHError(.invalidArgument, "the command's argument vector is empty", retryable: false)
        }
        for arg in argv where arg.utf8.contains(0) {
            throw SSHError(.invalidArgument, "an argument contains a NUL byte, which no remote command can receive",
                           retryable: false)
        }
        var parts: [String] = []
        if let dir = workingDirectory {
            if dir.utf8.contains(0) {
                throw SSHError(.invalidArgument, "the working directory contains a NUL byte", retryable: false)
            }
            parts += ["cd", "--", quote(dir), "&&"]
        }
        for (name, value) in environment {
            guard isValidName(name) else {
                throw SSHError(.invalidArgument,
                               "'\(name)' is not a valid environment variable name ([A-Za-z_][A-Za-z0-9_]*)",
                               retryable: false)
            }
            if value.utf8.contains(0) {
                throw SSHError(.invalidArgument, "the value of \(name) contains a NUL byte", retryable: false)
            }
            parts.append("\(name)=\(quote(value))")
        }
        parts += argv.map(quote)
        return parts.joined(separator: " ")
    }

    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, first == UInt8(ascii: "_") || isAlpha(first) else { return false }
        return name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || isAlpha($0) || isDigit($0) }
    }

    private static func isAlpha(_ c: UInt8) -> Bool { (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "z") }
    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
    private static func isSafe(_ c: UInt8) -> Bool {
        if isAlpha(c) || isDigit(c) { return true }
        switch c {
        case UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "/"), UInt8(ascii: ":"),
             UInt8(ascii: ","), UInt8(ascii: "+"), UInt8(ascii: "@"), UInt8(ascii: "%"):
            return true
        default:
            return false
        }
    }
}
