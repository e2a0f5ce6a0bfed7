/// Which PBS: the two differ in options and in what `qstat` can show (LESSONS §4: `-x` means "finished jobs" in
/// PBS Pro but "XML" in Torque).
public enum PBSFlavor: String, Sendable, Hashable {
    /// Torque (and the Torque-compatible wrappers over SLURM): `qstat -f` key = value blocks; finished jobs stay as
    /// `C` until purged, then vanish (no accounting query).
    case torque
    /// PBS Pro / OpenPBS: `qstat -f -F json -x` also lists finished jobs (`F`) with `Exit_status`.
    case pbspro
}

public struct PBSSettings: Sendable {
    public var flavor: PBSFlavor
    public init(flavor: PBSFlavor = .torque) { self.flavor = flavor }
}

/// The PBS driver (Torque or PBS Pro). Every pilot is its own job, named with its client ID (at most 15
/// characters, as old servers require), all submitted in one round trip through the helper:
///
/// - submit: `qsub -N <client ID> -v APF_CLIENT_ID=<id> -o … -e … [-q] [-l …] [-A] <launcher>` per pilot; the
///   launcher is staged once per queue (the Torque wrappers do not read a script from stdin).
/// - status: `qstat -f <IDs>` (Torque) or `qstat -f -F json -x <IDs>` (PBS Pro), at most 100 IDs per call.
/// - cancel: `qdel <IDs>`; "Unknown Job Id" and "invalid state for job - COMPLETE" mean gone.
/// - find: `qstat -f` of all jobs, kept by `Job_Name`.
public final class PBSBackend: BatchBackend {
    public let settings: PBSSettings
    let core: DriverCore

    public init(runner: any CommandRunner, tag: FactoryTag, settings: PBSSettings = PBSSettings(),
                timeouts: BatchTimeouts = BatchTimeouts()) {
        self.settings = settings
        self.core = DriverCore(system: .pbs, runner: runner, tag: tag, timeouts: timeouts)
    }

    public var system: BatchSystem { .pbs }
    public var target: String { core.target }
    public var tag: FactoryTag { core.tag }

    public func prepare(_ queue: QueueSpec) async throws(BatchError) -> PreparedQueue { try await core.prepare(queue) }

    func qsubArgv(_ id: ClientID, queue: PreparedQueue) -> [String] {
        let o = queue.spec.options
        var argv = ["qsub", "-N", id.description, "-v", "APF_CLIENT_ID=\(id)", "-o", "\(queue.logDirectory)/\(id).out",
                    "-e", "\(queue.logDirectory)/\(id).err"]
        if let q = o.partition { argv += ["-q", q] }
        if let w = o.walltimeSeconds { argv += ["-l", "walltime=\(UTCTime.two(w / 3600)):\(UTCTime.two(w % 3600 / 60)):\(UTCTime.two(w % 60))"] }
        switch settings.flavor {
        case .torque:
            if let c = o.cores { argv += ["-l", "nodes=1:ppn=\(c)"] }
            if let m = o.memoryMB { argv += ["-l", "mem=\(m)mb"] }
        case .pbspro:
            if o.cores != nil || o.memoryMB != nil {
                var select = "select=1:ncpus=\(o.cores ?? 1)"
                if let m = o.memoryMB { select += ":mem=\(m)mb" }
                argv += ["-l", select]
            }
        }
        if let a = o.account { argv += ["-A", a] }
        return argv + o.extra + [queue.launcherPath]
    }

    public func submit(_ pilots: [ClientID], to queue: PreparedQueue) async -> [SubmitResult] {
        if let e = core.checkPrepared(queue) { return pilots.map { SubmitResult(clientID: $0, outcome: .failed(e)) } }
        let ops = pilots.map { HelperOp.exec(qsubArgv($0, queue: queue)) }
        do throws(BatchError) {
            let results = try await core.helper.runIndependent(ops, timeout: core.timeouts.submit)
            return zip(pilots, results).map { SubmitResult(clientID: $0, outcome: Self.classifyQsub($1, target: target)) }
        } catch {
            // Groups already answered are lost with the error; each pilot is then unknown unless nothing ran.
            let o = DriverCore.transportOutcome(error)
            return pilots.map { SubmitResult(clientID: $0, outcome: o) }
        }
    }

    static func classifyQsub(_ r: HelperOpResult, target: String) -> SubmitOutcome {
        if r.exitStatus == 0, let id = PBSParser.parseQsub(r.stdoutText) { return .accepted(id) }
        let err = r.stderrText.trimmingNewlines
        let message = "qsub exited \(r.exitStatus): \(err.isEmpty ? r.stdoutText.firstLine : err)"
        if r.exitStatus == 0 {
            return .unknown(BatchError(.unparsableOutput, "qsub printed no job ID: \(r.stdoutText.firstLine)", target: target, permanent: false))
        }
        if ["timed out", "Socket timed out", "End of File", "Zero Bytes were transmitted"].contains(where: err.contains) {
            return .unknown(BatchError(.commandFailed, message, target: target, permanent: false))
        }
        if ["cannot connect to server", "Connection refused", "Unable to contact slurm controller", "temporarily",
            "Maximum number of jobs", "would exceed", "QOSMax", "MaxSubmit"].contains(where: err.contains) {
            return .failed(BatchError(.rejected, message, target: target, permanent: false))
        }
        if ["Unknown queue", "Bad UID", "illegal", "invalid", "Invalid", "Unauthorized", "not authorized", "Job rejected",
            "qsub: submit error", "Unknown resource", "usage:", "Batch job submission failed"].contains(where: err.contains) {
            return .failed(BatchError(.rejected, message, target: target, permanent: true))
        }
        return .unknown(BatchError(.commandFailed, message, target: target, permanent: false))
    }

    // MARK: - Status

    var qstatBase: [String] {
        switch settings.flavor {
        case .torque: return ["qstat", "-f"]
        case .pbspro: return ["qstat", "-f", "-F", "json", "-x"]
        }
    }

    static let unknownJobMarkers = ["Unknown Job Id", "Unknown job id", "Job has finished", "does not exist", "Invalid job id"]

    public func status(_ ids: [NativeJobID]) async throws(BatchError) -> StatusReport {
        try await core.status(statusPlan(ids))
    }

    func statusPlan(_ ids: [NativeJobID]) -> StatusPlan {
        let wanted = ids.filter { $0.system == .pbs }
        let chunks = DriverCore.chunks(wanted)
        let (flavor, target) = (settings.flavor, self.target)
        return StatusPlan(ops: chunks.map { .exec(qstatBase + $0.map(\.text)) }) { (results) throws(BatchError) in
            try Self.report(results, requested: wanted, flavor: flavor, target: target)
        }
    }

    static func report(_ results: [HelperOpResult], requested wanted: [NativeJobID], flavor: PBSFlavor,
                       target: String) throws(BatchError) -> StatusReport {
        var report = StatusReport(target: target)
        report.accounting = flavor == .torque ? .unsupported : .available
        var stats = ParseStats()
        for r in results {
            // qstat exits non-zero when any ID is unknown (153 in Torque, 35 in PBS Pro for finished jobs without -x)
            // and still prints the others; anything else is a failed listing.
            let otherErrors = r.stderrText.split(separator: "\n").filter { line in !Self.unknownJobMarkers.contains(where: line.contains) }
            if r.exitStatus != 0, !otherErrors.isEmpty {
                throw BatchError(.commandFailed, "qstat exited \(r.exitStatus): \(otherErrors[0])", target: target, permanent: false)
            }
            let jobs = try parse(r.stdout, flavor: flavor, stats: &stats)
            report.records.merge(PBSParser.records(jobs, tag: nil, source: .queue, stats: &stats)) { $1 }
        }
        let asked = Set(wanted)
        report.records = report.records.filter { asked.contains($0.key) }
        if flavor == .pbspro {
            for (id, r) in report.records where r.status.nativeState == "F" { report.records[id]?.source = .accounting }
        }
        report.malformedRows = stats.malformed
        report.settle(requested: wanted)
        return report
    }

    static func parse(_ out: [UInt8], flavor: PBSFlavor, stats: inout ParseStats) throws(BatchError) -> [PBSParser.Job] {
        switch flavor {
        case .torque: return PBSParser.parseFull(String(decoding: out, as: UTF8.self), stats: &stats)
        case .pbspro: return try PBSParser.parseJSON(out, stats: &stats)
        }
    }

    // MARK: - Cancel

    static let cancelReader = CancelReader(system: .pbs, goneMarkers: ["Unknown Job Id", "Unknown job id", "invalid state for job - COMPLETE",
                                                                       "Job has finished", "already completing or completed", "Invalid job id",
                                                                       "does not exist"],
                                           acceptedMarkers: [])

    public func cancel(_ ids: [NativeJobID]) async throws(BatchError) -> CancelReport {
        let ids = ids.filter { $0.system == .pbs }
        return try await core.cancel(ids, command: ["qdel"], reader: Self.cancelReader, plan: statusPlan(ids))
    }

    // MARK: - Find

    public func find(_ clientIDs: [ClientID]) async throws(BatchError) -> [ClientID: JobRecord] {
        let ours = Set(clientIDs.filter { $0.tag == tag })
        guard !ours.isEmpty else { return [:] }
        let r = try await core.helper.run([.exec(qstatBase)], timeout: core.timeouts.status)[0]
        guard r.exitStatus == 0 else {
            throw BatchError(.commandFailed, "qstat exited \(r.exitStatus): \(r.stderrText.firstLine)", target: target, permanent: false)
        }
        var stats = ParseStats()
        let records = PBSParser.records(try Self.parse(r.stdout, flavor: settings.flavor, stats: &stats), tag: tag, source: .queue, stats: &stats)
        return SlurmBackend.byClientID(records.values, wanted: ours)
    }
}

