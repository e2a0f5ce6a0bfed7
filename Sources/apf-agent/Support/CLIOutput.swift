import AuthProfiles
import Foundation

/// Printing for the CLI: text tables and key/value blocks on stdout, JSON with `--json`, errors on stderr.
enum CLIOutput {
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func error(_ text: String) {
        FileHandle.standardError.write(Data("apf-agent: error: \(text)\n".utf8))
    }

    static func json<T: Encodable>(_ value: T) throws {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .iso8601
        line(String(decoding: try e.encode(value), as: UTF8.self))
    }

    static func keyValues(_ pairs: [(String, String?)]) {
        let shown = pairs.compactMap { k, v in v.map { (k, $0) } }
        let width = shown.map(\.0.count).max() ?? 0
        for (k, v) in shown { line(k.padding(toLength: width + 2, withPad: " ", startingAt: 0) + v) }
    }

    static func table(_ header: [String], _ rows: [[String]]) {
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func render(_ r: [String]) -> String {
            r.enumerated().map { i, c in i == r.count - 1 ? c : c.padding(toLength: widths[i] + 2, withPad: " ", startingAt: 0) }
                .joined()
        }
        line(render(header))
        for r in rows { line(render(r)) }
    }

    static func date(_ d: Date) -> String { DurationText.date(d) }
}
