/// SLURM-specific settings of a target.
public struct SlurmSettings: Sendable {
    /// `--clusters` for a multi-cluster site; nil for the default cluster.
    public var cluster: String?
    /// Largest array to submit (the site's `MaxArraySize` - 1; default 1000).
    public var maxArraySize: Int = 1000
    public init(cluster: String? = nil, maxArraySize: Int = 1000) {
        self.cluster = cluster
        self.maxArraySize = maxArraySize
    }
}

/// The SLURM driver. Commands (LESSONS §4):
///
/// - submit: `sbatch --parsable --job-name=<first client ID> --array=1-N …` with a script on stdin that maps
///   `SLURM_ARRAY_TASK_ID` to each pilot's client ID; task *i* is `<job>_<i>`.
/// - status: `squeue -h -r -t all --me -o '%i|%T|%r|%j'` (kept: rows named with this factory's client IDs), then, in
///   the same round trip, `sacct -X -n -P -o JobID,State,ExitCode,Reason,JobName -j <IDs>` for requested IDs
///   missing from it (at most 100 per call).
/// - cancel: `scancel <IDs>`; "Invalid job id specified" and "already completing or completed" mean gone.
/// - find: the same listing plus `sacct --name=<client IDs> -S <mint time - 1 day>`.
public final class SlurmBackend: BatchBackend {
    public let settings: SlurmSettings
    let core: DriverCore

    public init(runner: any CommandRunner, tag: FactoryTag, settings: SlurmSettings = SlurmSettings(),
                timeouts: BatchTimeouts = BatchTimeouts()) {
        self.settings = settings
        self.core = DriverCore(system: .slurm, runner: runner, tag: tag, timeouts: timeouts)
    }

    public var system: BatchSystem { .slurm }
    public var target: String { core.target }
    public var tag: FactoryTag { core.tag }

    public func prepare(_ queue: QueueSpec) async throws(BatchError) -> PreparedQueue {
        if let c = settings.cluster, !BatchOptions.isName(c) {
            throw BatchError(.invalidOption, "cluster '\(c)' is not a valid name", permanent: true)
        }
        return try await core.prepare(queue)
    }

    var clusterArgs: [String] { settings.cluster.map { ["--clusters=\($0)"] } ?? [] }

    /// The `sbatch` argument vector for one array (without the script, which goes on stdin).
    func sbatchArgv(first: ClientID, count: Int, queue: PreparedQueue) -> [String] {
        let o = queue.spec.options
        var argv = ["sbatch", "--parsable", "--job-name=\(first)", "--array=1-\(count)",
                    "--output=\(queue.logDirectory)/%A_%a.out", "--error=\(queue.logDirectory)/%A_%a.err",
                    "--chdir=\(queue.workDirectory)"]
        if let w = o.walltimeSeconds { argv.append("--time=\((w + 59) / 60)") }
        if let c = o.cores { argv.append("--cpus-per-task=\(c)") }
        if let m = o.memoryMB { argv.append("--mem=\(m)M") }
        if let p = o.partition { argv.append("--partition=\(p)") }
        if let a = o.account { argv.append("--account=\(a)") }
        return argv + clusterArgs + o.extra
    }

    public func submit(_ pilots: [ClientID], to queue: PreparedQueue) async -> [SubmitResult] {
        if let e = core.checkPrepared(queue) { return pilots.map { SubmitResult(clientID: $0, outcome: .failed(e)) } }
        let runs = DriverCore.contiguousRuns(pilots, maxRun: max(1, settings.maxArraySize))
        return await DriverCore.inParallel(runs) { run in await self.submitRun(run, queue: queue) }
    }

    private func submitRun(_ run: [ClientID], queue: PreparedQueue) async -> [SubmitResult] {
        let argv = sbatchArgv(first: run[0], count: run.count, queue: queue)
        let script = Scripts.arrayScript(pilots: run, indexVariable: "SLURM_ARRAY_TASK_ID", launcherPath: queue.launcherPath)
        let outcome: (Int) -> SubmitOutcome
        do throws(BatchError) {
            let r = try await core.direct(argv, stdin: script, timeout: core.timeouts.submit)
            outcome = Self.classifySbatch(r, target: target)
        } catch {
            let o = DriverCore.transportOutcome(error)
            outcome = { _ in o }
        }
        return run.enumerated().map { SubmitResult(clientID: $1, outcome: outcome($0 + 1)) }
    }

    /// Reads `sbatch --parsable`'s answer: per task index, accepted `<job>_<i>`, failed or unknown.
    static func classifySbatch(_ r: HelperOpResult, target: String) -> (Int) -> SubmitOutcome {
        let err = r.stderrText
        if r.exitStatus == 0, let (job, _) = SlurmParser.parseSbatch(r.stdoutText) {
            return { .accepted(.slurm(job, task: Int64($0))) }
        }
        let message = "sbatch exited \(r.exitStatus): \(err.trimmingNewlines.isEmpty ? r.stdoutText.firstLine : err.trimmingNewlines)"
        let outcome: SubmitOutcome
        if r.exitStatus == 0 {
            // Exit 0 without an ID: the job may exist.
            outcome = .unknown(BatchError(.unparsableOutput, "sbatch printed no job ID: \(r.stdoutText.firstLine)", target: target, permanent: false))
        } else if ["Socket timed out", "Zero Bytes were transmitted", "Unexpected message received"].contains(where: err.contains) {
            outcome = .unknown(BatchError(.commandFailed, message, target: target, permanent: false))
        } else if ["Unable to contact slurm controller", "Connection refused", "temporarily", "QOSMax", "AssocMax", "MaxSubmit",
                   "Resource temporarily unavailable", "Slurm temporarily unable"].contains(where: err.contains) {
            outcome = .failed(BatchError(.rejected, message, target: target, permanent: false))
        } else if err.contains("Batch job submission failed") || err.contains("sbatch: error:") || err.contains("invalid option")
                    || err.contains("unrecognized option") {
            outcome = .failed(BatchError(.rejected, message, target: target, permanent: true))
        } else {
            outcome = .unknown(BatchError(.commandFailed, message, target: target, permanent: false))
        }
        return { _ in outcome }
    }

    // MARK: - Status

    var squeueArgv: [String] { ["squeue", "-h", "-r", "-t", "all", "--me", "-o", SlurmLayout.squeueFormat] + clusterArgs }
    var sacctBase: [String] { ["sacct", "-X", "-n", "-P", "-o", SlurmLayout.sacctFields] + clusterArgs }

    public func status(_ ids: [NativeJobID]) async throws(BatchError) -> StatusReport {
        try await core.status(statusPlan(ids))
    }

    func statusPlan(_ ids: [NativeJobID]) -> StatusPlan {
        let wanted = ids.filter { $0.system == .slurm }
        let (tag, target) = (self.tag, self.target)
        return StatusPlan(ops: [
            .exec(squeueArgv),
            .absent(reference: 0, present: .firstFieldPipe, runs: .chunks(DriverCore.idsPerCall), argv: sacctBase + ["-j", "@IDS@"],
                    ids: wanted.map(\.text)),
        ]) { (r) throws(BatchError) in
            try Self.report(listing: r[0], accounting: r[1], requested: wanted, tag: tag, target: target)
        }
    }

    static func report(listing: HelperOpResult, accounting: HelperOpResult, requested: [NativeJobID], tag: FactoryTag,
                       target: String) throws(BatchError) -> StatusReport {
        guard listing.exitStatus == 0 else {
            throw BatchError(.commandFailed, "squeue exited \(listing.exitStatus): \(listing.stderrText.firstLine)", target: target, permanent: false)
        }
        var report = StatusReport(target: target)
        var stats = ParseStats()
        SlurmParser.parse(listing.stdout, layout: .squeue, tag: tag, source: .queue, into: &report.records, stats: &stats)
        let listed = report.records
        var acct: [NativeJobID: JobRecord] = [:]
        SlurmParser.parse(accounting.stdout, layout: .sacct, tag: nil, source: .accounting, into: &acct, stats: &stats)
        let wanted = Set(requested)
        for (id, rec) in acct where listed[id] == nil && wanted.contains(id) { report.records[id] = rec }
        report.malformedRows = stats.malformed
        let missing = requested.contains { listed[$0] == nil }
        if !missing {
            report.accounting = .notQueried
        } else if accounting.stderrText.contains("accounting storage is disabled") {
            report.accounting = .disabled("Slurm accounting storage is disabled")
        } else if accounting.exitStatus != 0 {
            report.accounting = .available
            report.accountingError = BatchError(.commandFailed, "sacct exited \(accounting.exitStatus): \(accounting.stderrText.firstLine)",
                                                target: target, permanent: false)
        } else {
            report.accounting = .available
        }
        report.settle(requested: requested)
        return report
    }

    // MARK: - Cancel

    static let cancelReader = CancelReader(system: .slurm, goneMarkers: ["Invalid job id", "already completing or completed", "Job has already finished"],
                                           acceptedMarkers: [])

    public func cancel(_ ids: [NativeJobID]) async throws(BatchError) -> CancelReport {
        let ids = ids.filter { $0.system == .slurm }
        return try await core.cancel(ids, command: ["scancel"] + clusterArgs, reader: Self.cancelReader, plan: statusPlan(ids))
    }

    // MARK: - Find

    public func find(_ clientIDs: [ClientID]) async throws(BatchError) -> [ClientID: JobRecord] {
        let ours = clientIDs.filter { $0.tag == tag }
        guard !ours.isEmpty else { return [:] }
        let since = (ours.map(\.mintedAtUnixSeconds).min() ?? 0) - 86_400
        var ops: [HelperOp] = [.exec(squeueArgv)]
        for chunk in DriverCore.chunks(ours) {
            ops.append(.exec(sacctBase + ["-S", UTCTime.sacct(since), "--name=" + chunk.map(\.description).joined(separator: ",")]))
        }
        let r = try await core.helper.run(ops, timeout: core.timeouts.status)
        guard r[0].exitStatus == 0 else {
            throw BatchError(.commandFailed, "squeue exited \(r[0].exitStatus): \(r[0].stderrText.firstLine)", target: target, permanent: false)
        }
        var records: [NativeJobID: JobRecord] = [:]
        var stats = ParseStats()
        for acct in r.dropFirst() {
            guard acct.exitStatus == 0 else {
                throw BatchError(.commandFailed, "sacct exited \(acct.exitStatus): \(acct.stderrText.firstLine)", target: target, permanent: false)
            }
            SlurmParser.parse(acct.stdout, layout: .sacct, tag: tag, source: .accounting, into: &records, stats: &stats)
        }
        SlurmParser.parse(r[0].stdout, layout: .squeue, tag: tag, source: .queue, into: &records, stats: &stats)
        return Self.byClientID(records.values, wanted: Set(ours))
    }

    static func byClientID(_ records: some Sequence<JobRecord>, wanted: Set<ClientID>) -> [ClientID: JobRecord] {
        var out: [ClientID: JobRecord] = [:]
        for r in records {
            guard let c = r.clientID, wanted.contains(c) else { continue }
            // A live listing beats accounting for the same pilot.
            if let old = out[c], old.source == .queue, r.source == .accounting { continue }
            out[c] = r
        }
        return out
    }
}

/// Time formatting for batch commands, without Foundation's locale machinery.
enum UTCTime {
    /// `YYYY-MM-DDTHH:MM:SS` (UTC) for `sacct -S`.
    static func sacct(_ unix: UInt64) -> String {
        let (y, m, d, hh, mm, ss) = civil(unix)
        return four(y) + "-" + two(m) + "-" + two(d) + "T" + two(hh) + ":" + two(mm) + ":" + two(ss)
    }

    /// `[[CC]YY]MMDDhhmm[.SS]` for `qacct -b`.
    static func qacct(_ unix: UInt64) -> String {
        let (y, m, d, hh, mm, _) = civil(unix)
        return four(y) + two(m) + two(d) + two(hh) + two(mm)
    }

    static func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    static func four(_ v: Int) -> String {
        let s = "\(v)"
        return String(repeating: "0", count: max(0, 4 - s.count)) + s
    }

    /// Days-from-civil inverse (Howard Hinnant's algorithm).
    static func civil(_ unix: UInt64) -> (Int, Int, Int, Int, Int, Int) {
        let secs = Int(unix)
        let days = secs / 86_400
        let rem = secs % 86_400
        let z = days + 719_468
        let era = z / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        return (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
    }
}

