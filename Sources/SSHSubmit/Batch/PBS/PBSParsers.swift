import Foundation

/// Parsers for PBS outputs: Torque's `qstat -f` (key = value blocks), PBS Pro / OpenPBS `qstat -f -F json`
/// (with `-x`, finished jobs too), and Torque's `qstat -x` XML. States go through `StateTables.pbs`.
public enum PBSParser {
    /// One job's attributes, as the server printed them.
    public struct Job: Sendable {
        public var id: NativeJobID
        public var attributes: [String: String]
    }

    /// `qsub` prints the new job's ID (`123.server`, or a bare `123` from the Torque-on-SLURM wrappers).
    public static func parseQsub(_ output: String) -> NativeJobID? {
        for line in output.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).reversed() {
            let t = line.trimmingCharacters(in: .whitespaces)
            if let id = NativeJobID(t, system: .pbs) { return id }
        }
        return nil
    }

    /// Torque `qstat -f`: blocks that start with `Job Id: <id>`, then `key = value` lines; deeper-indented lines
    /// continue the previous value.
    public static func parseFull(_ output: String, stats: inout ParseStats) -> [Job] {
        var jobs: [Job] = []
        var current: Job?
        var lastKey: String?
        var attributeIndent: Int?
        func flush() {
            if let c = current { jobs.append(c) }
            current = nil
            lastKey = nil
            attributeIndent = nil
        }
        for rawLine in output.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = Substring(rawLine)
            if line.last == "\r" { line = line.dropLast() }
            if line.hasPrefix("Job Id:") {
                flush()
                stats.rows += 1
                let idText = line.dropFirst("Job Id:".count).trimmingCharacters(in: .whitespaces)
                if let id = NativeJobID(idText, system: .pbs) {
                    current = Job(id: id, attributes: [:])
                } else {
                    stats.malformed += 1
                }
                continue
            }
            guard current != nil, !line.allSatisfy({ $0 == " " || $0 == "\t" }) else { continue }
            let indent = line.prefix { $0 == " " || $0 == "\t" }.reduce(0) { $0 + ($1 == "\t" ? 8 : 1) }
            let body = line.drop { $0 == " " || $0 == "\t" }
            if let a = attributeIndent, indent > a, let key = lastKey {
                current!.attributes[key, default: ""] += body
                continue
            }
            guard let eq = body.range(of: " = ") else {
                if let key = lastKey { current!.attributes[key, default: ""] += body }
                continue
            }
            if attributeIndent == nil { attributeIndent = indent }
            let key = String(body[..<eq.lowerBound])
            current!.attributes[key] = String(body[eq.upperBound...])
            lastKey = key
        }
        flush()
        return jobs
    }

    /// PBS Pro / OpenPBS `qstat -f -F json [-x]`: `{"Jobs": {"<id>": {attributes}}}`; nested objects
    /// (`Resource_List`) are flattened to `Resource_List.walltime`.
    public static func parseJSON(_ output: [UInt8], stats: inout ParseStats) throws(BatchError) -> [Job] {
        let trimmed = output.drop { $0 == 32 || $0 == 10 || $0 == 13 || $0 == 9 }
        if trimmed.isEmpty { return [] }
        guard let root = try? JSONSerialization.jsonObject(with: Data(trimmed)) as? [String: Any] else {
            throw BatchError(.unparsableOutput, "qstat -F json output is not a JSON object", permanent: false)
        }
        guard let jobs = root["Jobs"] as? [String: Any] else { return [] }
        var out: [Job] = []
        for (idText, value) in jobs {
            stats.rows += 1
            guard let id = NativeJobID(idText, system: .pbs), let attrs = value as? [String: Any] else {
                stats.malformed += 1
                continue
            }
            var flat: [String: String] = [:]
            func add(_ prefix: String, _ dict: [String: Any]) {
                for (k, v) in dict {
                    let key = prefix.isEmpty ? k : "\(prefix).\(k)"
                    if let d = v as? [String: Any] { add(key, d) } else { flat[key] = "\(v)" }
                }
            }
            add("", attrs)
            out.append(Job(id: id, attributes: flat))
        }
        return out.sorted { $0.id < $1.id }
    }

    /// Torque `qstat -x` (XML): `<Data><Job><Job_Id>…</Job_Id>…</Job></Data>`; nested elements are flattened.
    public static func parseTorqueXML(_ output: [UInt8], stats: inout ParseStats) throws(BatchError) -> [Job] {
        let trimmed = Array(output.drop { $0 == 32 || $0 == 10 || $0 == 13 || $0 == 9 })
        if trimmed.isEmpty { return [] }
        guard let root = XMLNode.parse(trimmed) else {
            throw BatchError(.unparsableOutput, "qstat -x output is not XML", permanent: false)
        }
        var out: [Job] = []
        for job in root.all("Job") {
            stats.rows += 1
            guard let idText = job.value("Job_Id"), let id = NativeJobID(idText, system: .pbs) else {
                stats.malformed += 1
                continue
            }
            var flat: [String: String] = [:]
            func add(_ prefix: String, _ node: XMLNode) {
                for c in node.children {
                    let key = prefix.isEmpty ? c.name : "\(prefix).\(c.name)"
                    if c.children.isEmpty { flat[key] = c.text } else { add(key, c) }
                }
            }
            add("", job)
            out.append(Job(id: id, attributes: flat))
        }
        return out
    }

    /// A job's normalised status: `job_state` through the table, `exit_status` (Torque) or `Exit_status` (PBS Pro)
    /// for finished jobs, `comment` as the reason.
    public static func status(of job: Job) -> JobStatus? {
        guard let native = job.attributes["job_state"]?.trimmingCharacters(in: .whitespaces), !native.isEmpty else { return nil }
        let exitText = job.attributes["exit_status"] ?? job.attributes["Exit_status"]
        let exit = exitText.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let (state, ending) = StateTables.pbs(native).resolve(exitCode: exit)
        var signal: Int?
        if let e = exit, e > 256, e < 256 + 65 { signal = e - 256 }  // PBS: 256 + signal for jobs killed by a signal
        return JobStatus(state: state, nativeState: native, reason: job.attributes["comment"], exitCode: exit, signal: signal, ending: ending)
    }

    /// Records for jobs whose `Job_Name` is a client ID with `tag` (or every job when `tag` is nil).
    public static func records(_ jobs: [Job], tag: FactoryTag?, source: JobRecord.Source, stats: inout ParseStats) -> [NativeJobID: JobRecord] {
        var out: [NativeJobID: JobRecord] = [:]
        for job in jobs {
            let clientID = job.attributes["Job_Name"].flatMap { ClientID($0.trimmingCharacters(in: .whitespaces)) }
            if let tag, clientID?.tag != tag { stats.foreign += 1; continue }
            guard let status = status(of: job) else { stats.malformed += 1; continue }
            out[job.id] = JobRecord(id: job.id, clientID: clientID, status: status, source: source)
        }
        return out
    }
}
