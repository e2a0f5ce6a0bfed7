import Synchronization

/// Timeouts of a driver's remote calls. Generous by default (LESSONS §10): a slow scheduler is not an outage.
public struct BatchTimeouts: Sendable {
    public var prepare: Duration = .seconds(120)
    public var submit: Duration = .seconds(180)
    public var status: Duration = .seconds(120)
    public var cancel: Duration = .seconds(120)
    public init() {}
}

/// What every driver shares: the command runner, the helper, the factory tag, the target's home directory and user
/// (probed once), and payload staging.
final class DriverCore: Sendable {
    let system: BatchSystem
    let runner: any CommandRunner
    let helper: RemoteHelper
    let tag: FactoryTag
    let timeouts: BatchTimeouts
    private let probed = Mutex<(home: String, user: String)?>(nil)

    /// At most this many IDs per batch command (LESSONS §4).
    static let idsPerCall = 100

    init(system: BatchSystem, runner: any CommandRunner, tag: FactoryTag, timeouts: BatchTimeouts) {
        self.system = system
        self.runner = runner
        self.helper = RemoteHelper(runner: runner)
        self.tag = tag
        self.timeouts = timeouts
    }

    var target: String { runner.target }

    /// The account's home directory and user name on the target (one round trip, then cached).
    func probe() async throws(BatchError) -> (home: String, user: String) {
        if let p = probed.withLock({ $0 }) { return p }
        let r = try await helper.run([.exec(["pwd"]), .exec(["id", "-un"])], timeout: timeouts.prepare)
        let home = r[0].stdoutText.trimmingNewlines
        let user = r[1].stdoutText.trimmingNewlines
        guard r[0].exitStatus == 0, home.hasPrefix("/"), r[1].exitStatus == 0, !user.isEmpty else {
            throw BatchError(.commandFailed, "cannot read the home directory and user name: \(r[0].stderrText)\(r[1].stderrText)",
                             target: target, permanent: false)
        }
        probed.withLock { $0 = (home, user) }
        return (home, user)
    }

    func absolute(_ path: String, home: String) -> String { path.hasPrefix("/") ? path : "\(home)/\(path)" }

    /// Validates the queue and stages its files: payload, then the launcher that runs it.
    func prepare(_ queue: QueueSpec) async throws(BatchError) -> PreparedQueue {
        guard queue.tag == tag else {
            throw BatchError(.invalidOption, "queue \(queue.name) uses tag '\(queue.tag)' but this driver serves '\(tag)'", target: target, permanent: true)
        }
        try queue.options.validate(for: system)
        guard !queue.workDirectory.isEmpty, !queue.workDirectory.utf8.contains(where: { $0 < 32 }) else {
            throw BatchError(.invalidOption, "work directory \(queue.workDirectory.debugDescription) is invalid", permanent: true)
        }
        let (home, _) = try await probe()
        let work = absolute(queue.workDirectory, home: home)
        let logs = "\(work)/logs"
        let name = queue.name
        func staged(_ data: [UInt8], prefix: String, suffix: String, mode: UInt32) async throws(BatchError) -> String {
            let path = try await transport("staging queue \(name)") { () async throws(SSHError) -> String in
                try await self.runner.install(data, directory: work, prefix: prefix, suffix: suffix, mode: mode)
            }
            return absolute(path, home: home)
        }
        try await transport("creating \(logs)") { () async throws(SSHError) in try await self.runner.makeDirectories(logs) }
        var payloadCommand: [String]
        var payloadPaths: [String]
        var environment: [(String, String)] = []
        var arguments: [String] = []
        switch queue.payload {
        case .wrapper(let w):
            guard BatchOptions.isName(w.name), !w.name.hasPrefix(".") else {
                throw BatchError(.invalidOption, "wrapper name '\(w.name)' may contain only letters, digits and . _ - @ +", permanent: true)
            }
            // Check the templates before anything is uploaded.
            for a in w.arguments { _ = try PilotTemplate.parse(a) }
            for (_, v) in w.environment { _ = try PilotTemplate.parse(v) }
            let path = try await staged(w.content, prefix: "\(w.name)-", suffix: "", mode: 0o755)
            payloadCommand = [path]
            payloadPaths = [path]
            environment = w.environment
            arguments = w.arguments
        case .glidein(let g):
            let config = try await staged(try Scripts.glideinConfig(g), prefix: "glidein-config-", suffix: "", mode: 0o644)
            let startup = try await staged(try Scripts.glideinStartup(g, configPath: config), prefix: "glidein-startup-", suffix: ".sh",
                                           mode: 0o755)
            payloadCommand = [startup]
            payloadPaths = [startup, config]
        }
        let launcher = try Scripts.launcher(queue: queue, payloadCommand: payloadCommand, workDirectory: work,
                                            environment: environment, arguments: arguments)
        let launcherPath = try await staged(launcher, prefix: "launcher-", suffix: ".sh", mode: 0o755)
        return PreparedQueue(spec: queue, workDirectory: work, logDirectory: logs, launcherPath: launcherPath,
                             payloadPaths: payloadPaths, target: target)
    }

    /// Runs a transport call, turning its error into a `BatchError` (`.transport`).
    func transport<T>(_ what: String, _ body: () async throws(SSHError) -> T) async throws(BatchError) -> T {
        do throws(SSHError) {
            return try await body()
        } catch {
            throw BatchError(.transport, "\(what): \(error.message)", target: target, permanent: !error.isRetryable, transport: error)
        }
    }

    func checkPrepared(_ queue: PreparedQueue) -> BatchError? {
        guard queue.target == target, queue.spec.tag == tag else {
            return BatchError(.invalidOption, "queue \(queue.spec.name) was prepared for \(queue.target), not \(target)", target: target, permanent: true)
        }
        return nil
    }

    /// Runs one command directly (one channel, no helper): for a single submit, whose answer (an ID on the last
    /// line) is read from the end, so nothing a login shell prints first can be mistaken for it. The exit status is
    /// the command's own.
    func direct(_ argv: [String], stdin: [UInt8], timeout: Duration) async throws(BatchError) -> HelperOpResult {
        let r: ExecResult
        do throws(SSHError) {
            r = try await runner.run(RemoteCommand(argv, stdin: stdin, timeout: timeout))
        } catch {
            throw BatchError(.transport, "\(argv[0]): \(error.message)", target: target, permanent: false, transport: error)
        }
        if let signal = r.exitSignal {
            throw BatchError(.commandFailed, "\(argv[0]) was killed by SIG\(signal)", target: target, permanent: false,
                             transport: SSHError(.remoteExit, "killed by SIG\(signal)", retryable: true, commandMayHaveRun: true))
        }
        return HelperOpResult(exitStatus: r.exitStatus, stdout: r.stdout, stderr: r.stderr)
    }

    /// Splits pilots into runs of consecutive client IDs (each run can be one array job), at most `maxRun` long.
    static func contiguousRuns(_ pilots: [ClientID], maxRun: Int) -> [[ClientID]] {
        var runs: [[ClientID]] = []
        var current: [ClientID] = []
        for id in pilots {
            if let last = current.last, id.distance(from: last) == 1, current.count < maxRun {
                current.append(id)
            } else {
                if !current.isEmpty { runs.append(current) }
                current = [id]
            }
        }
        if !current.isEmpty { runs.append(current) }
        return runs
    }

    /// Submits each run concurrently (separate channels) and returns the results in pilot order.
    static func inParallel(_ runs: [[ClientID]], _ submit: @escaping @Sendable ([ClientID]) async -> [SubmitResult]) async -> [SubmitResult] {
        let byRun = await withTaskGroup(of: (Int, [SubmitResult]).self) { group in
            for (i, run) in runs.enumerated() { group.addTask { (i, await submit(run)) } }
            var out: [Int: [SubmitResult]] = [:]
            for await (i, r) in group { out[i] = r }
            return out
        }
        return (0..<runs.count).flatMap { byRun[$0] ?? [] }
    }

    /// Batches of at most `idsPerCall` IDs.
    static func chunks<T>(_ items: [T], size: Int = idsPerCall) -> [[T]] {
        stride(from: 0, to: items.count, by: size).map { Array(items[$0..<min($0 + size, items.count)]) }
    }

    /// The outcome for every pilot of a submission whose transport failed.
    static func transportOutcome(_ error: BatchError) -> SubmitOutcome {
        if let t = error.transport, !t.commandMayHaveRun { return .failed(error) }
        if error.code == .helper, error.isPermanent { return .failed(error) }
        return .unknown(error)
    }
}

extension String {
    var trimmingNewlines: String {
        var s = Substring(self)
        while let l = s.last, l == "\n" || l == "\r" || l == " " { s = s.dropLast() }
        return String(s)
    }

    var firstLine: String { split(separator: "\n").first.map(String.init) ?? "" }
}

/// The ops of a status poll and how to read their results, so a cancel can carry a status poll in its round trip.
struct StatusPlan: Sendable {
    let ops: [HelperOp]
    let read: @Sendable ([HelperOpResult]) throws(BatchError) -> StatusReport
}

extension DriverCore {
    func status(_ plan: StatusPlan) async throws(BatchError) -> StatusReport {
        let results: [HelperOpResult]
        if plan.ops.contains(where: { if case .absent = $0 { return true } else { return false } }) {
            results = try await helper.run(plan.ops, timeout: timeouts.status)
        } else {
            results = try await helper.runIndependent(plan.ops, timeout: timeouts.status)
        }
        return try plan.read(results)
    }

    /// Cancels in chunks of 100, in the same round trip as a status poll of the same IDs taken just before:
    /// a job that was already finished or gone needs no cancel and counts as `alreadyGone` (success), whatever
    /// the cancel command printed. For the others the command's answer decides; unclear failures are tried once
    /// more one by one.
    func cancel(_ ids: [NativeJobID], command: [String], reader: CancelReader, plan: StatusPlan) async throws(BatchError) -> CancelReport {
        var report = CancelReport()
        let chunks = Self.chunks(ids)
        guard !chunks.isEmpty else { return report }
        let cancelOps = chunks.map { HelperOp.exec(command + $0.map(\.text)) }
        let statusResults: [HelperOpResult]
        let cancelResults: [HelperOpResult]
        let together = plan.ops + cancelOps
        if together.reduce(0, { $0 + $1.encodedSize }) <= RemoteHelper.commandBudget {
            let all = try await helper.run(together, timeout: timeouts.cancel)
            statusResults = Array(all.prefix(plan.ops.count))
            cancelResults = Array(all.dropFirst(plan.ops.count))
        } else {
            statusResults = (try? await helper.run(plan.ops, timeout: timeouts.status)) ?? []
            cancelResults = try await helper.runIndependent(cancelOps, timeout: timeouts.cancel)
        }
        let before = statusResults.count == plan.ops.count ? try? plan.read(statusResults) : nil
        func gone(_ id: NativeJobID) -> Bool {
            switch before?.observation(id) {
            case .seen(let r)?: return r.status.state.isTerminal
            case .notFound?: return true
            default: return false
            }
        }
        for (chunk, r) in zip(chunks, cancelResults) {
            let live = chunk.filter { !gone($0) }
            for id in chunk where gone(id) { report.alreadyGone.insert(id) }
            reader.apply(r, ids: live, target: target, into: &report)
        }
        let unclear = Array(report.failed.keys).sorted()
        if !unclear.isEmpty, !(chunks.count == 1 && chunks[0].count == 1) {
            let again = try await helper.runIndependent(unclear.map { .exec(command + [$0.text]) }, timeout: timeouts.cancel)
            for (id, r) in zip(unclear, again) {
                report.failed[id] = nil
                reader.apply(r, ids: [id], target: target, into: &report)
            }
        }
        return report
    }
}

/// Reads a cancel command's answer per ID. IDs are matched exactly, as parsed tokens of the messages (never as
/// substrings); the markers classify the message that names an ID.
struct CancelReader {
    let system: BatchSystem
    /// Messages meaning "no such job" or "already finished": success.
    let goneMarkers: [String]
    /// Messages meaning "removal requested" (printed per ID by some systems even when others fail).
    let acceptedMarkers: [String]
    /// Rewrites of message fragments before tokenizing (SGE writes a task as `job "5" task "11"`).
    var rewrites: [(String, String)] = []

    func apply(_ r: HelperOpResult, ids: [NativeJobID], target: String, into report: inout CancelReport) {
        let wanted = Set(ids)
        var mentioned: [NativeJobID: String] = [:]
        let text = r.stdoutText + "\n" + r.stderrText
        for rawLine in text.split(separator: "\n") {
            var line = rawLine
            for (from, to) in rewrites where line.contains(from) { line = Substring(String(line).replacingAll(from, with: to)) }
            for token in Self.tokens(line) {
                if let id = NativeJobID(String(token), system: system), wanted.contains(id) {
                    // A later, more specific line (an error after a notice) wins only if it is a gone/error line.
                    if mentioned[id] == nil || !acceptedMarkers.contains(where: { line.contains($0) }) { mentioned[id] = String(line) }
                }
            }
        }
        let firstError = r.stderrText.firstLine
        for id in ids {
            if let line = mentioned[id] {
                if goneMarkers.contains(where: { line.contains($0) }) {
                    report.alreadyGone.insert(id)
                } else if r.exitStatus == 0 || acceptedMarkers.contains(where: { line.contains($0) }) {
                    report.requested.insert(id)
                } else {
                    report.failed[id] = BatchError(.commandFailed, "cancel \(id): \(line)", target: target, permanent: false)
                }
            } else if r.exitStatus == 0 {
                report.requested.insert(id)
            } else if mentioned.isEmpty, goneMarkers.contains(where: { text.contains($0) }), ids.count == 1 {
                report.alreadyGone.insert(id)
            } else if mentioned.isEmpty {
                report.failed[id] = BatchError(.commandFailed, "cancel exited \(r.exitStatus): \(firstError)", target: target, permanent: false)
            } else {
                report.requested.insert(id)  // the command complained about other IDs only
            }
        }
    }

    static func tokens(_ line: Substring) -> [Substring] {
        line.split(whereSeparator: { c in
            !(c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "_" || c == "-" || c == "[" || c == "]"))
        }).map { t in
            var t = t
            while let l = t.last, l == "." || l == "-" { t = t.dropLast() }
            return t
        }
    }
}
