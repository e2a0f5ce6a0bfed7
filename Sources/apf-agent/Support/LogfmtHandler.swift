import Agent
import Foundation
import Logging
import Synchronization

/// Structured log lines on stderr, one per event, in logfmt: `ts=… level=… label=… msg="…" key=value …` (UTC).
/// Messages are constant and values are metadata (STYLE §8), so lines are easy to filter (journald, grep, Loki).
struct LogfmtHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    private static let lock = Mutex(())

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let m = event.metadata { all.merge(m) { _, new in new } }
        var line = "ts=\(Self.timestamp()) level=\(event.level) label=\(label) msg=\(Self.quote("\(event.message)"))"
        for (k, v) in all.sorted(by: { $0.key < $1.key }) { line += " \(k)=\(Self.quote("\(v)"))" }
        line += "\n"
        Self.lock.withLock { _ in FileHandle.standardError.write(Data(line.utf8)) }
    }

    static func quote(_ s: String) -> String {
        let plain = !s.isEmpty && s.unicodeScalars.allSatisfy { $0.value > 32 && $0.value < 127 && $0 != "\"" && $0 != "=" && $0 != "\\" }
        if plain { return s }
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(c)
            }
        }
        return out + "\""
    }

    static func timestamp() -> String {
        let t = Date().timeIntervalSince1970
        let whole = Date(timeIntervalSince1970: t.rounded(.down))
        let ms = Int((t - t.rounded(.down)) * 1000)
        let base = StatusFormat.time(whole).dropLast()  // yyyy-mm-ddThh:mm:ss
        return base + "." + String(repeating: "0", count: ms < 10 ? 2 : ms < 100 ? 1 : 0) + "\(ms)Z"
    }
}
