public import Foundation
public import SSHSubmit
import Synchronization

/// An **in-process, simulated** batch system that implements `BatchBackend`: no SSH, no real scheduler. For
/// benchmarks (`apf-bench agent`), tests of the factory's loop logic, and simulations. Never used by `apf-agent
/// run` unless an embedder passes it in.
///
/// Jobs move `pending → running → done` on the injected clock: a job starts `queueDelay` after submission when a
/// slot is free (`slots`), runs for `runtime`, then ends with exit 0. The queue listing forgets ended jobs after
/// `listingRetention` (SLURM's `MinJobAge`); accounting keeps them (unless `accounting` is false). Faults can be
/// injected per call: failed submits (permanent or not), unknown outcomes (with or without the job really queued),
/// failing listings, a hung target. Every client ID ever submitted is counted, so a test can prove that none was
/// submitted twice.
public final class SimulatedBatchBackend: BatchBackend {
    public struct Behavior: Sendable {
        public var queueDelay: Duration = .seconds(1)
        public var runtime: Duration = .seconds(3600)
        /// Each job runs `runtime` plus a fixed part of this, drawn from its client ID (pilots do not all end
        /// together).
        public var runtimeSpread: Duration = .zero
        /// Jobs running at once; nil = unlimited.
        public var slots: Int?
        public var listingRetention: Duration = .seconds(300)
        public var accounting = true
        /// Pending jobs cancelled vanish from listing and accounting at once (SLURM array tasks do).
        public var cancelledPendingVanish = false
        /// Cancels are accepted but have no effect (a scheduler that is slow to act on them).
        public var ignoreCancels = false
        /// Ended jobs leave accounting after this long (keeps long simulations small).
        public var accountingRetention: Duration = .seconds(86_400)
        public init() {}
    }

    /// What the next submit calls do (consumed one per pilot, in order).
    public enum SubmitFault: Sendable, Hashable {
        /// Refused: certainly not queued.
        case fail(permanent: Bool)
        /// The call's outcome is unknown; `queued` says whether the job really exists.
        case unknown(queued: Bool)
    }

    public struct Job: Sendable, Hashable {
        public var id: NativeJobID
        public var clientID: ClientID
        public var submittedAt: Date
        public var startedAt: Date?
        public var endedAt: Date?
        public var cancelled = false
        public var removedBySite = false
    }

    private struct State {
        var jobs: [NativeJobID: Job] = [:]
        var byClient: [ClientID: NativeJobID] = [:]
        var nextJob: UInt64 = 1000
        var submitFaults: [SubmitFault] = []
        var listingFailures = 0
        var findFailures = 0
        var hang = false
        var submitted: [ClientID: Int] = [:]
        var calls = Calls()
        var behavior: Behavior
    }

    /// How often each operation was called.
    public struct Calls: Sendable, Hashable {
        public var prepare = 0
        public var submit = 0
        public var status = 0
        public var cancel = 0
        public var find = 0
    }

    public let system: BatchSystem
    public let target: String
    public let tag: FactoryTag
    private let now: @Sendable () -> Date
    private let state: Mutex<State>

    public init(target: String, tag: FactoryTag, system: BatchSystem = .slurm, behavior: Behavior = Behavior(),
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.target = target
        self.tag = tag
        self.system = system
        self.now = now
        self.state = Mutex(State(behavior: behavior))
    }

    // MARK: - Control (tests, benchmarks)

    public func setBehavior(_ b: Behavior) { state.withLock { $0.behavior = b } }
    public func injectSubmitFaults(_ faults: [SubmitFault]) { state.withLock { $0.submitFaults += faults } }
    /// The next `n` status (and cancel) calls throw a transport error.
    public func failListings(_ n: Int) { state.withLock { $0.listingFailures = n } }
    public func failFinds(_ n: Int) { state.withLock { $0.findFailures = n } }
    /// While set, every call fails as a timeout (an unreachable login node).
    public func setHung(_ hung: Bool) { state.withLock { $0.hang = hung } }
    public var calls: Calls { state.withLock { $0.calls } }
    /// How many times each client ID reached this batch system (a correct factory never exceeds 1).
    public var submissions: [ClientID: Int] { state.withLock { $0.submitted } }
    public var jobs: [Job] { state.withLock { Array($0.jobs.values) } }

    /// Jobs that have not ended, as the batch system sees them.
    public func liveJobs() -> [Job] {
        let t = now()
        return state.withLock { s in s.jobs.values.filter { Self.observe($0, at: t, s.behavior).state.isTerminal == false } }
    }

    /// Removes a job as a site administrator would (not requested by the factory).
    public func removeBySite(_ id: NativeJobID) {
        let t = now()
        state.withLock { s in
            guard var j = s.jobs[id], j.endedAt == nil else { return }
            j.removedBySite = true
            j.endedAt = t
            s.jobs[id] = j
        }
    }

    /// Drops every trace of a job (listing and accounting), as a purged Torque job or a vanished array task.
    public func forget(_ id: NativeJobID) { _ = state.withLock { $0.jobs.removeValue(forKey: id) } }

    // MARK: - BatchBackend

    public func prepare(_ queue: QueueSpec) async throws(BatchError) -> PreparedQueue {
        try state.withLock { (s) throws(BatchError) in
            s.calls.prepare += 1
            if s.hang { throw BatchError(.timeout, "simulated target \(target) does not answer", target: target, permanent: false) }
        }
        guard queue.tag == tag else {
            throw BatchError(.invalidOption, "queue \(queue.name) uses tag '\(queue.tag)', this backend '\(tag)'", target: target, permanent: true)
        }
        try queue.options.validate(for: system)
        let work = "/sim/\(queue.workDirectory)"
        return PreparedQueue.staged(spec: queue, workDirectory: work, logDirectory: work + "/logs", launcherPath: work + "/launcher.sh",
                             payloadPaths: [work + "/payload"], target: target)
    }

    public func submit(_ pilots: [ClientID], to queue: PreparedQueue) async -> [SubmitResult] {
        let t = now()
        return state.withLock { s in
            s.calls.submit += 1
            if s.hang {
                return pilots.map {
                    SubmitResult($0, .unknown(BatchError(.timeout, "simulated target does not answer", target: target, permanent: false)))
                }
            }
            let job = s.nextJob
            s.nextJob += 1
            var task: Int64 = 0
            var out: [SubmitResult] = []
            out.reserveCapacity(pilots.count)
            for c in pilots {
                let fault = s.submitFaults.isEmpty ? nil : s.submitFaults.removeFirst()
                switch fault {
                case .fail(let permanent)?:
                    out.append(SubmitResult(c, .failed(BatchError(
                        permanent ? .rejected : .commandFailed, permanent ? "simulated: invalid account" : "simulated: controller busy",
                        target: target, permanent: permanent))))
                    continue
                case .unknown(let queued)?:
                    if queued { task += 1; _ = Self.enqueue(&s, c, job: job, task: task, at: t, system: system) }
                    out.append(SubmitResult(c, .unknown(BatchError(.timeout, "simulated: no answer after sending", target: target, permanent: false))))
                    continue
                case nil:
                    task += 1
                    let id = Self.enqueue(&s, c, job: job, task: task, at: t, system: system)
                    out.append(SubmitResult(c, .accepted(id)))
                }
            }
            return out
        }
    }

    private static func enqueue(_ s: inout State, _ c: ClientID, job: UInt64, task: Int64, at t: Date, system: BatchSystem) -> NativeJobID {
        let id = NativeJobID(system: system, job: job, task: task)
        s.jobs[id] = Job(id: id, clientID: c, submittedAt: t)
        s.byClient[c] = id
        s.submitted[c, default: 0] += 1
        return id
    }

    /// How long `j` runs.
    private static func runtime(_ j: Job, _ b: Behavior) -> Double {
        let spread = b.runtimeSpread.seconds
        guard spread > 0 else { return b.runtime.seconds }
        return b.runtime.seconds + Double(j.clientID.serial &* 0x9E37_79B9_7F4A_7C15 >> 11) / Double(1 << 53) * spread
    }

    /// The job's state at `t` (advancing the simulation lazily).
    private static func observe(_ j: Job, at t: Date, _ b: Behavior) -> JobStatus {
        if j.cancelled, let _ = j.endedAt { return JobStatus(state: .cancelled, nativeState: "CANCELLED") }
        if j.removedBySite { return JobStatus(state: .cancelled, nativeState: "CANCELLED", reason: "by site") }
        guard let start = j.startedAt else { return JobStatus(state: .pending, nativeState: "PENDING") }
        let end = start.addingTimeInterval(runtime(j, b))
        if t >= end { return JobStatus(state: .done, nativeState: "COMPLETED", exitCode: 0) }
        return JobStatus(state: .running, nativeState: "RUNNING")
    }

    /// Starts pending jobs whose delay passed, within the slot limit; ends finished ones.
    private static func advance(_ s: inout State, to t: Date) {
        let b = s.behavior
        var running = 0
        var startable: [NativeJobID] = []
        var purge: [NativeJobID] = []
        for (id, var j) in s.jobs {
            if let end = j.endedAt {
                if t.timeIntervalSince(end) > b.accountingRetention.seconds { purge.append(id) }
                continue
            }
            if let start = j.startedAt {
                let end = start.addingTimeInterval(runtime(j, b))
                if t >= end {
                    j.endedAt = end
                    s.jobs[id] = j
                } else {
                    running += 1
                }
            } else if t >= j.submittedAt.adding(b.queueDelay) {
                startable.append(id)
            }
        }
        for id in purge {
            if let c = s.jobs.removeValue(forKey: id)?.clientID { s.byClient[c] = nil }
        }
        startable.sort()
        for id in startable {
            if let slots = b.slots, running >= slots { break }
            guard var j = s.jobs[id] else { continue }
            j.startedAt = max(j.submittedAt.adding(b.queueDelay), t.addingTimeInterval(-1e-3))
            s.jobs[id] = j
            running += 1
        }
    }

    public func status(_ ids: [NativeJobID]) async throws(BatchError) -> StatusReport {
        let t = now()
        return try state.withLock { (s) throws(BatchError) -> StatusReport in
            s.calls.status += 1
            if s.hang { throw BatchError(.timeout, "simulated target \(target) does not answer", target: target, permanent: false) }
            if s.listingFailures > 0 {
                s.listingFailures -= 1
                throw BatchError(.commandFailed, "simulated: squeue exited 1: slurm_load_jobs error: Socket timed out", target: target, permanent: false)
            }
            Self.advance(&s, to: t)
            let b = s.behavior
            var report = StatusReport(target: target)
            report.records.reserveCapacity(ids.count)
            // The listing: this factory's jobs not yet forgotten.
            for j in s.jobs.values {
                if let end = j.endedAt, t.timeIntervalSince(end) >= b.listingRetention.seconds { continue }
                report.records[j.id] = JobRecord(id: j.id, clientID: j.clientID, status: Self.observe(j, at: t, b), source: .queue)
            }
            // Accounting for the requested IDs the listing lacks.
            var missing = false
            for id in ids where report.records[id] == nil {
                missing = true
                if b.accounting, let j = s.jobs[id] {
                    report.records[id] = JobRecord(id: id, clientID: j.clientID, status: Self.observe(j, at: t, b), source: .accounting)
                } else {
                    report.notFound.insert(id)
                }
            }
            report.accounting = !missing ? .notQueried : b.accounting ? .available : .disabled("simulated: accounting disabled")
            return report
        }
    }

    public func cancel(_ ids: [NativeJobID]) async throws(BatchError) -> CancelReport {
        let t = now()
        return try state.withLock { (s) throws(BatchError) -> CancelReport in
            s.calls.cancel += 1
            if s.hang { throw BatchError(.timeout, "simulated target \(target) does not answer", target: target, permanent: false) }
            Self.advance(&s, to: t)
            var r = CancelReport()
            for id in ids {
                guard var j = s.jobs[id], j.endedAt == nil else {
                    r.alreadyGone.insert(id)
                    continue
                }
                if s.behavior.ignoreCancels {
                    r.requested.insert(id)
                    continue
                }
                let wasPending = j.startedAt == nil
                j.cancelled = true
                j.endedAt = t
                if wasPending, s.behavior.cancelledPendingVanish {
                    s.jobs[id] = nil
                } else {
                    s.jobs[id] = j
                }
                r.requested.insert(id)
            }
            return r
        }
    }

    public func find(_ clientIDs: [ClientID]) async throws(BatchError) -> [ClientID: JobRecord] {
        let t = now()
        return try state.withLock { (s) throws(BatchError) -> [ClientID: JobRecord] in
            s.calls.find += 1
            if s.hang { throw BatchError(.timeout, "simulated target \(target) does not answer", target: target, permanent: false) }
            if s.findFailures > 0 {
                s.findFailures -= 1
                throw BatchError(.commandFailed, "simulated: sacct failed", target: target, permanent: false)
            }
            Self.advance(&s, to: t)
            let b = s.behavior
            var out: [ClientID: JobRecord] = [:]
            for c in clientIDs {
                guard let id = s.byClient[c], let j = s.jobs[id] else { continue }
                let listed = j.endedAt.map { t.timeIntervalSince($0) < b.listingRetention.seconds } ?? true
                guard listed || b.accounting else { continue }
                out[c] = JobRecord(id: id, clientID: c, status: Self.observe(j, at: t, b), source: listed ? .queue : .accounting)
            }
            return out
        }
    }
}
