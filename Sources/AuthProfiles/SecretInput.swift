import Foundation

extension Secret {
    /// Reads a secret from standard input (all of it, up to 64 KiB), dropping one trailing newline, so both
    /// `printf %s "$S" |` and `echo "$S" |` work. Never from argv.
    public static func readStandardInput(what: String) throws(AuthError) -> Secret {
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .input(.missingSecret, "cannot read the \(what) from standard input")
            }
            if n == 0 { break }
            bytes += buf[0..<n]
            if bytes.count > 65_536 { throw .input(.badValue, "the \(what) on standard input is larger than 64 KiB") }
        }
        return Secret(bytes: trimNewline(bytes))
    }

    /// Reads a secret from a file (its permissions must not let group or others read it).
    public static func readFile(_ path: String, what: String) throws(AuthError) -> Secret {
        try SecureFile.requireNotGroupOrWorldReadable(path, what: what)
        return Secret(bytes: trimNewline(try SecureFile.readInput(path, what: what, maxBytes: 65_536)))
    }

    static func trimNewline(_ bytes: [UInt8]) -> [UInt8] {
        var b = bytes
        if b.last == 0x0A { b.removeLast() }
        if b.last == 0x0D { b.removeLast() }
        return b
    }
}
