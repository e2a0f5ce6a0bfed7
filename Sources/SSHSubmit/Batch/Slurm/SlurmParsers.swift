import Foundation

/// Where the fields are in a delimited SLURM listing (`squeue -o`/`-O`, `sacct -P`). Rows with another field count
/// are rejected and counted, never re-aligned (a trailing empty field, as `-O 'X:\x1F,'` prints, is allowed).
public struct SlurmLayout: Sendable {
    public var separator: UInt8
    public var fieldCount: Int
    public var id: Int
    public var state: Int
    public var reason: Int?
    public var exitCode: Int?
    public var name: Int?
    /// The last field (the job name, in the agent's own formats) may contain the separator: other users' job
    /// names cannot shift our columns.
    public var lastFieldAbsorbs: Bool
    /// Lines to skip first (a header).
    public var headerLines: Int

    public init(separator: UInt8 = UInt8(ascii: "|"), fieldCount: Int, id: Int, state: Int, reason: Int? = nil,
                exitCode: Int? = nil, name: Int? = nil, lastFieldAbsorbs: Bool = false, headerLines: Int = 0) {
        self.separator = separator
        self.fieldCount = fieldCount
        self.id = id
        self.state = state
        self.reason = reason
        self.exitCode = exitCode
        self.name = name
        self.lastFieldAbsorbs = lastFieldAbsorbs
        self.headerLines = headerLines
    }

    /// `squeue -h -r -t all --me -o '%i|%T|%r|%j'`.
    public static let squeueFormat = "%i|%T|%r|%j"
    public static let squeue = SlurmLayout(fieldCount: 4, id: 0, state: 1, reason: 2, name: 3, lastFieldAbsorbs: true)
    /// `sacct -X -n -P -o JobID,State,ExitCode,Reason,JobName`.
    public static let sacctFields = "JobID,State,ExitCode,Reason,JobName"
    public static let sacct = SlurmLayout(fieldCount: 5, id: 0, state: 1, reason: 3, exitCode: 2, name: 4, lastFieldAbsorbs: true)
}

/// Counters of one parse.
public struct ParseStats: Sendable, Equatable {
    public var rows = 0
    public var malformed = 0
    public var foreign = 0
    public init() {}
}

/// Parsers for SLURM's machine-readable outputs. They work on bytes, allocate nothing per row for known states and
/// IDs, and map states through `StateTables.slurm`.
public enum SlurmParser {
    /// Parses a delimited listing into `records`.
    ///
    /// - Parameters:
    ///   - tag: keep only rows whose job name is a client ID with this tag (the squeue listing); nil keeps all rows
    ///     (sacct answers for IDs we asked for).
    ///   - source: recorded on each record.
    public static func parse(_ output: [UInt8], layout: SlurmLayout, tag: FactoryTag?, source: JobRecord.Source,
                             into records: inout [NativeJobID: JobRecord], stats: inout ParseStats) {
        output.withUnsafeBytes { parse($0, layout: layout, tag: tag, source: source, into: &records, stats: &stats) }
    }

    public static func parse(_ buf: UnsafeRawBufferPointer, layout: SlurmLayout, tag: FactoryTag?, source: JobRecord.Source,
                             into records: inout [NativeJobID: JobRecord], stats: inout ParseStats) {
        let n = buf.count
        var starts = [Int](repeating: 0, count: layout.fieldCount + 2)
        var ends = [Int](repeating: 0, count: layout.fieldCount + 2)
        var lineStart = 0
        var lineNo = 0
        let sep = layout.separator
        let lastIndex = layout.fieldCount - 1
        while lineStart < n {
            var lineEnd = lineStart
            while lineEnd < n, buf[lineEnd] != 10 { lineEnd += 1 }
            defer { lineStart = lineEnd + 1; lineNo += 1 }
            var end = lineEnd
            if end > lineStart, buf[end - 1] == 13 { end -= 1 }
            if lineNo < layout.headerLines || end == lineStart { continue }
            stats.rows += 1
            // Split into fields.
            var count = 0
            var fieldStart = lineStart
            var i = lineStart
            var overflow = false
            while i < end {
                if buf[i] == sep, !(layout.lastFieldAbsorbs && count == lastIndex) {
                    if count > layout.fieldCount { overflow = true; break }
                    starts[count] = fieldStart
                    ends[count] = i
                    count += 1
                    fieldStart = i + 1
                }
                i += 1
            }
            if !overflow, count <= layout.fieldCount {
                starts[count] = fieldStart
                ends[count] = end
                count += 1
            } else {
                overflow = true
            }
            if overflow || !(count == layout.fieldCount || (count == layout.fieldCount + 1 && starts[count - 1] == ends[count - 1])) {
                stats.malformed += 1
                continue
            }
            let idField = UnsafeRawBufferPointer(rebasing: buf[starts[layout.id]..<ends[layout.id]])
            guard let parsedID = NativeJobID.parseSlurm(idField) else {
                stats.malformed += 1
                continue
            }
            var clientID: ClientID?
            if let nameIndex = layout.name {
                let nameField = UnsafeRawBufferPointer(rebasing: buf[starts[nameIndex]..<ends[nameIndex]])
                clientID = ClientID.parse(nameField)
                if let tag, clientID?.tag != tag {
                    stats.foreign += 1
                    continue
                }
            } else if tag != nil {
                stats.foreign += 1
                continue
            }
            let stateField = UnsafeRawBufferPointer(rebasing: buf[starts[layout.state]..<ends[layout.state]])
            var exit: (Int?, Int?) = (nil, nil)
            if let e = layout.exitCode {
                exit = parseExitCode(UnsafeRawBufferPointer(rebasing: buf[starts[e]..<ends[e]]))
            }
            var reason: String?
            if let r = layout.reason {
                reason = reasonText(UnsafeRawBufferPointer(rebasing: buf[starts[r]..<ends[r]]))
            }
            let status = self.status(state: stateField, reason: reason, exitCode: exit.0, signal: exit.1)
            switch parsedID {
            case .single(let id):
                records[id] = JobRecord(id: id, clientID: taskClientID(clientID, task: id.task), status: status, source: source)
            case .step(let id):
                if records[id] == nil {
                    records[id] = JobRecord(id: id, clientID: taskClientID(clientID, task: id.task), status: status, source: source)
                }
            case .range(let job, let tasks):
                for t in tasks {
                    let id = NativeJobID.slurm(job, task: t)
                    records[id] = JobRecord(id: id, clientID: taskClientID(clientID, task: t), status: status, source: source)
                }
            }
        }
    }

    /// An array job is named after its first pilot's client ID; task `t` (1-based) carries `first + (t - 1)`.
    @inline(__always)
    static func taskClientID(_ first: ClientID?, task: Int64?) -> ClientID? {
        guard let first else { return nil }
        guard let task else { return first }
        return task >= 1 ? first.advanced(by: Int(task - 1)) : nil
    }

    /// `2:0` → (2, nil); `0:15` → (0, 15); empty → (nil, nil).
    @inline(__always)
    static func parseExitCode(_ b: UnsafeRawBufferPointer) -> (Int?, Int?) {
        var i = 0
        guard let code = NativeJobID.digits(b, &i), code.1 > 0 else { return (nil, nil) }
        var signal: Int?
        if i < b.count, b[i] == UInt8(ascii: ":") {
            i += 1
            if let s = NativeJobID.digits(b, &i), s.1 > 0, s.0 != 0 { signal = Int(s.0) }
        }
        return (Int(code.0), signal)
    }

    @inline(__always)
    static func reasonText(_ b: UnsafeRawBufferPointer) -> String? {
        if b.isEmpty { return nil }
        if b.count == 4, b[0] == UInt8(ascii: "N"), b[1] == UInt8(ascii: "o"), b[2] == UInt8(ascii: "n"), b[3] == UInt8(ascii: "e") {
            return nil
        }
        return String(decoding: b, as: UTF8.self)
    }

    /// Maps a state field (`CANCELLED by 1001` counts as `CANCELLED`) through the table.
    static func status(state: UnsafeRawBufferPointer, reason: String?, exitCode: Int?, signal: Int?) -> JobStatus {
        var len = state.count
        // "CANCELLED by <uid>": keep the state word only.
        for i in 0..<len where state[i] == UInt8(ascii: " ") { len = i; break }
        let word = UnsafeRawBufferPointer(rebasing: state[0..<len])
        let (mapping, native) = SlurmStateLookup.shared.lookup(word)
        let (s, ending) = mapping.resolve(exitCode: exitCode)
        return JobStatus(state: s, nativeState: native, reason: reason, exitCode: exitCode, signal: signal, ending: ending)
    }

    // MARK: - sbatch

    /// `sbatch --parsable` prints `<id>` or `<id>;<cluster>`, possibly after warnings on other lines. Returns the
    /// job and cluster, or nil when no line has that shape.
    public static func parseSbatch(_ output: String) -> (job: UInt64, cluster: String?)? {
        for line in output.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).reversed() {
            let parts = line.split(separator: ";", maxSplits: 1)
            guard let first = parts.first, !first.isEmpty, first.allSatisfy(\.isASCIIDigit), let job = UInt64(first) else { continue }
            return (job, parts.count > 1 ? String(parts[1]) : nil)
        }
        return nil
    }

    // MARK: - squeue --json / sacct --json

    /// Parses `squeue --json` (and slurmrestd's `/jobs`): `job_state` is a string before 23.11 and a list after,
    /// `exit_code` an integer or an object. Keeps rows named with `tag`'s client IDs when `tag` is given.
    public static func parseJSON(_ output: [UInt8], tag: FactoryTag?, source: JobRecord.Source,
                                 into records: inout [NativeJobID: JobRecord], stats: inout ParseStats) throws(BatchError) {
        guard let root = try? JSONSerialization.jsonObject(with: Data(output)) as? [String: Any] else {
            throw BatchError(.unparsableOutput, "squeue --json output is not a JSON object", permanent: false)
        }
        if let errors = root["errors"] as? [[String: Any]], !errors.isEmpty {
            let text = errors.compactMap { $0["description"] as? String ?? $0["error"] as? String }.joined(separator: "; ")
            throw BatchError(.commandFailed, "squeue --json reported errors: \(text)", permanent: false)
        }
        guard let jobs = root["jobs"] as? [[String: Any]] else {
            throw BatchError(.unparsableOutput, "squeue --json output has no 'jobs' list", permanent: false)
        }
        for job in jobs {
            stats.rows += 1
            guard let jobID = number(job["job_id"]) else { stats.malformed += 1; continue }
            var id = NativeJobID.slurm(UInt64(jobID))
            if let parent = number(job["array_job_id"]), parent > 0, let task = number(job["array_task_id"]) {
                id = .slurm(UInt64(parent), task: Int64(task))
            } else if let array = job["array"] as? [String: Any], let parent = number(array["job_id"]), parent > 0,
                      let task = number(array["task_id"]) {
                id = .slurm(UInt64(parent), task: Int64(task))  // sacct --json / slurmdbd records
            }
            let name = job["name"] as? String
            var clientID = name.flatMap(ClientID.init)
            if let tag, clientID?.tag != tag { stats.foreign += 1; continue }
            clientID = taskClientID(clientID, task: id.task)
            let stateText: String?
            if let s = job["job_state"] as? String { stateText = s } else if let list = job["job_state"] as? [String] { stateText = list.first } else {
                stateText = (job["state"] as? [String: Any])?["current"].flatMap { ($0 as? [String])?.first ?? ($0 as? String) }
            }
            guard let stateText else { stats.malformed += 1; continue }
            var exitCode: Int?
            var signal: Int?
            if let code = number(job["exit_code"]) {
                exitCode = code  // 22.05 prints the raw wait status's exit part
            } else if let obj = job["exit_code"] as? [String: Any] {
                exitCode = number(obj["return_code"])
                if let sig = (obj["signal"] as? [String: Any]).flatMap({ number($0["id"]) }), sig != 0 { signal = sig }
            }
            var reason = job["state_reason"] as? String ?? (job["state"] as? [String: Any])?["reason"] as? String
            if reason == "None" { reason = nil }
            var status: JobStatus = Array(stateText.utf8).withUnsafeBytes { self.status(state: $0, reason: reason, exitCode: exitCode, signal: signal) }
            if status.nativeState.isEmpty { status.nativeState = stateText }
            records[id] = JobRecord(id: id, clientID: clientID, status: status, source: source)
        }
    }

    /// An integer, or slurmrestd's `{"set": true, "number": N}`.
    static func number(_ any: Any?) -> Int? {
        if let n = any as? NSNumber { return n.intValue }
        if let o = any as? [String: Any], (o["set"] as? Bool) ?? true, let n = o["number"] as? NSNumber { return n.intValue }
        return nil
    }
}

/// The SLURM state table as a byte-keyed lookup, so the parser needs no String per row for known states.
final class SlurmStateLookup: Sendable {
    static let shared = SlurmStateLookup()

    private struct Entry: Sendable {
        let bytes: [UInt8]
        let mapping: StateMapping
        let native: String
    }
    // Open addressing over a small power-of-two table, keyed by length and the first bytes.
    private let slots: [Entry?]
    private let mask: Int

    init() {
        let size = 128
        var slots = [Entry?](repeating: nil, count: size)
        for (name, mapping) in StateTables.slurm {
            let bytes = Array(name.utf8)
            var h = bytes.withUnsafeBytes { Self.hash($0) } & (size - 1)
            while slots[h] != nil { h = (h + 1) & (size - 1) }
            slots[h] = Entry(bytes: bytes, mapping: mapping, native: name)
        }
        self.slots = slots
        self.mask = size - 1
    }

    @inline(__always)
    static func hash(_ b: UnsafeRawBufferPointer) -> Int {
        var h: UInt64 = 14_695_981_039_346_656_037
        for c in b { h = (h ^ UInt64(c)) &* 1_099_511_628_211 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// The mapping and the canonical native text; unknown states map to `unknown` with their own text.
    @inline(__always)
    func lookup(_ b: UnsafeRawBufferPointer) -> (StateMapping, String) {
        var h = Self.hash(b) & mask
        while let e = slots[h] {
            if e.bytes.count == b.count, e.bytes.withUnsafeBytes({ memcmp($0.baseAddress!, b.baseAddress!, b.count) == 0 }) {
                return (e.mapping, e.native)
            }
            h = (h + 1) & mask
        }
        return (StateMapping(.unknown), String(decoding: b, as: UTF8.self))
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
