import Agent
import Foundation
import SSHSubmit
import Synchronization
import Testing
import TestSupport

/// A driver that counts how many of its calls run at once (each takes a little while).
final class ConcurrencyProbe: BatchBackend {
    let inner: SimulatedBatchBackend
    private let running = Mutex((now: 0, max: 0))
    init(_ inner: SimulatedBatchBackend) { self.inner = inner }
    var system: BatchSystem { inner.system }
    var target: String { inner.target }
    var tag: FactoryTag { inner.tag }
    var maxConcurrent: Int { running.withLock { $0.max } }

    private func enter() { running.withLock { $0.now += 1; $0.max = max($0.max, $0.now) } }
    private func leave() { running.withLock { $0.now -= 1 } }

    func prepare(_ queue: QueueSpec) async throws(BatchError) -> PreparedQueue { try await inner.prepare(queue) }
    func submit(_ pilots: [ClientID], to queue: PreparedQueue) async -> [SubmitResult] {
        enter()
        defer { leave() }
        try? await Task.sleep(for: .milliseconds(30))
        return await inner.submit(pilots, to: queue)
    }
    func status(_ ids: [NativeJobID]) async throws(BatchError) -> StatusReport { try await inner.status(ids) }
    func cancel(_ ids: [NativeJobID]) async throws(BatchError) -> CancelReport { try await inner.cancel(ids) }
    func find(_ clientIDs: [ClientID]) async throws(BatchError) -> [ClientID: JobRecord] { try await inner.find(clientIDs) }
}

@Suite(.timeLimit(.minutes(1)))
struct TargetBehaviourTests {
    /// Six queues on one target with `limit.concurrency = 2`: never more than two remote calls at once.
    @Test func perTargetConcurrencyLimit() async throws {
        var q = ""
        for i in 1...6 { q += "[Q\(i)]\nwmsqueue = Q\(i)\nbatchsubmit.condorssh.host = h1\n\n" }
        let config = SimConfig.load(queues: q, factory: "\n[target:\(SimConfig.target("h1"))]\nlimit.concurrency = 2\n")
        #expect(config.isValid, "\(config.errors)")
        let clock = ManualClock()
        let probe = ConcurrencyProbe(SimulatedBatchBackend(target: SimConfig.target("h1"), tag: try FactoryTag("sim"),
                                                           behavior: SimFactory.pendingBehavior, now: { clock.now }))
        let demand = InMemoryDemandSource()
        let env = FactoryEnvironment(journal: try AgentStore.inMemory(), clock: clock.status, logger: .silent,
                                     makeBackend: { _ in probe }, makeDemandSource: { _ in demand })
        let factory = try Factory(config: config, environment: env)
        for i in 1...6 { demand.set("Q\(i)", ready: 3) }
        let r = await factory.runOnce()
        #expect(r.count == 6)
        #expect(probe.inner.submissions.count == 18)
        #expect(probe.maxConcurrent == 2)
    }

    /// A cancel the scheduler does not act on is re-issued by every status poll (level-triggered) until the pilot
    /// is seen ended; then it stops.
    @Test func cancelsAreReissuedUntilTerminal() async throws {
        var b = SimFactory.pendingBehavior
        b.ignoreCancels = true
        let queues = "[Q1]\nwmsqueue = Q1\nbatchsubmit.condorssh.host = h1\nschedplugin = WeightedActivated, KeepNRunning\nsched.weightedactivated.pending = 0\n"
        let sim = try SimFactory(SimConfig.load(queues: queues), behavior: b)
        let backend = try #require(sim.backend(SimConfig.target("h1")))
        sim.demand.set("Q1", ready: 3)
        await sim.cycle()
        sim.demand.set("Q1", ready: 1)
        let r = try #require(await sim.cycle()["Q1"])
        #expect(r.decision == -2)
        let afterRetire = backend.calls.cancel
        await sim.cycle()
        await sim.cycle()
        #expect(backend.calls.cancel == afterRetire + 2, "re-issued at each poll")
        #expect(try sim.counts("Q1").leaving == 2)
        // The chain does not retire them twice: pilots being cancelled do not count as capacity.
        #expect(try #require(await sim.cycle()["Q1"]).decision == 0)
        var healed = b
        healed.ignoreCancels = false
        backend.setBehavior(healed)
        await sim.cycle()  // this poll's re-issued cancel works
        await sim.cycle()  // and this poll sees them cancelled
        let calls = backend.calls.cancel
        await sim.cycle()
        #expect(backend.calls.cancel == calls, "no more cancels once terminal")
        #expect(try sim.counts("Q1").live == 1)
    }
}
