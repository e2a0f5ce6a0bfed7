/// The Grid Engine driver (Son of Grid Engine 8.1; Univa/Altair accept the same commands):
///
/// - submit: `qsub -terse -S /bin/sh -N <first client ID> -t 1-N -o <logs>/ -e <logs>/ …` with a script on stdin
///   that maps `SGE_TASK_ID` to each pilot's client ID; prints `<job>.1-N:1`, task *i* is `<job>.<i>`.
/// - status: `qstat -xml -g d -u <user>` (kept: jobs named with this factory's client IDs), then, in the same round
///   trip, `qacct -j <job>` for each job with requested tasks missing from it.
/// - cancel: `qdel <job.task …>`; "does not exist" means gone.
/// - find: the same listing plus `qacct -b <mint time - 1 day> -j '<tag>-*'`.
///
/// A task deleted while pending never reaches accounting: it is reported as not found.
public final class SGEBackend: BatchBackend {
    let core: DriverCore

    public init(runner: any CommandRunner, tag: FactoryTag, timeouts: BatchTimeouts = BatchTimeouts()) {
        self.core = DriverCore(system: .sge, runner: runner, tag: tag, timeouts: timeouts)
    }

    public var system: BatchSystem { .sge }
    public var target: String { core.target }
    public var tag: FactoryTag { core.tag }

    public func prepare(_ queue: QueueSpec) async throws(BatchError) -> PreparedQueue { try await core.prepare(queue) }

    func qsubArgv(first: ClientID, count: Int, queue: PreparedQueue) -> [String] {
        let o = queue.spec.options
        var argv = ["qsub", "-terse", "-S", "/bin/sh", "-N", first.description, "-t", "1-\(count)",
                    "-o", "\(queue.logDirectory)/", "-e", "\(queue.logDirectory)/", "-wd", queue.workDirectory]
        if let q = o.partition { argv += ["-q", q] }
        if let w = o.walltimeSeconds { argv += ["-l", "h_rt=\(w)"] }
        if let c = o.cores, c > 1, let pe = o.sgeParallelEnvironment { argv += ["-pe", pe, "\(c)"] }
        if let m = o.memoryMB { argv += ["-l", "h_vmem=\(max(1, m / max(1, o.cores ?? 1)))M"] }
        if let a = o.account { argv += ["-A", a] }
        return argv + o.extra
    }

    /// Largest array per submission (SGE's default `max_aj_tasks` is 75000; keep batches moderate).
    static let maxArray = 1000

    public func submit(_ pilots: [ClientID], to queue: PreparedQueue) async -> [SubmitResult] {
        if let e = core.checkPrepared(queue) { return pilots.map { SubmitResult(clientID: $0, outcome: .failed(e)) } }
        let runs = DriverCore.contiguousRuns(pilots, maxRun: Self.maxArray)
        return await DriverCore.inParallel(runs) { run in await self.submitRun(run, queue: queue) }
    }

    private func submitRun(_ run: [ClientID], queue: PreparedQueue) async -> [SubmitResult] {
        let argv = qsubArgv(first: run[0], count: run.count, queue: queue)
        let script = Scripts.arrayScript(pilots: run, indexVariable: "SGE_TASK_ID", launcherPath: queue.launcherPath)
        do throws(BatchError) {
            let r = try await core.direct(argv, stdin: script, timeout: core.timeouts.submit)
            if r.exitStatus == 0, let (job, tasks) = SGEParser.parseQsub(r.stdoutText), let tasks, tasks.count == run.count {
                return zip(run, tasks).map { SubmitResult(clientID: $0, outcome: .accepted(.sge(job, task: $1))) }
            }
            let o = Self.classifyFailure(r, target: target)
            return run.map { SubmitResult(clientID: $0, outcome: o) }
        } catch {
            let o = DriverCore.transportOutcome(error)
            return run.map { SubmitResult(clientID: $0, outcome: o) }
        }
    }

    static func classifyFailure(_ r: HelperOpResult, target: String) -> SubmitOutcome {
        let err = r.stderrText.trimmingNewlines
        let message = "qsub exited \(r.exitStatus): \(err.isEmpty ? r.stdoutText.firstLine : err)"
        if r.exitStatus == 0 {
            return .unknown(BatchError(.unparsableOutput, "qsub -terse printed no array job ID: \(r.stdoutText.firstLine)", target: target, permanent: false))
        }
        if ["unable to contact qmaster", "cannot reach qmaster", "commlib error", "unable to send message to qmaster"].contains(where: err.contains) {
            return .failed(BatchError(.rejected, message, target: target, permanent: false))
        }
        if ["Unable to run job", "job rejected", "denied", "Unknown option", "invalid option", "ERROR! invalid", "unknown resource",
            "is lower than minimum user id"].contains(where: err.contains) {
            return .failed(BatchError(.rejected, message, target: target, permanent: true))
        }
        return .unknown(BatchError(.commandFailed, message, target: target, permanent: false))
    }

    // MARK: - Status

    func qstatArgv(user: String) -> [String] { ["qstat", "-xml", "-g", "d", "-u", user] }

    public func status(_ ids: [NativeJobID]) async throws(BatchError) -> StatusReport {
        try await core.status(statusPlan(ids))
    }

    func statusPlan(_ ids: [NativeJobID]) async throws(BatchError) -> StatusPlan {
        let wanted = ids.filter { $0.system == .sge }
        let (_, user) = try await core.probe()
        let (tag, target) = (self.tag, self.target)
        return StatusPlan(ops: [
            .exec(qstatArgv(user: user)),
            .absent(reference: 0, present: .sgeXML, runs: .each, argv: ["qacct", "-j", "@ID@"], ids: wanted.map(\.text)),
        ]) { (r) throws(BatchError) in
            try Self.report(listing: r[0], accounting: r[1], requested: wanted, tag: tag, target: target)
        }
    }

    static func report(listing: HelperOpResult, accounting: HelperOpResult, requested wanted: [NativeJobID], tag: FactoryTag,
                       target: String) throws(BatchError) -> StatusReport {
        guard listing.exitStatus == 0 else {
            throw BatchError(.commandFailed, "qstat exited \(listing.exitStatus): \(listing.stderrText.firstLine)", target: target, permanent: false)
        }
        var stats = ParseStats()
        var report = StatusReport(target: target)
        report.records = try SGEParser.parseQstatXML(listing.stdout, tag: tag, stats: &stats)
        let listed = report.records
        let asked = Set(wanted)
        let acct = SGEParser.parseQacct(accounting.stdoutText, tag: nil, stats: &stats)
        for (id, rec) in acct where listed[id] == nil && asked.contains(id) { report.records[id] = rec }
        report.malformedRows = stats.malformed
        if !wanted.contains(where: { listed[$0] == nil }) {
            report.accounting = .notQueried
        } else {
            report.accounting = .available
            let problems = accounting.stderrText.split(separator: "\n").filter { !$0.contains("not found") && !$0.isEmpty }
            if accounting.exitStatus != 0, !problems.isEmpty {
                report.accountingError = BatchError(.commandFailed, "qacct exited \(accounting.exitStatus): \(problems[0])", target: target,
                                                    permanent: false)
            }
        }
        report.settle(requested: wanted)
        return report
    }

    // MARK: - Cancel

    static let cancelReader = CancelReader(system: .sge, goneMarkers: ["does not exist", "has already been deleted", "already finished"],
                                           acceptedMarkers: ["has registered the job", "has deleted job", "for deletion"],
                                           rewrites: [("\" task \"", ".")])

    public func cancel(_ ids: [NativeJobID]) async throws(BatchError) -> CancelReport {
        let ids = ids.filter { $0.system == .sge }
        return try await core.cancel(ids, command: ["qdel"], reader: Self.cancelReader, plan: try await statusPlan(ids))
    }

    // MARK: - Find

    public func find(_ clientIDs: [ClientID]) async throws(BatchError) -> [ClientID: JobRecord] {
        let ours = clientIDs.filter { $0.tag == tag }
        guard !ours.isEmpty else { return [:] }
        let (_, user) = try await core.probe()
        let since = (ours.map(\.mintedAtUnixSeconds).min() ?? 0) - 86_400
        let r = try await core.helper.run([
            .exec(qstatArgv(user: user)),
            .exec(["qacct", "-b", UTCTime.qacct(since), "-j", "\(tag)-*"]),
        ], timeout: core.timeouts.status)
        guard r[0].exitStatus == 0 else {
            throw BatchError(.commandFailed, "qstat exited \(r[0].exitStatus): \(r[0].stderrText.firstLine)", target: target, permanent: false)
        }
        var stats = ParseStats()
        var records = SGEParser.parseQacct(r[1].stdoutText, tag: tag, stats: &stats)
        records.merge(try SGEParser.parseQstatXML(r[0].stdout, tag: tag, stats: &stats)) { $1 }
        return SlurmBackend.byClientID(records.values, wanted: Set(ours))
    }
}
