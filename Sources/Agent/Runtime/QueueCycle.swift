import Foundation
import GRDB
import Logging
import SSHSubmit
import Synchronization

/// One queue at run time: its current plan (swapped in by a reload), target, demand source, switch, and the
/// back-off after its pilots were refused for good.
final class QueueRunner: Sendable {
    struct State {
        var plan: QueuePlan
        var target: TargetRuntime
        var source: (any WMSStatusSource)?
        var enabled: Bool
        var busy = false
        var backoffUntil: Date?
        var backoffFailures = 0
        var backoffReason: String?
    }

    let name: String
    private let state: Mutex<State>

    init(plan: QueuePlan, target: TargetRuntime, source: (any WMSStatusSource)?, enabled: Bool) {
        name = plan.name
        state = Mutex(State(plan: plan, target: target, source: source, enabled: enabled))
    }

    var plan: QueuePlan { state.withLock { $0.plan } }
    var isEnabled: Bool { state.withLock { $0.enabled } }

    func update(plan: QueuePlan, target: TargetRuntime, source: (any WMSStatusSource)?, enabled: Bool) {
        state.withLock { s in
            if s.plan.fingerprint != plan.fingerprint {
                s.backoffUntil = nil
                s.backoffFailures = 0
                s.backoffReason = nil
            }
            s.plan = plan
            s.target = target
            s.source = source
            s.enabled = enabled
        }
    }

    func setEnabled(_ enabled: Bool) { state.withLock { $0.enabled = enabled } }

    /// Claims the queue for one cycle (never two at once).
    func begin() -> State? {
        state.withLock { s in
            guard !s.busy else { return nil }
            s.busy = true
            return s
        }
    }

    func end() { state.withLock { $0.busy = false } }

    func permanentFailure(_ reason: String, now: Date, options: FactoryOptions) -> Date {
        state.withLock { s in
            s.backoffFailures += 1
            let d = min(options.queueBackoffMax.seconds,
                        options.queueBackoffBase.seconds * pow(2, Double(min(s.backoffFailures - 1, 30))))
            let until = now.addingTimeInterval(d)
            s.backoffUntil = until
            s.backoffReason = reason
            return until
        }
    }

    func clearBackoff() {
        state.withLock { s in
            s.backoffUntil = nil
            s.backoffFailures = 0
            s.backoffReason = nil
        }
    }
}

/// Each queue's last cycle row and what it decided, so an identical decision counts up that row instead of adding
/// one (a steady factory writes a row per change, not per cycle). Used only on the journal's writer thread.
final class LastCycles: Sendable {
    private let rows = Mutex<[String: (id: Int64, key: String)]>([:])
    func get(_ queue: String) -> (id: Int64, key: String)? { rows.withLock { $0[queue] } }
    func set(_ queue: String, id: Int64, key: String) { rows.withLock { $0[queue] = (id, key) } }
}

/// Recent submissions per tenant, for `limit.submit_per_cycle`. Used only inside journal transactions, which run
/// one at a time on the journal's writer thread, so limits hold across queues that decide at the same moment.
final class SubmitMarks: Sendable {
    private let marks = Mutex<[String: [SubmitMark]]>([:])

    var snapshot: [String: [SubmitMark]] { marks.withLock { $0 } }

    func add(_ mark: SubmitMark, tenant: String, keep: Double) {
        marks.withLock { m in
            m[tenant, default: []].removeAll { mark.at.timeIntervalSince($0.at) > keep }
            m[tenant, default: []].append(mark)
        }
    }
}

/// Submissions of a tenant at one time.
struct SubmitMark: Sendable {
    var at: Date
    var count: Int
}

/// A pilot to submit and which attempt this is (1 for a new intent).
struct PilotAttempt: Sendable {
    var id: ClientID
    var attempt: Int
}

extension Factory {
    /// One cycle of one queue: WMS status, batch status (journal + shared listing), the scheduler chain, then
    /// submit or retire. Records the cycle (inputs, trace, decision) in the journal, logs it and emits it.
    func cycle(_ runner: QueueRunner) async -> CycleSummary? {
        guard let s = runner.begin() else { return nil }
        defer { runner.end() }
        guard s.enabled else { return nil }
        let plan = s.plan
        let q = plan.config
        var log = logger
        log[metadataKey: "queue.name"] = "\(q.name)"
        log[metadataKey: "tenant.id"] = "\(q.tenant)"
        let clock = environment.clock
        let start = clock.now()
        if let until = s.backoffUntil, start < until {
            let message = "paused until \(StatusFormat.time(until)): \(s.backoffReason ?? "")"
            return record(plan, at: start, message: message, log: log)
        }
        let target = s.target

        // 1. WMS status and the target's listing (shared, TTL), concurrently.
        async let wmsObservation: WMSObservation? = s.source?.observe(q.wmsQueue ?? q.name)
        async let polled = target.refresh()
        let wms = await wmsObservation
        let poll = await polled
        var targetBlock: String?
        if case .unavailable(let why) = poll { targetBlock = why }

        // 2. Stage the queue on its target (once per plan).
        var prepared: PreparedQueue?
        if targetBlock == nil {
            switch await target.prepare(plan) {
            case .success(let p): prepared = p
            case .failure(let e) where e.isPermanent:
                let until = runner.permanentFailure("cannot stage the queue: \(e.message)", now: clock.now(), options: options)
                targetBlock = "cannot stage the queue on \(plan.target.name): \(e.message) (paused until \(StatusFormat.time(until)))"
            case .failure(let e):
                targetBlock = "cannot stage the queue on \(plan.target.name): \(e.message)"
            }
        }

        // 3. Decide and commit the intents (serialised across queues for the limits).
        let now = clock.now()
        let inputs = DecisionInputs(
            plan: plan, now: now, blockedByTarget: targetBlock,
            wms: wms?.counts ?? .missing("no WMS status plugin"), site: wms?.site ?? .missing("no WMS status plugin"),
            tenantLimits: config.tenantLimits.first { $0.tenant == q.tenant })
        let minter = self.minter
        let marks = self.submitMarks
        let lastCycles = self.lastCycles
        let decided: Decided
        do {
            decided = try await commits.perform { db, batch in
                let d = try Self.decide(db, inputs, minter: minter, marks: marks, lastCycles: lastCycles)
                if d.toSubmit.contains(where: { $0.attempt == 1 }) { batch.requireDurability() }
                return d
            }
        } catch {
            log.error("cannot record the cycle", metadata: ["error": "\(error)"])
            return CycleSummary(queue: q.name, at: now, decision: nil, trace: "", action: .blocked("journal: \(error)"))
        }
        let blockedByTarget = targetBlock

        // 4. Act: submit what was committed, or retire.
        var action: CycleSummary.Action = .nothing
        if !decided.toSubmit.isEmpty, let prepared {
            let tally = await target.submit(decided.toSubmit, to: prepared)
            action = .submitted(accepted: tally.accepted, failed: tally.failed, retrying: tally.retrying, inDoubt: tally.inDoubt)
            if let e = tally.permanentError {
                let until = runner.permanentFailure("the target refused the queue's pilots: \(e.message)", now: clock.now(), options: options)
                log.error("pilots refused for good; queue paused", metadata: ["error": "\(e)", "until": "\(StatusFormat.time(until))"])
            } else if tally.accepted > 0 {
                runner.clearBackoff()
            }
        } else {
            switch decided.decision.outcome {
            case .submit:
                action = .blocked(decided.message ?? targetBlock ?? "nothing to submit")
            case .retire(let k):
                if let blockedByTarget {
                    action = .blocked(blockedByTarget)
                } else {
                    let (cancelled, dropped) = await retire(k, plan: plan, target: target, now: now, log: log)
                    action = .retired(cancelled: cancelled, dropped: dropped)
                }
            case .nothing:
                action = .nothing
            case .blocked(let plugin, let reasons):
                action = .blocked("\(plugin): \(reasons.joined(separator: "; "))")
            }
        }
        var idle = 0
        if let after = q.retire.idleAfter, let final = decided.decision.final, final <= 0, blockedByTarget == nil {
            idle = await cancelIdle(after: after, plan: plan, target: target, now: now, log: log)
        }
        let summary = CycleSummary(queue: q.name, at: now, decision: decided.decision.final, trace: decided.trace,
                                   action: action, idleCancelled: idle)
        log.info("cycle", metadata: [
            "sched.count": "\(decided.decision.final.map(String.init) ?? "blocked")", "sched.trace": "\(decided.trace)",
            "action": "\(action)",
        ])
        hub.emit(.cycle(summary))
        return summary
    }

    /// What a cycle decides with (everything but the journal's counts, read inside the journal transaction).
    struct DecisionInputs: Sendable {
        var plan: QueuePlan
        var now: Date
        var blockedByTarget: String?
        var wms: Fact<WMSQueueCounts>
        var site: Fact<SiteStatus>
        var tenantLimits: TenantLimits?
    }

    struct Decided: Sendable {
        var decision: ChainDecision
        var trace: String
        var toSubmit: [PilotAttempt]
        var message: String?
    }

    /// Reads the counts, runs the chain and the limits, and writes the cycle row with its intents, in the journal
    /// transaction of the caller (committed before any submit).
    static func decide(_ db: Database, _ inputs: DecisionInputs, minter: ClientIDMinter, marks: SubmitMarks,
                       lastCycles: LastCycles) throws -> Decided {
        // Untyped throws (StoreError only, in practice): Swift 6.3's optimizer crashes on this function with typed
        // throws (a CopyPropagation ownership error in release builds).
        let (decided, mark) = try decide(db, inputs, minter: minter, recent: marks.snapshot, lastCycles: lastCycles)
        if let mark { marks.add(mark, tenant: inputs.plan.tenant, keep: max(inputs.plan.interval.seconds, 3600)) }
        return decided
    }

    static func decide(_ db: Database, _ inputs: DecisionInputs, minter: ClientIDMinter, recent: [String: [SubmitMark]],
                       lastCycles: LastCycles) throws -> (Decided, SubmitMark?)
    {
        let plan = inputs.plan
        let q = plan.config
        let now = inputs.now
        let chain = q.chain ?? SchedulerChain([])
        let counts = try AgentStore.counts(db, column: "queue", value: q.name)
        let batchFact: Fact<BatchQueueCounts> = inputs.blockedByTarget.map { .missing($0) } ?? .known(counts.forChain)
        var total: Fact<Int> = .missing("not needed")
        if chain.names.contains("MaxPerFactory") {
            total = .known(try AgentStore.counts(db, column: "target", value: plan.target.name).live)
        }
        var history: Fact<PilotHistory> = .known(PilotHistory(now: now, runs: []))
        if let interval = chain.steps.compactMap({ $0 as? Throttle }).map(\.interval).max() {
            history = .known(PilotHistory(
                now: now, runs: try AgentStore.recentRuns(db, queue: q.name, since: now.addingTimeInterval(-Double(interval)))))
        }
        let facts = CycleFacts(wms: inputs.wms, site: inputs.site, batch: batchFact, factoryTotal: total, history: history)
        let decision = chain.decide(facts)
        let (outcome, final) = Self.outcome(of: decision)
        var trace = decision.trace
        var message: String?
        var toSubmit: [PilotAttempt] = []
        var retryIDs: [String] = []
        var intents: [PilotIntent] = []
        var mark: SubmitMark?
        // Intents waiting for a retry were decided by an earlier cycle (and are counted as pilots): they go again
        // when due, with the same client IDs (they were certainly not queued), unless this cycle retires pilots (a
        // retire drops them first).
        if counts.created > 0, inputs.blockedByTarget == nil, final.map({ $0 >= 0 }) ?? true {
            for r in try AgentStore.dueRetries(db, queue: q.name, now: now, limit: 10_000) {
                if let id = ClientID(r.id) {
                    toSubmit.append(PilotAttempt(id: id, attempt: r.attempts + 1))
                    retryIDs.append(r.id)
                }
            }
        }
        if case .submit(let wanted) = outcome {
            if let blocked = inputs.blockedByTarget {
                message = blocked
            } else {
                let (allowed, notes) = try limit(wanted, plan: plan, tenantLimits: inputs.tenantLimits, db: db,
                                                 recent: recent, now: now)
                if !notes.isEmpty { trace += ";" + notes.joined(separator: ";") }
                if allowed == 0 { message = "limits allow no submission this cycle" }
                for id in minter.mint(count: allowed) {
                    intents.append(PilotIntent(id: id.description, tenant: q.tenant, queue: q.name, target: plan.target.name))
                    toSubmit.append(PilotAttempt(id: id, attempt: 1))
                }
                if allowed > 0 { mark = SubmitMark(at: now, count: allowed) }
            }
        }
        // A decision identical to the queue's previous one (nothing submitted) counts up that row.
        let key = "\(final.map(String.init) ?? "blocked")\u{1}\(message ?? "")\u{1}\(Self.blockedReasons(outcome))\u{1}\(trace)"
        if intents.isEmpty, retryIDs.isEmpty, let last = lastCycles.get(q.name), last.key == key,
            try AgentStore.repeatCycle(db, id: last.id, at: now)
        {
            return (Decided(decision: decision, trace: trace, toSubmit: toSubmit, message: message), mark)
        }
        var cycle = Self.cycleRecord(q, at: now, facts: facts, decision: decision)
        cycle.trace = trace
        if let message, cycle.decision == "submit" {
            cycle.decision = "blocked"
            cycle.message = message
        }
        let inserted = try AgentStore.insertCycle(db, cycle, intents: intents, at: now)
        if let id = inserted.id { lastCycles.set(q.name, id: id, key: key) }
        if !retryIDs.isEmpty { _ = try AgentStore.apply(db, retryIDs.map { PilotChange.attempt(id: $0) }, at: now) }
        return (Decided(decision: decision, trace: trace, toSubmit: toSubmit, message: message), mark)
    }

    // These two keep Swift 6.3's optimizer from inlining switches over `ChainDecision.Outcome` into `decide`, which
    // crashes it (an ownership verifier error in release builds).
    @inline(never)
    static func outcome(of d: ChainDecision) -> (ChainDecision.Outcome, Int?) { (d.outcome, d.final) }

    @inline(never)
    static func blockedReasons(_ o: ChainDecision.Outcome) -> String {
        if case .blocked(let plugin, let reasons) = o { return plugin + ": " + reasons.joined(separator: "; ") }
        return ""
    }

    @inline(never)
    static func cycleRecord(_ q: QueueConfig, at now: Date, facts: CycleFacts, decision: ChainDecision) -> QueueCycleRecord {
        QueueCycleRecord(queue: q.name, tenant: q.tenant, at: now, facts: facts, decision: decision)
    }

    /// Records a cycle that did not run the chain (the queue is paused).
    private func record(_ plan: QueuePlan, at now: Date, message: String, log: Logger) -> CycleSummary {
        let c = QueueCycleRecord(queue: plan.name, tenant: plan.tenant, startedAt: now, inputs: "{}", trace: "",
                                 decision: "blocked", count: 0, message: message)
        do { try journal.recordCycle(c) } catch { log.error("cannot record the cycle", metadata: ["error": "\(error)"]) }
        let summary = CycleSummary(queue: plan.name, at: now, decision: nil, trace: "", action: .blocked(message))
        hub.emit(.cycle(summary))
        return summary
    }

    /// The runtime's limits after the chain: the target's (pilots, queued, submissions per cycle) and the tenant's
    /// (idle, running, held, submissions per cycle). Each limit that applies adds a trace part
    /// `Name:in=…,…,ret=…`, so `status` answers "why no pilots?" for them too.
    static func limit(_ wanted: Int, plan: QueuePlan, tenantLimits: TenantLimits?, db: Database,
                      recent: [String: [SubmitMark]], now: Date) throws -> (Int, [String]) {
        var n = wanted
        var notes: [String] = []
        let t = plan.target.limits
        if t.maxPilots != nil || t.maxQueued != nil {
            let c = try AgentStore.counts(db, column: "target", value: plan.target.name)
            if let m = t.maxPilots {
                let r = min(n, max(0, m - c.live))
                notes.append("TargetMaxPilots:in=\(n),maximum=\(m),live=\(c.live),ret=\(r)")
                n = r
            }
            if let m = t.maxQueued {
                let queued = c.created + c.queued
                let r = min(n, max(0, m - queued))
                notes.append("TargetMaxQueued:in=\(n),maximum=\(m),queued=\(queued),ret=\(r)")
                n = r
            }
        }
        if let m = t.submitPerCycle {
            let r = min(n, m)
            notes.append("TargetSubmitCap:in=\(n),maximum=\(m),ret=\(r)")
            n = r
        }
        if let tl = tenantLimits {
            let c = try AgentStore.counts(db, column: "tenant", value: plan.tenant)
            if let m = tl.idle {
                let idle = c.created + c.queued
                let r = min(n, max(0, m - idle))
                notes.append("TenantIdle:in=\(n),maximum=\(m),idle=\(idle),ret=\(r)")
                n = r
            }
            if let m = tl.running {
                let r = min(n, max(0, m - c.live))
                notes.append("TenantRunning:in=\(n),maximum=\(m),live=\(c.live),ret=\(r)")
                n = r
            }
            if let m = tl.held {
                let r = c.held >= m ? 0 : n
                notes.append("TenantHeld:in=\(n),maximum=\(m),held=\(c.held),ret=\(r)")
                n = r
            }
            if let m = tl.submitPerCycle {
                let window = plan.interval.seconds
                let list = (recent[plan.tenant] ?? []).filter { now.timeIntervalSince($0.at) < window }
                let used = list.reduce(0) { $0 + $1.count }
                let r = min(n, max(0, m - used))
                notes.append("TenantSubmitCap:in=\(n),maximum=\(m),used=\(used),ret=\(r)")
                n = r
            }
        }
        return (n, notes)
    }

    /// Retires `k` pilots by the queue's policy: intents waiting for a retry are dropped first (never submitted),
    /// then not-yet-running pilots are cancelled (newest first by default), then, with `retire.policy = cancel`,
    /// running ones. The cancels are recorded first and re-issued by every status poll until a terminal state.
    func retire(_ k: Int, plan: QueuePlan, target: TargetRuntime, now: Date, log: Logger) async -> (Int, Int) {
        let policy = plan.config.retire
        guard policy.mode != .floor else { return (0, 0) }
        let budget = policy.maxPerCycle.map { min(k, $0) } ?? k
        let queue = plan.name
        do {
            let (dropped, picked) = try await commits.perform { db, _ in
                try AgentStore.retire(db, queue: queue, limit: budget, order: policy.order,
                                      includeRunning: policy.mode == .cancel, at: now)
            }
            guard !picked.isEmpty else { return (0, dropped) }
            log.info("retiring pilots", metadata: ["count": "\(picked.count)", "policy": "\(policy.mode.rawValue)"])
            _ = await target.cancel(picked, now: now)
            return (picked.count, dropped)
        } catch {
            log.error("cannot retire pilots", metadata: ["error": "\(error)"])
            return (0, 0)
        }
    }

    /// Cancels pilots queued longer than `after` seconds while the chain asks for none (APF roadmap 2.5), so
    /// their work can go elsewhere.
    func cancelIdle(after: Int, plan: QueuePlan, target: TargetRuntime, now: Date, log: Logger) async -> Int {
        do {
            var idle = try journal.idlePilots(queue: plan.name, longerThan: after, now: now)
            if let cap = plan.config.retire.maxPerCycle { idle = Array(idle.prefix(cap)) }
            guard !idle.isEmpty else { return 0 }
            try journal.requestCancel(idle.map(\.id), at: now)
            log.info("cancelling idle pilots", metadata: ["count": "\(idle.count)", "idle.after": "\(after)"])
            _ = await target.cancel(idle.map(LivePilot.init), now: now)
            return idle.count
        } catch {
            log.error("cannot cancel idle pilots", metadata: ["error": "\(error)"])
            return 0
        }
    }
}

extension LivePilot {
    init(_ r: PilotRecord) {
        self.init(id: r.id, tenant: r.tenant, queue: r.queue, target: r.target, state: r.state, batchID: r.batchID,
                  createdAt: r.createdAt, updatedAt: r.updatedAt, cancelRequestedAt: r.cancelRequestedAt, retryAt: r.retryAt,
                  attempts: r.attempts)
    }
}
