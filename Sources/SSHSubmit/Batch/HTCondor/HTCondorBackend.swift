/// The HTCondor driver (a schedd reached through a login node, or locally):
///
/// - submit: `condor_submit -terse` with the description on stdin: one `queue 1` per pilot with its own
///   `environment` and `+APFClientID`, all in one cluster; prints `C.0 - C.N`.
/// - status: `condor_q -json -attributes … -constraint 'APFFactoryTag == "<tag>"'`, then, in the same round trip,
///   `condor_history -json` constrained to this factory's requested jobs missing from it, with `-limit` = their
///   count (history is never scanned unbounded).
/// - cancel: `condor_rm <cluster.proc …>`; "not found" means gone.
/// - find: both, constrained on `stringListMember(APFClientID, "<ids>")`.
public final class HTCondorBackend: BatchBackend {
    let core: DriverCore

    public init(runner: any CommandRunner, tag: FactoryTag, timeouts: BatchTimeouts = BatchTimeouts()) {
        self.core = DriverCore(system: .htcondor, runner: runner, tag: tag, timeouts: timeouts)
    }

    public var system: BatchSystem { .htcondor }
    public var target: String { core.target }
    public var tag: FactoryTag { core.tag }

    public func prepare(_ queue: QueueSpec) async throws(BatchError) -> PreparedQueue { try await core.prepare(queue) }

    static let attributes = ["ClusterId", "ProcId", "JobStatus", "ExitCode", "ExitBySignal", "ExitSignal", "HoldReason",
                             "HoldReasonCode", "RemoveReason", HTCondorParser.clientIDAttribute].joined(separator: ",")

    /// A ClassAd string literal.
    static func classAdString(_ s: String) -> String {
        "\"" + s.replacingAll("\\", with: "\\\\").replacingAll("\"", with: "\\\"") + "\""
    }

    /// The submit description: shared settings, then per pilot its client ID and `queue 1`.
    func description(_ pilots: [ClientID], queue: PreparedQueue) -> [UInt8] {
        let o = queue.spec.options
        var lines = [
            "# apf-agent: \(pilots.count) pilots of queue \(queue.spec.name)",
            "universe = vanilla",
            "executable = \(queue.launcherPath)",
            "transfer_executable = false",
            "should_transfer_files = IF_NEEDED",
            "initialdir = \(queue.workDirectory)",
            "output = \(queue.logDirectory)/$(Cluster).$(Process).out",
            "error = \(queue.logDirectory)/$(Cluster).$(Process).err",
            "log = \(queue.logDirectory)/condor-\(pilots[0]).log",
            "+\(HTCondorParser.tagAttribute) = \(Self.classAdString(tag.value))",
            "+APFFactory = \(Self.classAdString(queue.spec.factory))",
            "+APFQueue = \(Self.classAdString(queue.spec.name))",
            "+MATCH_APF_QUEUE = \(Self.classAdString(queue.spec.name))",
        ]
        if let c = o.cores { lines.append("request_cpus = \(c)") }
        if let m = o.memoryMB { lines.append("request_memory = \(m)") }
        if let a = o.account { lines.append("accounting_group = \(a)") }
        if let w = o.walltimeSeconds {
            lines.append("periodic_remove = (JobStatus == 2) && ((time() - EnteredCurrentStatus) > \(w))")
        }
        lines += o.extra
        for id in pilots {
            lines.append("+\(HTCondorParser.clientIDAttribute) = \(Self.classAdString(id.description))")
            lines.append("environment = \"APF_CLIENT_ID=\(id)\"")
            lines.append("queue 1")
        }
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    public func submit(_ pilots: [ClientID], to queue: PreparedQueue) async -> [SubmitResult] {
        if let e = core.checkPrepared(queue) { return pilots.map { SubmitResult(clientID: $0, outcome: .failed(e)) } }
        guard !pilots.isEmpty else { return [] }
        do throws(BatchError) {
            let r = try await core.direct(["condor_submit", "-terse"], stdin: description(pilots, queue: queue), timeout: core.timeouts.submit)
            if r.exitStatus == 0, let (cluster, procs) = HTCondorParser.parseSubmit(r.stdoutText), procs.count == pilots.count {
                return zip(pilots, procs).map { SubmitResult(clientID: $0, outcome: .accepted(.htcondor(cluster, $1))) }
            }
            let o = Self.classifyFailure(r, target: target)
            return pilots.map { SubmitResult(clientID: $0, outcome: o) }
        } catch {
            let o = DriverCore.transportOutcome(error)
            return pilots.map { SubmitResult(clientID: $0, outcome: o) }
        }
    }

    static func classifyFailure(_ r: HelperOpResult, target: String) -> SubmitOutcome {
        let err = (r.stderrText + r.stdoutText).trimmingNewlines
        let first = err.split(separator: "\n").first { $0.contains("ERROR") }.map(String.init) ?? err.firstLine
        let message = "condor_submit exited \(r.exitStatus): \(first)"
        if r.exitStatus == 0 {
            return .unknown(BatchError(.unparsableOutput, "condor_submit -terse printed no job range: \(r.stdoutText.firstLine)", target: target,
                                       permanent: false))
        }
        if ["Failed to connect", "Can't find address", "connect to local queue manager", "SECMAN"].contains(where: err.contains) {
            return .failed(BatchError(.rejected, message, target: target, permanent: false))
        }
        if ["Parse error", "does not exist", "No 'executable'", "don't know about", "ERROR: "].contains(where: err.contains) {
            return .failed(BatchError(.rejected, message, target: target, permanent: true))
        }
        return .unknown(BatchError(.commandFailed, message, target: target, permanent: false))
    }

    // MARK: - Status

    var tagConstraint: String { "\(HTCondorParser.tagAttribute) == \(Self.classAdString(tag.value))" }

    public func status(_ ids: [NativeJobID]) async throws(BatchError) -> StatusReport {
        try await core.status(statusPlan(ids))
    }

    func statusPlan(_ ids: [NativeJobID]) -> StatusPlan {
        let wanted = ids.filter { $0.system == .htcondor && $0.task != nil }
        let (tag, target) = (self.tag, self.target)
        return StatusPlan(ops: [
            .exec(["condor_q", "-json", "-attributes", Self.attributes, "-constraint", tagConstraint]),
            .absent(reference: 0, present: .condorJSON, runs: .chunks(DriverCore.idsPerCall),
                    argv: ["condor_history", "-json", "-attributes", Self.attributes, "-constraint", "(\(tagConstraint)) && (@CONDORIDS@)",
                           "-limit", "@N@"],
                    ids: wanted.map(\.text)),
        ]) { (r) throws(BatchError) in
            try Self.report(listing: r[0], history: r[1], requested: wanted, tag: tag, target: target)
        }
    }

    static func report(listing: HelperOpResult, history: HelperOpResult, requested wanted: [NativeJobID], tag: FactoryTag,
                       target: String) throws(BatchError) -> StatusReport {
        guard listing.exitStatus == 0 else {
            throw BatchError(.commandFailed, "condor_q exited \(listing.exitStatus): \(listing.stderrText.firstLine)", target: target, permanent: false)
        }
        var stats = ParseStats()
        var report = StatusReport(target: target)
        report.records = HTCondorParser.records(try HTCondorParser.parseJSON(listing.stdout), tag: tag, source: .queue, stats: &stats)
        let listed = report.records
        if !wanted.contains(where: { listed[$0] == nil }) {
            report.accounting = .notQueried
        } else if history.exitStatus != 0 {
            report.accounting = .available
            report.accountingError = BatchError(.commandFailed, "condor_history exited \(history.exitStatus): \(history.stderrText.firstLine)",
                                                target: target, permanent: false)
        } else {
            report.accounting = .available
            let asked = Set(wanted)
            // condor_history prints one JSON array per run (chunk); parse each.
            for chunk in Self.splitJSONArrays(history.stdout) {
                let hist = HTCondorParser.records(try HTCondorParser.parseJSON(chunk), tag: tag, source: .accounting, stats: &stats)
                for (id, rec) in hist where listed[id] == nil && asked.contains(id) { report.records[id] = rec }
            }
        }
        report.malformedRows = stats.malformed
        report.settle(requested: wanted)
        return report
    }

    /// Concatenated `-json` outputs (`[...]` `[...]`), split at top-level array ends (strings respected).
    static func splitJSONArrays(_ bytes: [UInt8]) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var depth = 0
        var inString = false
        var escaped = false
        var start: Int?
        for (i, c) in bytes.enumerated() {
            if inString {
                if escaped { escaped = false } else if c == UInt8(ascii: "\\") { escaped = true } else if c == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch c {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                if depth == 0 { start = i }
                depth += 1
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                depth -= 1
                if depth == 0, let s = start { out.append(Array(bytes[s...i])); start = nil }
            default: break
            }
        }
        return out
    }

    // MARK: - Cancel

    static let cancelReader = CancelReader(system: .htcondor, goneMarkers: ["not found", "Couldn't find", "already marked for removal",
                                                                            "already been removed"],
                                           acceptedMarkers: ["marked for removal"])

    public func cancel(_ ids: [NativeJobID]) async throws(BatchError) -> CancelReport {
        let ids = ids.filter { $0.system == .htcondor }
        return try await core.cancel(ids, command: ["condor_rm"], reader: Self.cancelReader, plan: statusPlan(ids))
    }

    // MARK: - Find

    public func find(_ clientIDs: [ClientID]) async throws(BatchError) -> [ClientID: JobRecord] {
        let ours = clientIDs.filter { $0.tag == tag }
        guard !ours.isEmpty else { return [:] }
        var ops: [HelperOp] = []
        for chunk in DriverCore.chunks(ours) {
            let c = "(\(tagConstraint)) && stringListMember(\(HTCondorParser.clientIDAttribute), \(Self.classAdString(chunk.map(\.description).joined(separator: ","))))"
            ops.append(.exec(["condor_q", "-json", "-attributes", Self.attributes, "-constraint", c]))
            ops.append(.exec(["condor_history", "-json", "-attributes", Self.attributes, "-constraint", c, "-limit", "\(chunk.count)"]))
        }
        let r = try await core.helper.run(ops, timeout: core.timeouts.status)
        var records: [NativeJobID: JobRecord] = [:]
        var stats = ParseStats()
        for (i, op) in r.enumerated() {
            guard op.exitStatus == 0 else {
                throw BatchError(.commandFailed, "\(i % 2 == 0 ? "condor_q" : "condor_history") exited \(op.exitStatus): \(op.stderrText.firstLine)",
                                 target: target, permanent: false)
            }
            let source: JobRecord.Source = i % 2 == 0 ? .queue : .accounting
            for (id, rec) in HTCondorParser.records(try HTCondorParser.parseJSON(op.stdout), tag: tag, source: source, stats: &stats)
            where records[id]?.source != .queue {
                records[id] = rec
            }
        }
        return SlurmBackend.byClientID(records.values, wanted: Set(ours))
    }
}
