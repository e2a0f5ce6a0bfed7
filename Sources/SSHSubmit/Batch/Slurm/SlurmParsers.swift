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
        forEachRow(buf, layout: layout, tag: tag, stats: &stats) { row in
            if row.isStep, records[row.id] != nil { return }
            records[row.id] = SlurmListing.record(row, buf, source: source)
        }
    }

    /// Parses into compact rows that point into the output (no allocation per row): the fastest form, for very large
    /// listings. `SlurmListing.record(at:)` gives the same `JobRecord`s as `parse(_:…into:…)`.
    public static func parseListing(_ output: [UInt8], layout: SlurmLayout, tag: FactoryTag?, source: JobRecord.Source,
                                    capacity: Int = 0) -> SlurmListing {
        var rows: [SlurmListing.Row] = []
        rows.reserveCapacity(capacity)
        var stats = ParseStats()
        output.withUnsafeBytes { buf in
            forEachRow(buf, layout: layout, tag: tag, stats: &stats) { row in
                if row.isStep, rows.last?.id == row.id { return }
                rows.append(row)
            }
        }
        return SlurmListing(bytes: output, rows: rows, stats: stats, source: source)
    }

    @inline(__always)
    static func forEachRow(_ buf: UnsafeRawBufferPointer, layout: SlurmLayout, tag: FactoryTag?, stats: inout ParseStats,
                           _ emit: (SlurmListing.Row) -> Void) {
        let n = buf.count
        guard n > 0, let base = buf.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * (layout.fieldCount + 2)) { fields in
            var lineStart = 0
            var lineNo = 0
            let sep = layout.separator
            let fieldCount = layout.fieldCount
            let lastIndex = fieldCount - 1
            let absorbs = layout.lastFieldAbsorbs
            let lookup = SlurmStateLookup.shared.table
            var lastTag = tag
            var lastName: (length: Int, first: UInt64, last: UInt64, id: ClientID?) = (-1, 0, 0, nil)
            @inline(__always) func field(_ k: Int) -> UnsafeRawBufferPointer {
                UnsafeRawBufferPointer(start: base + fields[2 * k], count: fields[2 * k + 1] - fields[2 * k])
            }
            while lineStart < n {
                // Find the line's end, then its separators (memchr: vectorised in libc).
                let lineEnd: Int
                if let nl = memchr(base + lineStart, 10, n - lineStart) {
                    lineEnd = base.distance(to: nl.assumingMemoryBound(to: UInt8.self))
                } else {
                    lineEnd = n
                }
                var count = 0
                var fieldStart = lineStart
                var overflow = false
                while fieldStart <= lineEnd, !(absorbs && count == lastIndex),
                      let hit = memchr(base + fieldStart, Int32(sep), lineEnd - fieldStart) {
                    let i = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                    if count >= fieldCount { overflow = true; break }
                    fields[2 * count] = fieldStart
                    fields[2 * count + 1] = i
                    count += 1
                    fieldStart = i + 1
                }
                var end = lineEnd
                if end > lineStart, base[end - 1] == 13 { end -= 1 }
                defer { lineStart = lineEnd + 1; lineNo += 1 }
                if lineNo < layout.headerLines || end == lineStart { continue }
                stats.rows += 1
                if !overflow, count <= fieldCount {
                    fields[2 * count] = fieldStart
                    fields[2 * count + 1] = end
                    count += 1
                } else {
                    overflow = true
                }
                if overflow || !(count == fieldCount || (count == fieldCount + 1 && fields[2 * (count - 1)] == fields[2 * (count - 1) + 1])) {
                    stats.malformed += 1
                    continue
                }
                guard let parsedID = NativeJobID.parseSlurm(field(layout.id)) else {
                    stats.malformed += 1
                    continue
                }
                var clientID: ClientID?
                if let nameIndex = layout.name {
                    // An array's tasks are listed together under one name: reuse the previous row's parse.
                    let name = field(nameIndex)
                    let (nf, nl) = name.count <= 16 ? SlurmStateLookup.words(name) : (0, 0)
                    if name.count <= 16, name.count == lastName.length, nf == lastName.first, nl == lastName.last {
                        clientID = lastName.id
                    } else {
                        clientID = ClientID.parse(name, expected: lastTag)
                        lastName = (name.count <= 16 ? name.count : -1, nf, nl, clientID)
                    }
                    if tag == nil, let c = clientID { lastTag = c.tag }  // names repeat: reuse the tag
                    if let tag, clientID?.tag != tag {
                        stats.foreign += 1
                        continue
                    }
                } else if tag != nil {
                    stats.foreign += 1
                    continue
                }
                // "CANCELLED by <uid>": the state word only.
                var stateField = field(layout.state)
                if let space = stateField.firstIndex(of: UInt8(ascii: " ")) { stateField = UnsafeRawBufferPointer(rebasing: stateField[..<space]) }
                let (mapping, nativeIndex) = lookup.lookup(stateField)
                var exit: (Int?, Int?) = (nil, nil)
                if let e = layout.exitCode { exit = parseExitCode(field(e)) }
                var reason = SlurmListing.TextRef.none
                if let r = layout.reason {
                    let f = field(r)
                    let isNone = f.count == 4 && f[0] == UInt8(ascii: "N") && f[1] == UInt8(ascii: "o") && f[2] == UInt8(ascii: "n")
                        && f[3] == UInt8(ascii: "e")
                    if !f.isEmpty, !isNone { reason = .span(fields[2 * r], f.count) }
                }
                let native: SlurmListing.TextRef = nativeIndex.map { .table($0) } ?? .span(fields[2 * layout.state], stateField.count)
                let (state, ending) = mapping.resolve(exitCode: exit.0)
                let exitCode = exit.0.map { Int32(clamping: $0) } ?? Int32.min
                let signal = Int32(clamping: exit.1 ?? 0)
                switch parsedID {
                case .single(let id), .step(let id):
                    var isStep = false
                    if case .step = parsedID { isStep = true }
                    emit(SlurmListing.Row(id: id, clientID: taskClientID(clientID, task: id.task), state: state, ending: ending,
                                          exit: exitCode, signal: signal, native: native, reason: reason, isStep: isStep))
                case .range(let job, let tasks):
                    for t in tasks {
                        emit(SlurmListing.Row(id: .slurm(job, task: t), clientID: taskClientID(clientID, task: t), state: state, ending: ending,
                                              exit: exitCode, signal: signal, native: native, reason: reason, isStep: false))
                    }
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
        var word = state
        if let space = word.firstIndex(of: UInt8(ascii: " ")) { word = UnsafeRawBufferPointer(rebasing: word[..<space]) }
        let lookup = SlurmStateLookup.shared
        let (mapping, index) = lookup.lookup(word)
        let (s, ending) = mapping.resolve(exitCode: exitCode)
        return JobStatus(state: s, nativeState: index.map(lookup.native) ?? String(decoding: word, as: UTF8.self), reason: reason,
                         exitCode: exitCode, signal: signal, ending: ending)
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

    /// The probe table as plain values (no reference counting per lookup): names of at most 16 bytes are compared
    /// exactly by their length and first and last 8 bytes (which then cover every byte).
    struct Table: Sendable {
        let length: [UInt8]  // 0: empty slot
        let first: [UInt64]
        let last: [UInt64]
        let mapping: [StateMapping]
        let mask: Int

        @inline(__always)
        func lookup(_ b: UnsafeRawBufferPointer) -> (StateMapping, Int?) {
            let n = b.count
            guard n > 0, n <= 16 else { return (StateMapping(.unknown), nil) }
            let (f, l) = SlurmStateLookup.words(b)
            var h = SlurmStateLookup.hash(f, l, n) & mask
            while length[h] != 0 {
                if Int(length[h]) == n, first[h] == f, last[h] == l { return (mapping[h], h) }
                h = (h + 1) & mask
            }
            return (StateMapping(.unknown), nil)
        }
    }

    let table: Table
    private let natives: [String]

    init() {
        let size = 128
        var length = [UInt8](repeating: 0, count: size)
        var first = [UInt64](repeating: 0, count: size)
        var last = [UInt64](repeating: 0, count: size)
        var mapping = [StateMapping](repeating: StateMapping(.unknown), count: size)
        var natives = [String](repeating: "", count: size)
        for (name, m) in StateTables.slurm {
            let bytes = Array(name.utf8)
            precondition(!bytes.isEmpty && bytes.count <= 16, "SLURM state names fit the lookup table")
            let (f, l) = bytes.withUnsafeBytes { Self.words($0) }
            var h = Self.hash(f, l, bytes.count) & (size - 1)
            while length[h] != 0 { h = (h + 1) & (size - 1) }
            (length[h], first[h], last[h], mapping[h], natives[h]) = (UInt8(bytes.count), f, l, m, name)
        }
        table = Table(length: length, first: first, last: last, mapping: mapping, mask: size - 1)
        self.natives = natives
    }

    /// The first and last 8 bytes (zero-padded below 8).
    @inline(__always)
    static func words(_ b: UnsafeRawBufferPointer) -> (UInt64, UInt64) {
        let n = b.count
        if n >= 8, let p = b.baseAddress {
            return (p.loadUnaligned(as: UInt64.self), p.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self))
        }
        var first: UInt64 = 0
        for i in 0..<n { first |= UInt64(b[i]) << (8 * UInt64(i)) }
        return (first, 0)
    }

    @inline(__always)
    static func hash(_ first: UInt64, _ last: UInt64, _ n: Int) -> Int {
        let h = (first &* 0x9E37_79B9_7F4A_7C15) ^ (last &* 0xC2B2_AE3D_27D4_EB4F) ^ UInt64(n)
        return Int(truncatingIfNeeded: h ^ (h >> 31))
    }

    func lookup(_ b: UnsafeRawBufferPointer) -> (StateMapping, Int?) { table.lookup(b) }

    func native(_ index: Int) -> String { natives[index] }
}

/// A parsed SLURM listing: the output bytes and one compact, trivially copyable row per job; texts (native state,
/// reason) are references into the table or the bytes, turned into strings only when a record is asked for.
public struct SlurmListing: Sendable {
    public let bytes: [UInt8]
    public let rows: [Row]
    public let stats: ParseStats
    public let source: JobRecord.Source

    /// A text: none, an entry of the state table, or bytes of the output.
    struct TextRef: Sendable {
        var offset: UInt32
        var length: UInt16
        var table: UInt16  // 0xFFFF: not a table entry
        static let none = TextRef(offset: 0, length: 0, table: 0xFFFF)
        static func table(_ i: Int) -> TextRef { TextRef(offset: 0, length: 0, table: UInt16(i)) }
        static func span(_ offset: Int, _ length: Int) -> TextRef { TextRef(offset: UInt32(offset), length: UInt16(clamping: length), table: 0xFFFF) }
    }

    /// One job, trivially copyable (64 bytes).
    public struct Row: Sendable {
        public let id: NativeJobID
        let serial: UInt64
        let tagPacked: UInt32
        let exit: Int32  // Int32.min: none
        let native: TextRef
        let reason: TextRef
        let signal: Int16  // 0: none
        let tagLength: UInt8  // 0: no client ID
        public let state: PilotState
        public let ending: JobEnding?
        let isStep: Bool

        init(id: NativeJobID, clientID: ClientID?, state: PilotState, ending: JobEnding?, exit: Int32, signal: Int32,
             native: TextRef, reason: TextRef, isStep: Bool) {
            self.id = id
            self.serial = clientID?.serial ?? 0
            self.tagPacked = clientID?.tag.packed ?? 0
            self.tagLength = clientID?.tag.length ?? 0
            self.exit = exit
            self.native = native
            self.reason = reason
            self.signal = Int16(clamping: signal)
            self.state = state
            self.ending = ending
            self.isStep = isStep
        }

        public var exitCode: Int? { exit == Int32.min ? nil : Int(exit) }
        public var clientID: ClientID? {
            guard tagLength > 0, let tag = FactoryTag(packed: tagPacked, length: Int(tagLength)) else { return nil }
            return ClientID(tag: tag, serial: serial)
        }
    }

    /// The full record of row `i`.
    public func record(at i: Int) -> JobRecord {
        bytes.withUnsafeBytes { Self.record(rows[i], $0, source: source) }
    }

    /// All rows as records indexed by native ID.
    public func records() -> [NativeJobID: JobRecord] {
        var out: [NativeJobID: JobRecord] = [:]
        out.reserveCapacity(rows.count)
        bytes.withUnsafeBytes { buf in for r in rows { out[r.id] = Self.record(r, buf, source: source) } }
        return out
    }

    static func text(_ ref: TextRef, _ buf: UnsafeRawBufferPointer) -> String? {
        if ref.table != 0xFFFF { return SlurmStateLookup.shared.native(Int(ref.table)) }
        if ref.length == 0 { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: buf[Int(ref.offset)..<Int(ref.offset) + Int(ref.length)]), as: UTF8.self)
    }

    static func record(_ r: Row, _ buf: UnsafeRawBufferPointer, source: JobRecord.Source) -> JobRecord {
        JobRecord(id: r.id, clientID: r.clientID,
                  status: JobStatus(state: r.state, nativeState: text(r.native, buf) ?? "", reason: text(r.reason, buf), exitCode: r.exitCode,
                                    signal: r.signal == 0 ? nil : Int(r.signal), ending: r.ending),
                  source: source)
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
