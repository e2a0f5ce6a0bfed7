import Foundation

/// Parsers for Grid Engine outputs: `qsub -terse`, `qstat -xml` (Son of Grid Engine 8.1; `-g d` lists array tasks
/// one by one, pending ranges are expanded either way) and `qacct -j` records.
public enum SGEParser {
    /// `qsub -terse` prints `614` for a job and `615.1-50:1` for an array. Returns the job and its task IDs.
    public static func parseQsub(_ output: String) -> (job: UInt64, tasks: [Int64]?)? {
        for line in output.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).reversed() {
            let t = line.trimmingCharacters(in: .whitespaces)
            let parts = t.split(separator: ".", maxSplits: 1)
            guard let first = parts.first, first.allSatisfy(\.isASCIIDigit), let job = UInt64(first) else { continue }
            if parts.count == 1 { return (job, nil) }
            guard let tasks = expandTasks(String(parts[1])) else { continue }
            return (job, tasks)
        }
        return nil
    }

    /// `1-10:2`, `3`, `1-3,7` → task numbers.
    static func expandTasks(_ text: String) -> [Int64]? {
        var out: [Int64] = []
        for part in text.split(separator: ",") {
            let stepSplit = part.split(separator: ":", maxSplits: 1)
            let step = stepSplit.count > 1 ? Int64(stepSplit[1]) : 1
            let bounds = stepSplit[0].split(separator: "-", maxSplits: 1)
            guard let step, step > 0, let lo = Int64(bounds[0]) else { return nil }
            let hi = bounds.count > 1 ? Int64(bounds[1]) : lo
            guard let hi, hi >= lo, hi - lo < 1_000_000 else { return nil }
            out.append(contentsOf: stride(from: lo, through: hi, by: Int(step)))
        }
        return out.isEmpty ? nil : out
    }

    /// `qstat -xml`: every `job_list` (running ones under `queue_info`, pending ones under `job_info`). Jobs named
    /// with a client ID of `tag` are kept (all when `tag` is nil); an array task's client ID is `name + (task - 1)`.
    public static func parseQstatXML(_ output: [UInt8], tag: FactoryTag?, stats: inout ParseStats) throws(BatchError) -> [NativeJobID: JobRecord] {
        let trimmed = Array(output.drop { $0 == 32 || $0 == 10 || $0 == 13 || $0 == 9 })
        if trimmed.isEmpty { return [:] }
        guard let root = XMLNode.parse(trimmed) else {
            throw BatchError(.unparsableOutput, "qstat -xml output is not XML", permanent: false)
        }
        var out: [NativeJobID: JobRecord] = [:]
        for job in root.all("job_list") {
            stats.rows += 1
            guard let numberText = job.value("JB_job_number"), let number = UInt64(numberText),
                  let native = job.value("state"), !native.isEmpty
            else {
                stats.malformed += 1
                continue
            }
            let first = job.value("JB_name").flatMap(ClientID.init)
            if let tag, first?.tag != tag { stats.foreign += 1; continue }
            let mapping = StateTables.sge(native)
            let status = JobStatus(state: mapping.state, nativeState: native, reason: nil, ending: mapping.ending)
            let tasks: [Int64?]
            if let t = job.value("tasks"), !t.isEmpty {
                guard let expanded = expandTasks(t) else { stats.malformed += 1; continue }
                tasks = expanded
            } else {
                tasks = [nil]
            }
            for task in tasks {
                let id = NativeJobID.sge(number, task: task)
                out[id] = JobRecord(id: id, clientID: SlurmParser.taskClientID(first, task: task), status: status, source: .queue)
            }
        }
        return out
    }

    /// `qacct -j`: records separated by `=====` lines, `key value` per line. Finished jobs only.
    public static func parseQacct(_ output: String, tag: FactoryTag?, stats: inout ParseStats) -> [NativeJobID: JobRecord] {
        var out: [NativeJobID: JobRecord] = [:]
        var fields: [String: String] = [:]
        func flush() {
            defer { fields = [:] }
            guard !fields.isEmpty else { return }
            stats.rows += 1
            guard let number = fields["jobnumber"].flatMap({ UInt64($0) }) else { stats.malformed += 1; return }
            let task = fields["taskid"].flatMap { Int64($0) }  // "undefined" for plain jobs
            let first = fields["jobname"].flatMap(ClientID.init)
            if let tag, first?.tag != tag { stats.foreign += 1; return }
            let id = NativeJobID.sge(number, task: task)
            out[id] = JobRecord(id: id, clientID: SlurmParser.taskClientID(first, task: task), status: status(qacct: fields), source: .accounting)
        }
        for line in output.split(separator: "\n") {
            if line.hasPrefix("=====") { flush(); continue }
            let key = line.prefix { $0 != " " && $0 != "\t" }
            guard !key.isEmpty else { continue }
            fields[String(key)] = line.dropFirst(key.count).trimmingCharacters(in: .whitespaces)
        }
        flush()
        return out
    }

    /// The qacct table: `failed` 0 and `exit_status` 0 → done; `failed` 0 and another exit status → failed;
    /// `failed` ≠ 0 (the job could not run, or was killed: 100 "assumedly after job" after `qdel` of a running
    /// job) → failed, with the `failed` text as the reason. A job deleted while pending never reaches qacct.
    static func status(qacct f: [String: String]) -> JobStatus {
        let exit = f["exit_status"].flatMap { Int($0.split(separator: " ").first ?? "") }
        let failedText = f["failed"] ?? "0"
        let failedCode = Int(failedText.split(separator: " ").first ?? "0") ?? 0
        let native = "failed=\(failedCode) exit_status=\(exit.map(String.init) ?? "?")"
        if failedCode != 0 {
            var signal: Int?
            if let e = exit, e > 128, e < 128 + 65 { signal = e - 128 }
            return JobStatus(state: .failed, nativeState: native, reason: failedText, exitCode: exit, signal: signal)
        }
        return JobStatus(state: (exit ?? 0) == 0 ? .done : .failed, nativeState: native, reason: nil, exitCode: exit)
    }
}
