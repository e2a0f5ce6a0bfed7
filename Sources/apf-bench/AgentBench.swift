import Agent
import ArgumentParser
import Foundation
import GRDB
import Logging
import SSHSubmit
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// P4 and P5: the factory's own cost, on the in-process `SimulatedBatchBackend` (no SSH, no scheduler: what is
/// measured is the agent).
struct AgentBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "P4: 1,000 queues on simulated targets, CPU per factory cycle and RSS; P5: start-up with 100,000 journal rows, 10,000 in doubt.")

    @Option(help: "Queues for P4.") var queues = 1000
    @Option(help: "Simulated targets the queues are spread over.") var targets = 10
    @Option(help: "Cycles before measuring (to reach a steady state).") var warmup = 30
    @Option(help: "Measured cycles.") var cycles = 20
    @Option(help: "Journal rows for P5.") var rows = 100_000
    @Option(help: "Of those, intents in doubt.") var inDoubt = 10_000
    @Flag(help: "Only P4.") var p4Only = false
    @Flag(help: "Only P5.") var p5Only = false
    @Flag(help: "Print each cycle's CPU time.") var verbose = false

    func run() async throws {
        if !p5Only { try await p4() }
        if !p4Only { try await p5() }
    }

    static let logger = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The simulation's clock: each factory cycle is 360 s of simulated time (APF's `apfqueue.sleep`).
    final class Clock: Sendable {
        private let t = Mutex(Date(timeIntervalSince1970: 1_767_225_600))
        var now: Date { t.withLock { $0 } }
        func advance(_ s: Double) { t.withLock { $0 = $0.addingTimeInterval(s) } }
        var status: StatusClock { StatusClock(now: { self.now }, sleep: { _ in }) }
    }

    final class Backends: Sendable {
        let m = Mutex<[String: SimulatedBatchBackend]>([:])
    }

    /// `queues` CondorSSH (VC3-style) queues on `targets` login nodes, with a 7-step chain.
    static func config(queues: Int, targets: Int, journal: String) throws -> AgentConfig {
        // A pilot wrapper of typical size (a few KB), shared by every queue.
        let wrapper = (journal as NSString).deletingLastPathComponent + "/pilot-wrapper.sh"
        let body = "#!/bin/sh\n# a pilot wrapper\n" + String(repeating: "echo \"$APF_CLIENT_ID\" >/dev/null\n", count: 100)
        try body.write(toFile: wrapper, atomically: true, encoding: .utf8)
        var q = """
            [DEFAULT]
            enabled = True
            wmsstatusplugin = Command
            wmsstatus.command.run = /bin/true
            schedplugin = WeightedActivated, KeepNRunning, Scale, MaxPerCycle, StatusTest, StatusOffline, MaxPending
            sched.weightedactivated.pending = 0
            sched.scale.factor = 1.0
            sched.maxpercycle.maximum = 50
            sched.statustest.pilots = 1
            sched.maxpending.maximum = 100
            batchsubmitplugin = CondorSSH
            batchsubmit.condorssh.batch = slurm
            batchsubmit.condorssh.user = pilot
            batchsubmit.condorssh.authprofile = bench-key
            retire.policy = cancel
            executable = \(wrapper)
            executable.arguments = -s %(wmsqueue)s

            """
        for i in 0..<queues { q += "[Q\(i)]\nwmsqueue = Q\(i)\nbatchsubmit.condorssh.host = login\(i % targets).example.org\n\n" }
        let files = [
            "/b/factory.conf": "[Factory]\nfactoryId = bench\ntag = bnc\njournal = \(journal)\n",
            "/b/auth.conf": "[bench-key]\nplugin = SSH\nssh.privatekeyfile = /nonexistent\n",
            "/b/queues.conf": q,
        ]
        let config = ConfigLoader(files: .memory(files)).load(paths: ["/b/factory.conf", "/b/auth.conf", "/b/queues.conf"])
        guard config.isValid else { throw ValidationError("bench config: \(config.errors.prefix(3))") }
        return config
    }

    static func environment(journal: AgentStore, clock: Clock, backends: Backends, demand: InMemoryDemandSource,
                            behavior: SimulatedBatchBackend.Behavior) -> FactoryEnvironment {
        FactoryEnvironment(
            journal: journal, clock: clock.status, logger: logger,
            makeBackend: { (plan) throws(FactoryError) -> any BatchBackend in
                backends.m.withLock { m in
                    if let b = m[plan.name] { return b }
                    let b = SimulatedBatchBackend(target: plan.name, tag: try! FactoryTag("bnc"), system: plan.system,
                                                  behavior: behavior, now: { clock.now })
                    m[plan.name] = b
                    return b
                }
            },
            makeDemandSource: { _ in demand }, random: { 0.5 })
    }

    static func cpuSeconds() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec)
            + Double(u.ru_stime.tv_usec) / 1e6
    }

    static func rssMB() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return -1 }
        let kb = Double(line.split(separator: " ").dropFirst().first.map(String.init) ?? "") ?? -1
        return kb / 1024
    }

    // MARK: - P4

    func p4() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("apf-bench-p4-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journalPath = dir + "/journal.sqlite"
        let rss0 = Self.rssMB()
        let config = try Self.config(queues: queues, targets: targets, journal: journalPath)
        let rss1 = Self.rssMB()
        let journal = try AgentStore.open(path: journalPath)
        let clock = Clock()
        let demand = InMemoryDemandSource(now: { clock.now })
        var behavior = SimulatedBatchBackend.Behavior()
        behavior.queueDelay = .seconds(600)  // pilots wait about two cycles,
        behavior.runtime = .seconds(2 * 3600)  // then run 2-4 h (20-40 cycles), spread so they do not all end together
        behavior.runtimeSpread = .seconds(2 * 3600)
        behavior.listingRetention = .seconds(300)
        behavior.accountingRetention = .seconds(2 * 3600)
        var options = FactoryOptions()
        options.statusTTL = .seconds(60)
        let backends = Backends()
        let factory = try Factory(config: config, environment: Self.environment(
            journal: journal, clock: clock, backends: backends, demand: demand, behavior: behavior), options: options)
        print(String(format: "P4: RSS %.1f MB at start, %.1f MB with the configuration, %.1f MB with the factory", rss0, rss1, Self.rssMB()))
        var rng = SplitMix(state: 42)
        var level: [Int] = (0..<queues).map { 5 + $0 % 10 }  // 5-14 pilots per queue, ~9,500 in all
        for i in 0..<queues { demand.set("Q\(i)", ready: level[i]) }
        print("P4: \(queues) queues on \(targets) simulated targets, chain of 7 steps, journal \(journalPath)")
        var measured: [Double] = []
        var submitted = 0
        var decisions = 0
        for c in 0..<(warmup + cycles) {
            // Demand moves: 5% of the queues go up or down by up to 3 every cycle (submits and retires).
            for _ in 0..<max(1, queues / 20) {
                let i = Int(rng.next() % UInt64(queues))
                level[i] = max(0, min(20, level[i] + Int(rng.next() % 7) - 3))
                demand.set("Q\(i)", ready: level[i])
            }
            let before = Self.cpuSeconds()
            let summaries = await factory.runOnce()
            let cpu = Self.cpuSeconds() - before
            clock.advance(360)
            guard summaries.count == queues else { throw ValidationError("only \(summaries.count) queues cycled") }
            if verbose { print(String(format: "P4: cycle %d: %.1f ms CPU, %d queue cycles", c, cpu * 1000, summaries.count)) }
            if c >= warmup {
                measured.append(cpu)
                decisions += summaries.count
                for s in summaries { if case .submitted(let a, _, _, _) = s.action { submitted += a } }
            }
        }
        let live = try journal.counts(target: "pilot@login0.example.org:22/slurm").live * targets
        func size(_ p: String) -> Int { ((try? FileManager.default.attributesOfItem(atPath: p)[.size]) as? NSNumber)?.intValue ?? 0 }
        print("P4: journal \(size(journalPath) >> 20) MB, WAL \(size(journalPath + "-wal") >> 20) MB")
        let perCycle = measured.reduce(0, +) / Double(measured.count) * 1000
        let sorted = measured.sorted()
        print(String(format: "P4: %d measured cycles (%d queue cycles): CPU per factory cycle mean %.1f ms, min %.1f ms, max %.1f ms; %.1f µs per queue cycle",
                     measured.count, decisions, perCycle, sorted.first! * 1000, sorted.last! * 1000, perCycle * 1000 / Double(queues)))
        print("P4: steady state about \(live) live pilots; \(submitted) pilots submitted in the measured cycles")
        print(String(format: "P4 queues=%d cpu_ms_per_cycle=%.1f rss_mb=%.1f", queues, perCycle, Self.rssMB()))
    }

    // MARK: - P5

    func p5() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("apf-bench-p5-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journalPath = dir + "/journal.sqlite"
        let clock = Clock()
        let now = clock.now
        // The journal a factory left after a crash: `rows` pilots of 100 queues on `targets` targets, of which
        // `inDoubt` are intents without a batch ID; half of those reached the batch system before the crash.
        let backends = Backends()
        let tag = try FactoryTag("bnc")
        let minter = ClientIDMinter(tag: tag, unixSeconds: { UInt64(now.timeIntervalSince1970) - 7200 })
        let ids = minter.mint(count: rows)
        let t0 = ContinuousClock.now
        do {
            let store = try AgentStore.open(path: journalPath)
            try await store.writer.write { db in
                let insert = try db.makeStatement(sql: """
                    INSERT INTO pilot (id, tenant, queue, target, state, batchID, createdAt, submittedAt, startedAt, endedAt,
                                       updatedAt, attempts) VALUES (?, 'default', ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
                    """)
                let ended = ["completed", "completed", "completed", "failed", "cancelled", "timeout"]
                for (i, id) in ids.enumerated() {
                    let q = i % 100
                    let target = "pilot@login\(q % targets).example.org:22/slurm"
                    let created = now.addingTimeInterval(-7200 + Double(i) * 0.05)
                    if i >= rows - inDoubt {
                        // In doubt: half of them old enough to be missed if not found.
                        let age = i % 2 == 0 ? 3600.0 : 60.0
                        try insert.execute(arguments: [id.description, "Q\(q)", target, "submitting", nil, now.addingTimeInterval(-age),
                                                       nil, nil, nil, now.addingTimeInterval(-age)])
                    } else {
                        try insert.execute(arguments: [id.description, "Q\(q)", target, ended[i % ended.count], "\(1000 + i)_1",
                                                       created, created, created, created.addingTimeInterval(1800),
                                                       created.addingTimeInterval(1800)])
                    }
                }
            }
        }
        print(String(format: "P5: wrote %d journal rows (%d in doubt) in %.2f s", rows, inDoubt, (ContinuousClock.now - t0).seconds))
        // Half of the intents in doubt did reach their target.
        var behavior = SimulatedBatchBackend.Behavior()
        behavior.queueDelay = .seconds(3600)
        let doubtIDs = Array(ids.suffix(inDoubt))
        let reached = doubtIDs.enumerated().filter { $0.offset % 4 < 2 }.map(\.element)
        var byTarget: [String: [ClientID]] = [:]
        for id in reached {
            let i = rows - inDoubt + doubtIDs.firstIndex(of: id)!
            byTarget["pilot@login\((i % 100) % targets).example.org:22/slurm", default: []].append(id)
        }
        for (target, list) in byTarget {
            let b = SimulatedBatchBackend(target: target, tag: tag, system: .slurm, behavior: behavior, now: { clock.now })
            let spec = QueueSpec(name: "X", factory: "bench", tag: tag, payload: .wrapper(PilotWrapper(name: "p", content: [])))
            let prepared = try await b.prepare(spec)
            _ = await b.submit(list, to: prepared)
            backends.m.withLock { $0[target] = b }
        }

        // The restart: read the configuration, open the journal, build the factory (minter seeded from the
        // journal), reconcile.
        let start = ContinuousClock.now
        let config = try Self.config(queues: 100, targets: targets, journal: journalPath)
        let journal = try AgentStore.open(path: journalPath)
        let factory = try Factory(config: config, environment: Self.environment(
            journal: journal, clock: clock, backends: backends, demand: InMemoryDemandSource(), behavior: behavior))
        let built = ContinuousClock.now
        let summary = await factory.reconcile()
        let took = (ContinuousClock.now - start).seconds
        print(String(format: "P5: configuration + journal + factory %.3f s, reconcile %.3f s: %d in doubt, %d found by client ID, %d missed, %d waiting",
                     (built - start).seconds, (ContinuousClock.now - built).seconds, summary.inDoubt, summary.found, summary.missed,
                     summary.waiting))
        guard summary.found == reached.count, summary.inDoubt == inDoubt else {
            throw ValidationError("P5: reconciliation found \(summary.found) of \(reached.count)")
        }
        print(String(format: "P5 rows=%d restart_s=%.3f", rows, took))
    }
}
