import Foundation
import Logging
import SSHSubmit

/// One target at run time, shared by every queue on it: its batch driver, **one** status listing per TTL (LESSONS
/// §10), the concurrency limit, and the capped exponential back-off with jitter after failures (LESSONS §9). A sick
/// target blocks only its own queues: every wait here is on this target's own calls.
///
/// A status poll also keeps the journal true to the target: forward-only state changes, `lost` only after a grace
/// period (LESSONS §3, §16), intents in doubt found by client ID or `missed` after their grace period (LESSONS §1),
/// and cancels re-issued until a terminal state is seen (LESSONS §11).
actor TargetRuntime {
    nonisolated let plan: TargetPlan
    nonisolated let backend: any BatchBackend
    /// The driver's command runner, when the factory built the driver (for batch-as-WMS demand queries).
    nonisolated let runner: (any SSHSubmit.CommandRunner)?
    nonisolated let limiter: AsyncLimiter
    let journal: AgentStore
    let commits: GroupCommit
    let clock: StatusClock
    let options: FactoryOptions
    let logger: Logger
    let events: EventHub
    let random: @Sendable () -> Double

    private var health: TargetHealthState = .healthy
    private var failures = 0
    private var probeStarted: Date?
    private var lastPoll: Date?
    private var accounting: AccountingAvailability = .notQueried
    private var inflightPoll: Task<PollOutcome, Never>?
    /// When each pilot was first missing from both the listing and accounting.
    private var absentSince: [String: Date] = [:]
    private var lastFind: Date?
    /// Intents whose submit call is running: never "in doubt" while it runs.
    private var inflightSubmits: Set<String> = []
    private var prepared: [String: (fingerprint: String, queue: PreparedQueue)] = [:]

    enum PollOutcome: Sendable {
        case fresh(Date)
        case unavailable(String)
    }

    init(plan: TargetPlan, backend: any BatchBackend, runner: (any SSHSubmit.CommandRunner)?, journal: AgentStore, commits: GroupCommit, clock: StatusClock, options: FactoryOptions,
         logger: Logger, events: EventHub, random: @escaping @Sendable () -> Double) {
        self.plan = plan
        self.backend = backend
        self.runner = runner
        self.limiter = AsyncLimiter(limit: plan.limits.concurrency)
        self.journal = journal
        self.commits = commits
        self.clock = clock
        self.options = options
        var log = logger
        log[metadataKey: "target"] = "\(plan.name)"
        self.logger = log
        self.events = events
        self.random = random
    }

    var healthState: TargetHealthState { health }
    var lastPollAt: Date? { lastPoll }
    var accountingState: AccountingAvailability { accounting }

    // MARK: - Health

    /// Nil when an operation may run now (healthy, or the one probe after the back-off); else why not.
    func gate(now: Date) -> String? {
        guard case .backingOff(let reason, _, let next) = health else { return nil }
        if now >= next {
            if let started = probeStarted, now.timeIntervalSince(started) < 300 {
                return "target \(plan.name) backing off: \(reason); a probe is running"
            }
            probeStarted = now
            return nil
        }
        return "target \(plan.name) backing off: \(reason), next try \(StatusFormat.time(next))"
    }

    /// `target NAME backing off: <reason>, next try <time>` (or `ok`).
    var backoffMessage: String {
        guard case .backingOff(let reason, _, let next) = health else { return "target \(plan.name) ok" }
        return "target \(plan.name) backing off: \(reason), next try \(StatusFormat.time(next))"
    }

    func succeeded() {
        probeStarted = nil
        guard failures > 0 || health != .healthy else { return }
        failures = 0
        health = .healthy
        logger.info("target healthy again")
        events.emit(.targetHealth(target: plan.name, state: health))
        persistHealth()
    }

    func failed(_ reason: String) {
        failures += 1
        probeStarted = nil
        let base = plan.limits.backoffBase.seconds
        let cap = plan.limits.backoffMax.seconds
        let raw = min(cap, base * pow(2, Double(min(failures - 1, 30))))
        let delay = min(cap, raw * (0.75 + 0.5 * random()))
        let next = clock.now().addingTimeInterval(delay)
        health = .backingOff(reason: reason, failures: failures, nextTry: next)
        logger.warning(
            "target backing off",
            metadata: ["reason": "\(reason)", "failures": "\(failures)", "next.try": "\(StatusFormat.time(next))"])
        events.emit(.targetHealth(target: plan.name, state: health))
        persistHealth()
    }

    func persistHealth() {
        let now = clock.now()
        let record: TargetHealthRecord
        switch health {
        case .healthy:
            record = TargetHealthRecord(target: plan.name, state: "ok", reason: nil, failures: 0, nextTryAt: nil,
                                        accounting: "\(accounting)", lastPollAt: lastPoll, updatedAt: now)
        case .backingOff(let reason, let f, let next):
            record = TargetHealthRecord(target: plan.name, state: "backing-off", reason: reason, failures: f,
                                        nextTryAt: next, accounting: "\(accounting)", lastPollAt: lastPoll, updatedAt: now)
        }
        do { try journal.saveTargetHealth([record]) } catch { logger.error("cannot record target health", metadata: ["error": "\(error)"]) }
    }

    // MARK: - Status

    /// A listing no older than the TTL, shared by every queue of the target (one poll in flight at a time).
    func refresh() async -> PollOutcome {
        let now = clock.now()
        if case .healthy = health, let last = lastPoll, now.timeIntervalSince(last) < plan.limits.statusTTL.seconds {
            return .fresh(last)
        }
        if let running = inflightPoll { return await running.value }
        if let why = gate(now: now) { return .unavailable(why) }
        let task = Task { await self.poll() }
        inflightPoll = task
        let outcome = await task.value
        inflightPoll = nil
        return outcome
    }

    private func poll() async -> PollOutcome {
        let now = clock.now()
        let live: [AgentStore.PolledPilot]
        do {
            // Read through the journal's writer (its page cache is warm; readers would re-read pages after writes).
            let name = plan.name
            live = try await commits.perform { db, _ in try AgentStore.polledPilots(db, onTarget: name) }
        } catch {
            probeStarted = nil
            return .unavailable("journal: \(error)")
        }
        let system = backend.system
        var byNative: [NativeJobID: AgentStore.PolledPilot] = [:]
        byNative.reserveCapacity(live.count)
        for p in live {
            if let b = p.batchID, let id = NativeJobID(b, system: system) { byNative[id] = p }
        }
        let ids = Array(byNative.keys)
        let backend = self.backend
        let report: StatusReport
        do {
            report = try await limiter.run { () async throws(BatchError) -> StatusReport in try await backend.status(ids) }
        } catch {
            failed("status: \(error.message)")
            return .unavailable(backoffMessage)
        }
        accounting = report.accounting
        var changes: [PilotChange] = []
        var known: [AgentStore.KnownTransition] = []
        var ended: Set<String> = []
        let target = plan.name
        func observed(_ p: AgentStore.PolledPilot, _ c: PilotChange?) {
            guard case .observed(_, let s, let native, let exit, let reason)? = c else { return }
            known.append(AgentStore.KnownTransition(id: p.id, queue: p.queue, target: target, from: p.state, to: s,
                                                    nativeState: native, exitCode: exit, reason: reason))
            if s.isTerminal { ended.insert(p.id) }
        }
        for (id, p) in byNative {
            switch report.observation(id) {
            case .seen(let r):
                absentSince[p.id] = nil
                observed(p, Self.change(for: p, status: r.status))
            case .notFound:
                if p.cancelRequested {
                    absentSince[p.id] = nil
                    observed(p, .observed(id: p.id, state: .cancelled, nativeState: nil, exitCode: nil,
                                          reason: "cancelled by apf-agent; gone from the queue and accounting"))
                } else {
                    let since = absentSince[p.id] ?? now
                    absentSince[p.id] = since
                    let gone = now.timeIntervalSince(since)
                    if gone >= options.lostGrace.seconds {
                        absentSince[p.id] = nil
                        observed(p, .observed(
                            id: p.id, state: .lost, nativeState: nil, exitCode: nil,
                            reason: "absent from the queue listing and from accounting (\(report.accounting)) for \(Int(gone)) s"))
                    }
                }
            case .unresolved, .notAsked:
                break
            }
        }
        // Intents in doubt: the listing names this factory's jobs by client ID.
        let doubtIDs = Set(live.filter { $0.state == .submitting && !$0.waitingForRetry && !inflightSubmits.contains($0.id) }.map(\.id))
        let doubt = doubtIDs.isEmpty ? [] : ((try? journal.intentsInDoubt(target: plan.name)) ?? []).filter { doubtIDs.contains($0.id) }
        if !doubt.isEmpty {
            var byClient: [String: JobRecord] = [:]
            for r in report.records.values { if let c = r.clientID { byClient[c.description] = r } }
            var rest: [LivePilot] = []
            for p in doubt {
                if let r = byClient[p.id] { changes += Self.found(p, r) } else { rest.append(p) }
            }
            if !rest.isEmpty, lastFind.map({ now.timeIntervalSince($0) >= plan.limits.statusTTL.seconds }) ?? true {
                if case .success(let more) = await findInDoubt(rest, now: now) { changes += more }
            }
        }
        if !changes.isEmpty || !known.isEmpty {
            do {
                let toApply = changes
                let transitions = known
                let moved = try await commits.perform { db, _ in
                    try AgentStore.applyKnown(db, transitions, at: now) + AgentStore.apply(db, toApply, at: now)
                }
                if !moved.isEmpty {
                    events.emit(.pilotsChanged(target: plan.name, changes: Dictionary(moved.map { ($0.id, $0.state) },
                                                                                     uniquingKeysWith: { _, b in b })))
                }
            } catch {
                logger.error("cannot record pilot states", metadata: ["error": "\(error)"])
            }
        }
        // Cancels are level-triggered: re-issue until a terminal state is seen.
        let cancels = live.filter { $0.cancelRequested && $0.batchID != nil && !ended.contains($0.id) }
        if !cancels.isEmpty { _ = await cancel(cancels.map { ($0.id, $0.batchID) }, now: now) }
        lastPoll = now
        succeeded()
        persistHealth()
        logger.debug("status polled", metadata: ["pilots": "\(live.count)", "changes": "\(changes.count + known.count)"])
        return .fresh(now)
    }

    /// The journal state for a driver's state, or nil when nothing changes.
    static func change(for p: LivePilot, status s: JobStatus) -> PilotChange? {
        change(id: p.id, state: p.state, cancelRequested: p.cancelRequestedAt != nil, status: s)
    }

    static func change(for p: AgentStore.PolledPilot, status s: JobStatus) -> PilotChange? {
        change(id: p.id, state: p.state, cancelRequested: p.cancelRequested, status: s)
    }

    static func change(id: String, state current: PilotState, cancelRequested: Bool, status s: JobStatus) -> PilotChange? {
        let state: PilotState
        switch s.state {
        case .pending: state = .pending
        case .held: state = .held
        case .running: state = .running
        case .completing: state = .exiting
        case .done: state = s.ending == .timeout ? .timeout : .completed
        case .failed: state = cancelRequested ? .cancelled : .failed
        case .cancelled: state = cancelRequested ? .cancelled : .removed
        case .lost: state = .lost
        case .unknown: return nil
        }
        if state == current { return nil }
        var reason = s.reason
        if state == .removed { reason = "removed by someone else (\(s.nativeState))" }
        return .observed(id: id, state: state, nativeState: s.nativeState, exitCode: s.exitCode, reason: reason)
    }

    /// An intent found on the target: its batch ID, then its state.
    static func found(_ p: LivePilot, _ r: JobRecord) -> [PilotChange] {
        var asSubmitted = p
        asSubmitted.state = .pending
        var out: [PilotChange] = [.accepted(id: p.id, batchID: r.id.text)]
        if let c = change(for: asSubmitted, status: r.status) { out.append(c) }
        return out
    }

    /// Looks intents in doubt up by client ID (listing, then accounting); those not found past the grace period
    /// become `missed`. A failed look-up changes nothing.
    func findInDoubt(_ rows: [LivePilot], now: Date) async -> Result<[PilotChange], BatchError> {
        let clientIDs = rows.compactMap { ClientID($0.id) }
        let backend = self.backend
        let found: [ClientID: JobRecord]
        do {
            found = try await limiter.run { () async throws(BatchError) -> [ClientID: JobRecord] in try await backend.find(clientIDs) }
        } catch {
            failed("find: \(error.message)")
            return .failure(error)
        }
        lastFind = now
        var changes: [PilotChange] = []
        for p in rows {
            if let c = ClientID(p.id), let r = found[c] {
                changes += Self.found(p, r)
            } else if now.timeIntervalSince(p.updatedAt) >= options.missedGrace.seconds {
                changes.append(.missed(
                    id: p.id,
                    reason: "not found on \(plan.name) by client ID (queue listing and accounting) \(Int(now.timeIntervalSince(p.updatedAt))) s after the last submit attempt"))
            }
        }
        return .success(changes)
    }

    /// Start-up reconciliation of this target's intents in doubt (always asks, whatever the TTL).
    func reconcile(_ rows: [LivePilot]) async -> (found: Int, missed: Int, waiting: Int, error: String?) {
        let now = clock.now()
        if let why = gate(now: now) { return (0, 0, rows.count, why) }
        switch await findInDoubt(rows, now: now) {
        case .failure(let e):
            return (0, 0, rows.count, e.message)
        case .success(let changes):
            do {
                try journal.apply(changes, at: now)
            } catch {
                return (0, 0, rows.count, "journal: \(error)")
            }
            succeeded()
            let found = Set(changes.compactMap { if case .accepted(let id, _) = $0 { id } else { nil } }).count
            let missed = changes.filter { if case .missed = $0 { true } else { false } }.count
            return (found, missed, rows.count - found - missed, nil)
        }
    }

    // MARK: - Cancel

    /// Asks the target to cancel these pilots (each with a batch ID); gone ones count as done. Returns how many
    /// the target accepted or had already finished.
    func cancel(_ pilots: [LivePilot], now: Date) async -> Int {
        await cancel(pilots.map { ($0.id, $0.batchID) }, now: now)
    }

    func cancel(_ pilots: [(id: String, batchID: String?)], now: Date) async -> Int {
        let system = backend.system
        var byNative: [NativeJobID: String] = [:]
        for p in pilots { if let b = p.batchID, let id = NativeJobID(b, system: system) { byNative[id] = p.id } }
        guard !byNative.isEmpty else { return 0 }
        let ids = Array(byNative.keys).sorted()
        let backend = self.backend
        do {
            let report = try await limiter.run { () async throws(BatchError) -> CancelReport in try await backend.cancel(ids) }
            for (id, e) in report.failed { logger.warning("cancel failed", metadata: ["batch.id": "\(id)", "error": "\(e)"]) }
            return report.requested.count + report.alreadyGone.count
        } catch {
            failed("cancel: \(error.message)")
            return 0
        }
    }

    // MARK: - Submit

    /// The queue staged on the target (cached until the queue's plan changes).
    func prepare(_ queue: QueuePlan) async -> Result<PreparedQueue, BatchError> {
        if let p = prepared[queue.name], p.fingerprint == queue.fingerprint { return .success(p.queue) }
        if let why = gate(now: clock.now()) {
            return .failure(BatchError(.transport, why, target: plan.name, permanent: false))
        }
        let backend = self.backend
        let spec = queue.spec
        do {
            let q = try await limiter.run { () async throws(BatchError) -> PreparedQueue in try await backend.prepare(spec) }
            prepared[queue.name] = (queue.fingerprint, q)
            return .success(q)
        } catch {
            if !error.isPermanent { failed("prepare \(queue.name): \(error.message)") } else { probeStarted = nil }
            return .failure(error)
        }
    }

    struct SubmitTally: Sendable {
        var accepted = 0
        var failed = 0
        var retrying = 0
        var inDoubt = 0
        var permanentError: BatchError?
    }

    /// Submits intents already committed to the journal (`attempts` = the attempt this is), then records every
    /// outcome: accepted → batch ID; failed for good → `failed`; failed for now → retry later (same client ID);
    /// unknown → in doubt (found by client ID later, never submitted again blindly).
    func submit(_ pilots: [PilotAttempt], to queue: PreparedQueue) async -> SubmitTally {
        var tally = SubmitTally()
        guard !pilots.isEmpty else { return tally }
        let ids = pilots.map(\.id)
        let names = Set(ids.map(\.description))
        inflightSubmits.formUnion(names)
        let backend = self.backend
        let results = await limiter.run { () async -> [SubmitResult] in await backend.submit(ids, to: queue) }
        inflightSubmits.subtract(names)
        let now = clock.now()
        let attempts = Dictionary(pilots.map { ($0.id, $0.attempt) }, uniquingKeysWith: { a, _ in a })
        var changes: [PilotChange] = []
        var accepted: [(id: String, batchID: String)] = []
        var transient: BatchError?
        for r in results {
            let id = r.clientID.description
            switch r.outcome {
            case .accepted(let native):
                accepted.append((id, native.text))
                tally.accepted += 1
            case .failed(let e) where e.isPermanent:
                changes.append(.rejected(id: id, reason: e.description))
                tally.failed += 1
                tally.permanentError = e
            case .failed(let e):
                let n = attempts[r.clientID] ?? 1
                if n >= options.maxAttempts {
                    changes.append(.rejected(id: id, reason: "gave up after \(n) attempts: \(e)"))
                    tally.failed += 1
                } else {
                    let delay = min(options.retryMax.seconds, options.retryDelay.seconds * pow(2, Double(n - 1)))
                    changes.append(.retryLater(id: id, reason: e.description, at: now.addingTimeInterval(delay)))
                    tally.retrying += 1
                }
                transient = e
            case .unknown(let e):
                changes.append(.inDoubt(id: id, reason: e.description))
                tally.inDoubt += 1
                transient = e
            }
        }
        do {
            let toApply = changes
            let ok = accepted
            let (queueName, target) = (queue.spec.name, plan.name)
            _ = try await commits.perform { db, _ in
                try AgentStore.applyAccepted(db, ok, queue: queueName, target: target, at: now)
                return try AgentStore.apply(db, toApply, at: now)
            }
        } catch {
            logger.error("cannot record submit outcomes", metadata: ["error": "\(error)"])
        }
        if let transient {
            failed("submit: \(transient.message)")
        } else if tally.accepted > 0 {
            succeeded()
        } else {
            probeStarted = nil
        }
        return tally
    }
}
