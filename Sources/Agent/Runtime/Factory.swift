import Foundation
import Logging
public import ServiceLifecycle
import AuthProfiles
public import SSHSubmit
import Synchronization

/// The pilot factory as a library ("libapf", APF roadmap 3.0): built from a checked configuration and an
/// environment (journal, target store, clock, logger), run in the foreground or one cycle at a time, observed
/// through `events()`. `apf-agent run` is this type inside a `ServiceGroup`.
///
/// Per queue, every cycle (its interval plus jitter): WMS status and batch status (the journal, refreshed by one
/// shared listing per target per TTL) → the scheduler chain → submit (intents committed to the journal first) or
/// retire (not-yet-running pilots first). See docs/embedding.md.
public final class Factory: Service, Sendable {
    public let environment: FactoryEnvironment
    public let options: FactoryOptions
    public let tag: FactoryTag
    let hub = EventHub()
    /// The loop's journal writes, group-committed (decisions with their intents, submit outcomes, status changes).
    let commits: GroupCommit
    /// Recent submissions per tenant, for `limit.submit_per_cycle` (read and written on the journal's writer thread).
    let submitMarks = SubmitMarks()
    let lastCycles = LastCycles()
    let minter: ClientIDMinter
    private let state: Mutex<State>
    private let applyLock = Mutex(())
    private let shutdownSignal = Wakeup()

    struct State {
        var config: AgentConfig
        var plans: [String: QueuePlan] = [:]
        var problems: [String: FactoryError] = [:]
        var queues: [String: QueueRunner] = [:]
        var targets: [String: TargetRuntime] = [:]
        var sources: [String: any WMSStatusSource] = [:]
        var controls: [String: Bool] = [:]
        var loops: [String: Wakeup] = [:]
        var spawn: AsyncStream<String>.Continuation?
    }

    var journal: AgentStore { environment.journal }
    var logger: Logger { environment.logger }

    /// Builds a factory from a checked configuration. Throws when the configuration has errors; a queue that
    /// cannot be planned (unknown target, another tenant's profile, unreadable wrapper) is reported on its own
    /// (`queueProblems`, a `queueProblem` event and its status line) while the other queues run.
    public init(config: AgentConfig, environment: FactoryEnvironment, options: FactoryOptions = FactoryOptions())
        throws(FactoryError)
    {
        guard config.isValid else { throw Self.invalid(config) }
        self.environment = environment
        self.options = options
        do throws(BatchError) {
            tag = try FactoryTag(config.factory.clientTag)
        } catch {
            throw FactoryError(.invalidConfig, error.message)
        }
        let newest: String?
        do {
            newest = try environment.journal.newestPilotID(prefix: config.factory.clientTag + "-")
        } catch {
            throw FactoryError(.journal, "cannot read the journal: \(error)")
        }
        minter = ClientIDMinter(tag: tag, after: newest.flatMap(ClientID.init))
        commits = GroupCommit(store: environment.journal)
        state = Mutex(State(config: config))
        _ = apply(config)
    }

    static func invalid(_ config: AgentConfig) -> FactoryError {
        let first = config.errors.prefix(3).map(\.description).joined(separator: "; ")
        return FactoryError(.invalidConfig, "the configuration has \(config.errors.count) error(s): \(first)")
    }

    /// Every event from now on (a slow reader loses the oldest ones; the factory never waits for it).
    public func events() -> AsyncStream<FactoryEvent> { hub.subscribe() }

    /// Names of the configured queues, in configuration order.
    public var queueNames: [String] { state.withLock { $0.config.queues.map(\.name) } }

    /// Queues that could not be started, with why.
    public var queueProblems: [String: FactoryError] { state.withLock { $0.problems } }

    /// The configuration in force.
    public var config: AgentConfig { state.withLock { $0.config } }

    // MARK: - Configuration

    struct ApplyResult {
        var started: [String] = []
        var stopped: [String] = []
        var changed: [String] = []
    }

    /// Plans `config` and swaps it in: new queues get runners, removed ones stop, changed ones take the new plan
    /// at their next cycle. Targets whose plan is unchanged keep their driver, listing cache and health.
    @discardableResult
    private func apply(_ config: AgentConfig) -> ApplyResult {
        applyLock.withLock { _ in applyLocked(config) }
    }

    private func applyLocked(_ config: AgentConfig) -> ApplyResult {
        let planner = Planner(config: config, store: environment.resolver?.store, options: options)
        let planned = planner.plan()
        let controls = (try? journal.queueControls().mapValues(\.enabled)) ?? [:]
        let old = state.withLock { s in (targets: s.targets, sources: s.sources, queues: s.queues, plans: s.plans, problems: s.problems) }
        var result = ApplyResult()
        var targets: [String: TargetRuntime] = [:]
        var plans: [String: QueuePlan] = [:]
        var problems: [String: FactoryError] = [:]
        var sources: [String: any WMSStatusSource] = [:]
        var queues: [String: QueueRunner] = [:]
        for q in config.queues {
            switch planned[q.name] {
            case .success(let plan)?:
                let target: TargetRuntime
                if let t = targets[plan.target.name] {
                    guard t.plan == plan.target else {
                        problems[q.name] = FactoryError(.target, "queue \(q.name): target \(plan.target.name) is described differently by another queue")
                        continue
                    }
                    target = t
                } else if let t = old.targets[plan.target.name], t.plan == plan.target {
                    target = t
                    targets[plan.target.name] = t
                } else {
                    do throws(FactoryError) {
                        target = try makeTarget(plan.target, config: config)
                        targets[plan.target.name] = target
                    } catch {
                        problems[q.name] = error
                        continue
                    }
                }
                let source = demandSource(for: q, plan: plan, config: config, existing: old.sources, into: &sources,
                                          targets: targets)
                plans[q.name] = plan
                let enabled = (controls[q.name] ?? q.enabled) && config.factory.enableQueues
                if let runner = old.queues[q.name] {
                    if old.plans[q.name]?.fingerprint != plan.fingerprint { result.changed.append(q.name) }
                    runner.update(plan: plan, target: target, source: source, enabled: enabled)
                    queues[q.name] = runner
                } else {
                    queues[q.name] = QueueRunner(plan: plan, target: target, source: source, enabled: enabled)
                    result.started.append(q.name)
                }
            case .failure(let e)?:
                problems[q.name] = e
            case nil:
                break
            }
        }
        var problemsToReport: [(String, FactoryError)] = []
        for (name, e) in problems where old.problems[name]?.message != e.message { problemsToReport.append((name, e)) }
        var toStop: [Wakeup] = []
        let toStart = state.withLock { s -> [String] in
            for (name, _) in s.queues where queues[name] == nil {
                result.stopped.append(name)
                if let w = s.loops.removeValue(forKey: name) { toStop.append(w) }
            }
            s.config = config
            s.plans = plans
            s.problems = problems
            s.targets = targets
            s.sources = sources
            s.queues = queues
            s.controls = controls
            return s.spawn == nil ? [] : queues.keys.filter { s.loops[$0] == nil }
        }
        for w in toStop { w.fire() }
        for name in toStart { startLoop(name) }
        let now = environment.clock.now()
        for (name, e) in problemsToReport {
            logger.error("queue not started", metadata: ["queue.name": "\(name)", "error": "\(e)"])
            hub.emit(.queueProblem(queue: name, error: e))
            let tenant = config.queue(named: name)?.tenant ?? config.factory.tenant
            _ = try? journal.recordCycle(QueueCycleRecord(
                queue: name, tenant: tenant, startedAt: now, inputs: "{}", trace: "", decision: "blocked", count: 0,
                message: "not started: \(e.message)"))
        }
        return result
    }

    private func makeTarget(_ plan: TargetPlan, config: AgentConfig) throws(FactoryError) -> TargetRuntime {
        let backend: any BatchBackend
        var runner: (any SSHSubmit.CommandRunner)?
        if let make = environment.makeBackend {
            backend = try make(plan)
        } else {
            (backend, runner) = try defaultBackend(plan, config: config)
        }
        return TargetRuntime(plan: plan, backend: backend, runner: runner, journal: journal, commits: commits, clock: environment.clock,
                             options: options, logger: logger, events: hub, random: environment.random)
    }

    /// The real drivers: over SSH (store targets, CondorSSH targets) or on this machine (local mode).
    func defaultBackend(_ plan: TargetPlan, config: AgentConfig) throws(FactoryError) -> (any BatchBackend, any SSHSubmit.CommandRunner) {
        let runner: any SSHSubmit.CommandRunner
        switch plan.access {
        case .store(let name, let override):
            guard let resolver = environment.resolver else {
                throw FactoryError(.target, "target '\(name)' needs the installation store; run with --home (or $APF_HOME)")
            }
            do throws(AuthError) {
                runner = SSHCommandRunner(pool: try resolver.pool(target: name, tenant: plan.tenant, profileOverride: override))
            } catch {
                throw FactoryError(error.code == .crossTenant ? .tenancy : .target, "target '\(name)': \(error.message)")
            }
        case .mapped(let d):
            guard let resolver = environment.resolver else {
                throw FactoryError(.target, "CondorSSH target \(d.name) needs the installation's known_hosts; run with --home (or $APF_HOME)")
            }
            let identity = try MappedIdentity.load(profile: d.profile, config: config)
            let pool = resolver.pools.pool(for: SSHEndpoint(host: d.host, port: d.port, user: d.user), identity: identity,
                                           knownHostsPath: resolver.store.knownHostsPath, options: resolver.options)
            runner = SSHCommandRunner(pool: pool)
        case .local:
            runner = LocalCommandRunner()
        }
        let t = options.batchTimeouts
        switch plan.system {
        case .slurm: return (SlurmBackend(runner: runner, tag: tag, timeouts: t), runner)
        case .sge: return (SGEBackend(runner: runner, tag: tag, timeouts: t), runner)
        case .pbs: return (PBSBackend(runner: runner, tag: tag, timeouts: t), runner)
        case .htcondor: return (HTCondorBackend(runner: runner, tag: tag, timeouts: t), runner)
        }
    }

    /// One source per endpoint, shared by the queues that use it and kept across reloads when unchanged.
    private func demandSource(for q: QueueConfig, plan: QueuePlan, config: AgentConfig, existing: [String: any WMSStatusSource],
                              into sources: inout [String: any WMSStatusSource], targets: [String: TargetRuntime])
        -> (any WMSStatusSource)?
    {
        if let make = environment.makeDemandSource, let s = make(q) { return s }
        guard let wms = q.wmsStatus else { return nil }
        let key: String
        switch wms {
        case .none: return nil
        case .panda: key = "panda"
        case .command(let argv, let timeout, let sleep, let maxAge): key = "command:\(argv.joined(separator: "\u{1}")):\(timeout):\(sleep):\(maxAge)"
        case .http(let url, let timeout, let retries, let sleep, let maxAge): key = "http:\(url):\(timeout):\(retries):\(sleep):\(maxAge)"
        case .batch(let target, let selector, let sleep, let maxAge):
            key = "batch:\(target ?? plan.target.name):\(selector.partition ?? ""):\(selector.constraint ?? ""):\(sleep):\(maxAge)"
        case .condor(let pool, let label): key = "condor:\(pool.scheddHost):\(pool.scheddPort):\(pool.collectorHost):\(pool.collectorPort):\(label)"
        }
        if let s = sources[key] ?? existing[key] {
            sources[key] = s
            return s
        }
        let clock = environment.clock
        let factory = config.factory
        let source: (any WMSStatusSource)?
        switch wms {
        case .none: source = nil
        case .panda: source = PandaStatusSource(PandaStatusSource.Settings(factory.panda), clock: clock)
        case .command(let argv, let timeout, let sleep, let maxAge):
            source = JSONDemandSource.command(
                argv: argv, timeout: .seconds(timeout),
                poll: PollPolicy(refreshAfter: .seconds(sleep), maxAge: .seconds(maxAge)), clock: clock)
        case .http(let url, let timeout, let retries, let sleep, let maxAge):
            source = JSONDemandSource.http(
                url: url, timeout: .seconds(timeout),
                poll: PollPolicy(refreshAfter: .seconds(sleep), maxAge: .seconds(maxAge), retries: retries), clock: clock)
        case .batch(let targetName, let selector, let sleep, let maxAge):
            let runtime = targets[targetName ?? plan.target.name]
            let counter: (any PendingJobCounting)?
            if let c = runtime?.backend as? any PendingJobCounting {
                counter = c
            } else if let runner = runtime?.runner, let system = runtime?.plan.system {
                counter = PendingJobCounter(runner: runner, system: system)
            } else {
                counter = nil
            }
            guard let counter else { return nil }
            source = BatchDemandSource(
                counter: counter, selector: selector,
                poll: PollPolicy(refreshAfter: .seconds(sleep), maxAge: .seconds(maxAge)), clock: clock)
        case .condor(let pool, let label):
            source = BatchDemandSource(
                counter: PendingJobCounter.condorPool(pool), selector: PendingJobSelector(constraint: "\(pool.groupBy) == \"\(label)\""),
                poll: PollPolicy(refreshAfter: .seconds(factory.condorSleep), maxAge: .seconds(factory.condorMaxAge)), clock: clock)
        }
        if let source { sources[key] = source }
        return source
    }

    /// Applies a new configuration if it is valid; otherwise keeps the running one and says why (the event
    /// `configRejected` and the return value).
    @discardableResult
    public func reload(_ config: AgentConfig) -> Result<(started: [String], stopped: [String], changed: [String]), FactoryError> {
        guard config.isValid else {
            let e = Self.invalid(config)
            hub.emit(.configRejected(reason: e.message))
            try? journal.setFactoryState(["config.last-error": e.message], at: environment.clock.now())
            return .failure(e)
        }
        guard config.factory.clientTag == tag.value else {
            let e = FactoryError(.invalidConfig, "the client-ID tag cannot change while the factory runs ('\(tag)' → '\(config.factory.clientTag)'); restart instead")
            hub.emit(.configRejected(reason: e.message))
            return .failure(e)
        }
        let r = apply(config)
        logger.info("configuration applied", metadata: [
            "started": "\(r.started.sorted())", "stopped": "\(r.stopped.sorted())", "changed": "\(r.changed.sorted())",
        ])
        hub.emit(.configApplied(started: r.started.sorted(), stopped: r.stopped.sorted(), changed: r.changed.sorted()))
        try? journal.setFactoryState(["config.last-error": "", "config.applied-at": StatusFormat.time(environment.clock.now())],
                                     at: environment.clock.now())
        return .success((r.started, r.stopped, r.changed))
    }

    /// Re-reads the queue switches (`apf-agent queue enable|disable`) from the journal.
    public func reloadQueueControls() {
        let controls = (try? journal.queueControls().mapValues(\.enabled)) ?? [:]
        state.withLock { s in
            s.controls = controls
            for (name, runner) in s.queues {
                if let q = s.config.queue(named: name) {
                    runner.setEnabled((controls[name] ?? q.enabled) && s.config.factory.enableQueues)
                }
            }
        }
    }

    // MARK: - Running

    /// Start-up reconciliation: every intent in doubt is looked up on its target by client ID (queue listing,
    /// then accounting) and recorded; unmatched ones past the grace period become `missed`; the rest wait (they
    /// still count as pilots, so nothing is submitted in their place).
    @discardableResult
    public func reconcile() async -> ReconciliationSummary {
        var summary = ReconciliationSummary()
        let rows: [LivePilot]
        do {
            rows = try journal.intentsInDoubt()
        } catch {
            summary.unreachable["journal"] = "\(error)"
            return summary
        }
        summary.inDoubt = rows.count
        guard !rows.isEmpty else {
            hub.emit(.reconciled(summary))
            return summary
        }
        let targets = state.withLock { $0.targets }
        let byTarget = Dictionary(grouping: rows, by: \.target)
        let results = await withTaskGroup(of: (String, (found: Int, missed: Int, waiting: Int, error: String?)).self) { group in
            for (name, list) in byTarget {
                guard let t = targets[name] else { continue }
                group.addTask { (name, await t.reconcile(list)) }
            }
            var out: [String: (found: Int, missed: Int, waiting: Int, error: String?)] = [:]
            for await (n, r) in group { out[n] = r }
            return out
        }
        for (name, list) in byTarget {
            guard let r = results[name] else {
                summary.waiting += list.count
                summary.unreachable[name] = "target is not in the configuration; its intents stay in doubt"
                continue
            }
            summary.found += r.found
            summary.missed += r.missed
            summary.waiting += r.waiting
            if let e = r.error { summary.unreachable[name] = e }
        }
        logger.info("reconciled intents in doubt", metadata: [
            "in.doubt": "\(summary.inDoubt)", "found": "\(summary.found)", "missed": "\(summary.missed)",
            "waiting": "\(summary.waiting)",
        ])
        hub.emit(.reconciled(summary))
        return summary
    }

    /// Runs one cycle of every enabled queue, concurrently, and returns what each did (tests, benchmarks,
    /// embedders that drive their own schedule).
    public func runOnce() async -> [CycleSummary] {
        let runners = state.withLock { Array($0.queues.values) }
        // At most `width` cycles in flight: enough to keep every target and the journal's group commit busy, few
        // enough that a thousand queues do not hold a thousand cycles' state at once.
        let width = 64
        return await withTaskGroup(of: CycleSummary?.self) { group in
            var next = runners.makeIterator()
            for _ in 0..<width {
                guard let r = next.next() else { break }
                group.addTask { await self.cycle(r) }
            }
            var out: [CycleSummary] = []
            for await s in group {
                if let s { out.append(s) }
                if let r = next.next() { group.addTask { await self.cycle(r) } }
            }
            return out.sorted { $0.queue < $1.queue }
        }
    }

    /// Runs until `shutdown()`, a graceful shutdown of its `ServiceGroup`, or cancellation: reconciles, then runs
    /// every queue's loop (a cycle, then its interval plus jitter). A queue's cycle that has started finishes
    /// (its submits complete and are recorded) before this returns.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await self.runLoops()
            } onCancel: {
                self.shutdown()
            }
        } onGracefulShutdown: {
            self.shutdown()
        }
    }

    private func runLoops() async {
        try? journal.setFactoryState(["started-at": StatusFormat.time(environment.clock.now())], at: environment.clock.now())
        await reconcile()
        let (stream, continuation) = AsyncStream<String>.makeStream()
        let initial = state.withLock { s -> [String] in
            s.spawn = continuation
            return s.queues.keys.sorted()
        }
        if shutdownSignal.isFired { continuation.finish() }
        for name in initial { startLoop(name) }
        await withDiscardingTaskGroup { group in
            for await name in stream {
                guard let wake = state.withLock({ $0.loops[name] }) else { continue }
                group.addTask { await self.loop(name, stop: wake) }
            }
        }
        state.withLock { $0.spawn = nil }
        hub.emit(.stopped)
        logger.info("factory stopped")
    }

    private func startLoop(_ name: String) {
        let spawn = state.withLock { s -> AsyncStream<String>.Continuation? in
            guard s.loops[name] == nil, let spawn = s.spawn else { return nil }
            s.loops[name] = Wakeup()
            return spawn
        }
        spawn?.yield(name)
    }

    private func loop(_ name: String, stop: Wakeup) async {
        while !stop.isFired, !shutdownSignal.isFired {
            guard let runner = state.withLock({ $0.queues[name] }) else { break }
            _ = await cycle(runner)
            let interval = runner.plan.interval
            let pause = interval.seconds * (1 + options.jitter * environment.random())
            await stop.sleep(.seconds(double: pause)) { [shutdownSignal, clock = environment.clock] d in
                await shutdownSignal.sleep(d, using: clock.sleep)
            }
        }
        state.withLock { s in if s.loops[name] === stop { s.loops[name] = nil } }
    }

    /// Stops starting cycles; `run()` returns once the cycles in flight have finished.
    public func shutdown() {
        shutdownSignal.fire()
        let (spawn, loops) = state.withLock { s in (s.spawn, Array(s.loops.values)) }
        for w in loops { w.fire() }
        spawn?.finish()
    }

    // MARK: - Status

    /// Per queue the apfmon columns and the last message, per target its health.
    public func status() throws(StoreError) -> FactoryStatus {
        let (config, problems, controls, targets) = state.withLock { s in (s.config, s.problems, s.controls, s.targets) }
        return try FactoryStatus.read(journal: journal, config: config, problems: problems.mapValues(\.message),
                                      controls: controls, targetNames: Set(targets.keys), now: environment.clock.now())
    }

    func targetRuntime(_ name: String) -> TargetRuntime? { state.withLock { $0.targets[name] } }
}
