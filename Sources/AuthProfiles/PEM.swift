import Foundation

/// One `-----BEGIN X-----` … `-----END X-----` block, with RFC 1421 headers (`Proc-Type`, `DEK-Info`) if any.
struct PEMBlock: Sendable {
    var label: String
    var headers: [String: String]
    var der: [UInt8]
}

enum PEM {
    /// All PEM blocks of a file, in order; text outside blocks is ignored (proxies often carry none, OpenSSL's
    /// `Bag Attributes` lines or tool output). Throws `malformedPEM` naming the file when a block is broken.
    static func blocks(_ bytes: [UInt8], source: String) throws(AuthError) -> [PEMBlock] {
        let text = String(decoding: bytes, as: UTF8.self)
        var out: [PEMBlock] = []
        var label: String?
        var headers: [String: String] = [:]
        var body = ""
        var inHeaders = false
        var lineNo = 0
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" }) {
            lineNo += 1
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if let current = label {
                if line.hasPrefix("-----END ") {
                    guard line == "-----END \(current)-----" else {
                        throw .input(.malformedPEM, "\(source) line \(lineNo): '\(line.prefix(60))' does not close "
                                         + "'BEGIN \(current)'; the file is damaged or truncated. Fix: export it again")
                    }
                    guard let der = Data(base64Encoded: body), !der.isEmpty else {
                        throw .input(.malformedPEM, "\(source): the \(current) block ending at line \(lineNo) is not "
                                         + "valid base64; the file is damaged. Fix: export it again")
                    }
                    out.append(PEMBlock(label: current, headers: headers, der: Array(der)))
                    label = nil
                    continue
                }
                if inHeaders, line.contains(":"), !line.hasPrefix("-") {
                    let parts = line.split(separator: ":", maxSplits: 1)
                    headers[String(parts[0]).trimmingCharacters(in: .whitespaces)] =
                        parts.count > 1 ? String(parts[1]).trimmingCharacters(in: .whitespaces) : ""
                    continue
                }
                inHeaders = false
                body += line
            } else if line.hasPrefix("-----BEGIN "), line.hasSuffix("-----") {
                label = String(line.dropFirst(11).dropLast(5))
                headers = [:]
                body = ""
                inHeaders = true
            }
        }
        if let label {
            throw .input(.malformedPEM, "\(source): the \(label) block has no END line; the file is truncated. Fix: "
                             + "copy or export it again")
        }
        return out
    }

    static func encode(label: String, der: [UInt8], lineLength: Int = 64) -> String {
        let b64 = Data(der).base64EncodedString()
        var lines: [Substring] = []
        var rest = Substring(b64)
        while !rest.isEmpty {
            lines.append(rest.prefix(lineLength))
            rest = rest.dropFirst(lineLength)
        }
        return "-----BEGIN \(label)-----\n" + lines.joined(separator: "\n") + "\n-----END \(label)-----\n"
    }
}
