import Agent
import Foundation
import Logging
import SSHSubmit
import Synchronization
import Testing
import TestSupport

/// A clock the test moves by hand; `sleep` returns at once.
final class ManualClock: Sendable {
    private let current: Mutex<Date>
    init(_ start: Date = Date(timeIntervalSince1970: 1_767_225_600)) { current = Mutex(start) }
    var now: Date { current.withLock { $0 } }
    func advance(_ seconds: Double) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
    var status: StatusClock { StatusClock(now: { self.now }, sleep: { _ in }) }
}

/// A factory on simulated targets: every target gets a `SimulatedBatchBackend` (kept in `backends` by target name),
/// demand comes from an `InMemoryDemandSource`, the journal is in memory and the clock is manual.
final class SimFactory: Sendable {
    let clock = ManualClock()
    let demand: InMemoryDemandSource
    let journal: AgentStore
    let factory: Factory
    let behavior: SimulatedBatchBackend.Behavior
    private let made = BackendBox()

    /// Pilots stay pending for an hour unless a test says otherwise (with `Ready`, running pilots no longer count
    /// against a fixed demand).
    static var pendingBehavior: SimulatedBatchBackend.Behavior {
        var b = SimulatedBatchBackend.Behavior()
        b.queueDelay = .seconds(3600)
        return b
    }

    init(_ config: AgentConfig, behavior: SimulatedBatchBackend.Behavior = SimFactory.pendingBehavior,
         options: FactoryOptions = SimFactory.options, journal: AgentStore? = nil, clock: ManualClock? = nil,
         backends: [String: SimulatedBatchBackend] = [:]) throws {
        let clock = clock ?? ManualClock()
        self.journal = try journal ?? AgentStore.inMemory()
        self.behavior = behavior
        let demand = InMemoryDemandSource(now: { clock.now })
        self.demand = demand
        made.m.withLock { $0 = backends }
        let made = self.made
        let env = FactoryEnvironment(
            journal: self.journal, clock: clock.status, logger: .silent,
            makeBackend: { (plan) throws(FactoryError) -> any BatchBackend in
                made.m.withLock { m in
                    if let b = m[plan.name] { return b }
                    let b = SimulatedBatchBackend(target: plan.name, tag: try! FactoryTag(config.factory.clientTag),
                                                  system: plan.system, behavior: behavior, now: { clock.now })
                    m[plan.name] = b
                    return b
                }
            },
            makeDemandSource: { _ in demand }, random: { 0.5 })
        factory = try Factory(config: config, environment: env, options: options)
        self.clockRef = clock
    }

    private let clockRef: ManualClock
    var manual: ManualClock { clockRef }

    static var options: FactoryOptions {
        var o = FactoryOptions()
        o.statusTTL = .seconds(30)
        o.lostGrace = .seconds(300)
        o.missedGrace = .seconds(300)
        o.retryDelay = .seconds(60)
        o.backoffBase = .seconds(30)
        o.backoffMax = .seconds(600)
        o.queueBackoffBase = .seconds(120)
        return o
    }

    func backend(_ target: String) -> SimulatedBatchBackend? { made.m.withLock { $0[target] } }
    var backends: [String: SimulatedBatchBackend] { made.m.withLock { $0 } }

    /// Runs one cycle of every queue, then moves the clock past the status TTL.
    @discardableResult
    func cycle(advance seconds: Double = 31) async -> [String: CycleSummary] {
        let r = await factory.runOnce()
        manual.advance(seconds)
        return Dictionary(uniqueKeysWithValues: r.map { ($0.queue, $0) })
    }

    func counts(_ queue: String) throws -> PilotCounts { try journal.counts(queue: queue) }
}

final class BackendBox: Sendable {
    let m = Mutex<[String: SimulatedBatchBackend]>([:])
}

/// Configuration text for simulated factories: CondorSSH (VC3-style) queues, one target per `host`.
enum SimConfig {
    static func files(queues: String, factory: String = "", auth: String? = nil) -> [String: String] {
        [
            "/cfg/factory.conf": "[Factory]\nfactoryId = sim-factory\ntag = sim\n" + factory,
            "/cfg/auth.conf": auth ?? """
                [sim-key]
                plugin = SSH
                ssh.privatekeyfile = /nonexistent/id_ed25519

                [other-key]
                plugin = SSH
                tenant = other
                ssh.privatekeyfile = /nonexistent/id_other

                """,
            "/cfg/queues.conf": """
                [DEFAULT]
                enabled = True
                wmsstatusplugin = Command
                wmsstatus.command.run = /bin/true
                batchsubmitplugin = CondorSSH
                batchsubmit.condorssh.batch = slurm
                batchsubmit.condorssh.user = apftest
                batchsubmit.condorssh.authprofile = sim-key
                executable = /bin/sh
                schedplugin = Ready, MaxPerCycle
                sched.maxpercycle.maximum = 100

                """ + queues,
        ]
    }

    static func load(queues: String, factory: String = "", auth: String? = nil) -> AgentConfig {
        let f = files(queues: queues, factory: factory, auth: auth)
        return ConfigLoader(files: .memory(f), expander: testExpander).load(paths: ["/cfg/factory.conf", "/cfg/auth.conf", "/cfg/queues.conf"])
    }

    static func target(_ host: String) -> String { "apftest@\(host):22/slurm" }
}
