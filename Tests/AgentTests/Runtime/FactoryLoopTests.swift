import Agent
import Foundation
import SSHSubmit
import Testing

/// The factory's loop on simulated targets: chain → submit/retire, the journal-before-submit rule, shared status.
@Suite(.timeLimit(.minutes(1)))
struct FactoryLoopTests {
    /// Demand 20 with MaxPerCycle 8: 8, 8, 4, then nothing (pending pilots count against demand); every pilot is in
    /// the journal with its batch ID and reached the batch system exactly once; the cycle rows keep the trace.
    @Test func rampsToDemandAndKeepsTheTrace() async throws {
        let sim = try SimFactory(SimConfig.load(queues: "[Q1]\nwmsqueue = Q1\nbatchsubmit.condorssh.host = h1\nsched.maxpercycle.maximum = 8\n"),
                                 behavior: { var b = SimulatedBatchBackend.Behavior(); b.queueDelay = .seconds(3600); return b }())
        sim.demand.set("Q1", ready: 20)
        var submitted: [Int] = []
        for _ in 0..<4 {
            let s = try #require(await sim.cycle()["Q1"])
            if case .submitted(let a, _, _, _) = s.action { submitted.append(a) } else { submitted.append(0) }
        }
        #expect(submitted == [8, 8, 4, 0])
        let c = try sim.counts("Q1")
        #expect(c.queued == 20 && c.created == 0)
        let backend = try #require(sim.backend(SimConfig.target("h1")))
        #expect(backend.submissions.count == 20 && backend.submissions.values.allSatisfy { $0 == 1 })
        let pilots = try sim.journal.livePilots(queue: "Q1")
        #expect(Set(pilots.map(\.id)) == Set(backend.submissions.keys.map(\.description)), "journal == batch system")
        #expect(pilots.allSatisfy { $0.batchID != nil && $0.id.hasPrefix("sim-") })
        let last = try #require(try sim.journal.recentCycles(queue: "Q1", limit: 1).first)
        #expect(last.trace == "Ready:in=0,activated=20,offset=0,pending=20,ret=0;MaxPerCycle:in=0,maxpercycle=8,ret=0")
        #expect(last.decision == "nothing")
        // The same decision again is counted on that row, not repeated.
        for _ in 0..<3 { await sim.cycle() }
        let again = try sim.journal.recentCycles(queue: "Q1", limit: 2)
        #expect(again.first?.id == last.id && again.first?.repeats == 4)
        #expect(again.first.map { $0.lastSeenAt > $0.startedAt } == true)
        #expect(again.last?.decision == "submit")
    }

    /// Total pilots follow demand up and down (WeightedActivated with pending weight 0, then KeepNRunning): a drop
    /// retires the newest not-yet-running pilots first; the cancel is re-issued until the target shows it ended.
    @Test func followsDemandDownNewestPendingFirst() async throws {
        let queues = """
            [Q1]
            wmsqueue = Q1
            batchsubmit.condorssh.host = h1
            schedplugin = WeightedActivated, KeepNRunning
            sched.weightedactivated.pending = 0
            retire.policy = cancel

            """
        var b = SimulatedBatchBackend.Behavior()
        b.queueDelay = .seconds(10)
        b.slots = 4
        let sim = try SimFactory(SimConfig.load(queues: queues), behavior: b)
        sim.demand.set("Q1", ready: 10)
        await sim.cycle()
        #expect(try sim.counts("Q1").live == 10)
        await sim.cycle()  // 4 start running
        let before = try sim.journal.livePilots(queue: "Q1").sorted { $0.id < $1.id }
        #expect(try sim.counts("Q1").running == 4)
        sim.demand.set("Q1", ready: 3)
        let s = try #require(await sim.cycle()["Q1"])
        #expect(s.decision == -7)
        guard case .retired(let cancelled, _) = s.action else { Issue.record("\(s.action)"); return }
        #expect(cancelled == 7)
        let marked = try sim.journal.livePilots(queue: "Q1").filter { $0.cancelRequestedAt != nil }.map(\.id)
        // The 6 pending ones (newest first), then the newest running one.
        let pendingIDs = before.filter { $0.state == .pending }.map(\.id)
        let runningIDs = before.filter { $0.state == .running }.map(\.id)
        #expect(Set(marked) == Set(pendingIDs + [runningIDs.max()!]))
        await sim.cycle()
        let after = try sim.counts("Q1")
        #expect(after.live == 3 && after.running == 3)
        #expect(try sim.journal.pilot(marked[0])?.state == .cancelled)
        // Demand up again: only the difference is submitted.
        sim.demand.set("Q1", ready: 5)
        let up = try #require(await sim.cycle()["Q1"])
        #expect(up.decision == 2)
        #expect(try sim.counts("Q1").live == 5)
    }

    /// Seven queues on two targets: one status listing per target per TTL, shared by its queues.
    @Test func oneStatusListingPerTargetPerCycle() async throws {
        var q = ""
        for i in 1...5 { q += "[A\(i)]\nwmsqueue = A\(i)\nbatchsubmit.condorssh.host = ha\n\n" }
        for i in 1...2 { q += "[B\(i)]\nwmsqueue = B\(i)\nbatchsubmit.condorssh.host = hb\n\n" }
        let sim = try SimFactory(SimConfig.load(queues: q))
        for name in ["A1", "A2", "A3", "A4", "A5", "B1", "B2"] { sim.demand.set(name, ready: 2) }
        await sim.cycle()
        #expect(sim.backend(SimConfig.target("ha"))?.calls.status == 1)
        #expect(sim.backend(SimConfig.target("hb"))?.calls.status == 1)
        _ = await sim.factory.runOnce()
        #expect(sim.backend(SimConfig.target("ha"))?.calls.status == 2)
        // Within the TTL the listing is reused.
        _ = await sim.factory.runOnce()
        #expect(sim.backend(SimConfig.target("ha"))?.calls.status == 2)
        #expect(try sim.counts("A3").live == 2)
    }

    /// An unknown submit outcome is never resubmitted: the intent stays in doubt (counted as a pilot), the next
    /// listing finds it by client ID, and the batch system received every client ID once.
    @Test func unknownOutcomeIsFoundNotResubmitted() async throws {
        let sim = try SimFactory(SimConfig.load(queues: "[Q1]\nwmsqueue = Q1\nbatchsubmit.condorssh.host = h1\n"))
        let backend = try #require(sim.backend(SimConfig.target("h1")))
        backend.injectSubmitFaults([.unknown(queued: true), .unknown(queued: true), .unknown(queued: true)])
        sim.demand.set("Q1", ready: 5)
        let first = try #require(await sim.cycle()["Q1"])
        guard case .submitted(let accepted, _, _, let doubt) = first.action else { Issue.record("\(first.action)"); return }
        #expect(accepted == 2 && doubt == 3)
        #expect(try sim.counts("Q1").created == 3)
        let second = try #require(await sim.cycle()["Q1"])
        #expect(second.decision == 0, "in-doubt intents count as pilots")
        #expect(try sim.counts("Q1").created == 0 && sim.counts("Q1").queued == 5)
        #expect(backend.submissions.count == 5 && backend.submissions.values.allSatisfy { $0 == 1 })
    }

    /// An unknown outcome whose job does not exist: the intent blocks a replacement during the grace period, then
    /// becomes `missed` (after a look-up by client ID), and only then is a new pilot (new client ID) submitted.
    @Test func unknownAndAbsentBecomesMissedAfterGrace() async throws {
        let sim = try SimFactory(SimConfig.load(queues: "[Q1]\nwmsqueue = Q1\nbatchsubmit.condorssh.host = h1\n"))
        let backend = try #require(sim.backend(SimConfig.target("h1")))
        backend.injectSubmitFaults([.unknown(queued: false)])
        sim.demand.set("Q1", ready: 1)
        await sim.cycle()
        let intent = try #require(try sim.journal.livePilots(queue: "Q1").first)
        #expect(intent.state == .submitting)
        for _ in 0..<5 {
            let s = try #require(await sim.cycle(advance: 40)["Q1"])
            #expect(s.decision == 0)
        }
        #expect(try sim.journal.pilot(intent.id)?.state == .submitting)
        #expect(backend.submissions.isEmpty)
        sim.manual.advance(200)
        // This cycle's poll finds nothing by client ID past the grace: missed; the chain then asks for a new pilot.
        let s = try #require(await sim.cycle()["Q1"])
        #expect(try sim.journal.pilot(intent.id)?.state == .missed)
        #expect(backend.calls.find >= 1)
        #expect(s.decision == 1)
        #expect(backend.submissions.count == 1 && backend.submissions.keys.first?.description != intent.id)
        #expect(try #require(await sim.cycle()["Q1"]).decision == 0)
    }

    /// A transient refusal (certainly not queued) is retried later with the same client ID; a permanent one fails
    /// the pilots and pauses the queue, without touching another queue on the same target.
    @Test func transientRetriedSamePermanentPauses() async throws {
        let queues = "[Q1]\nwmsqueue = Q1\nbatchsubmit.condorssh.host = h1\n\n[Q2]\nwmsqueue = Q2\nbatchsubmit.condorssh.host = h1\n"
        let sim = try SimFactory(SimConfig.load(queues: queues))
        let backend = try #require(sim.backend(SimConfig.target("h1")))
        sim.demand.set("Q1", ready: 2)
        backend.injectSubmitFaults([.fail(permanent: false), .fail(permanent: false)])
        _ = await sim.factory.runOnce()
        let waiting = try sim.journal.livePilots(queue: "Q1")
        #expect(waiting.count == 2 && waiting.allSatisfy { $0.state == .submitting && $0.retryAt != nil })
        // The target backs off after the failure; after the back-off and the retry delay, the same IDs go again.
        sim.manual.advance(700)
        await sim.cycle()
        #expect(Set(backend.submissions.keys.map(\.description)) == Set(waiting.map(\.id)))
        #expect(try sim.counts("Q1").queued == 2)

        sim.demand.set("Q2", ready: 3)
        backend.injectSubmitFaults([.fail(permanent: true), .fail(permanent: true), .fail(permanent: true)])
        let r = await sim.cycle()
        guard case .submitted(_, let failed, _, _)? = r["Q2"]?.action else { Issue.record("\(String(describing: r["Q2"]))"); return }
        #expect(failed == 3)
        let paused = try #require(await sim.cycle()["Q2"])
        guard case .blocked(let why) = paused.action else { Issue.record("\(paused.action)"); return }
        #expect(why.contains("paused until"))
        sim.demand.set("Q1", ready: 4)
        #expect(try #require(await sim.cycle()["Q1"]).decision == 2, "the other queue on the target keeps going")
    }

    /// A hung target backs off (status shows "backing off: <reason>, next try <time>") and its queues are blocked,
    /// while a queue on another target submits in the same round; after the back-off one probe heals it.
    @Test func sickTargetBacksOffWithoutStallingOthers() async throws {
        let queues = "[QA]\nwmsqueue = QA\nbatchsubmit.condorssh.host = sick\n\n[QB]\nwmsqueue = QB\nbatchsubmit.condorssh.host = well\n"
        let sim = try SimFactory(SimConfig.load(queues: queues))
        sim.demand.set("QA", ready: 3)
        sim.demand.set("QB", ready: 3)
        try #require(sim.backend(SimConfig.target("sick"))).setHung(true)
        let r = await sim.cycle(advance: 1)
        guard case .blocked(let why)? = r["QA"]?.action else { Issue.record("\(String(describing: r["QA"]))"); return }
        #expect(why.contains("status"))
        #expect(try sim.counts("QB").live == 3)
        let status = try sim.factory.status()
        let sick = try #require(status.targets.first { $0.name == SimConfig.target("sick") })
        #expect(sick.state == "backing-off" && sick.message.hasPrefix("backing off: status:") && sick.message.contains("next try 20"))
        #expect(status.queues.first { $0.name == "QA" }?.lastMessage?.contains("backing off") == true)
        // Still backing off: no call reaches the target.
        let callsBefore = try #require(sim.backend(SimConfig.target("sick"))).calls.status
        await sim.cycle(advance: 1)
        #expect(sim.backend(SimConfig.target("sick"))?.calls.status == callsBefore)
        // Healed: after the back-off, one probe, then normal work.
        try #require(sim.backend(SimConfig.target("sick"))).setHung(false)
        sim.manual.advance(60)
        await sim.cycle()
        #expect(try sim.counts("QA").live == 3)
        #expect(try sim.factory.status().targets.first { $0.name == SimConfig.target("sick") }?.state == "ok")
    }

    /// States only move forward, and a pilot missing from listing and accounting is `lost` only after the grace
    /// period; a pilot the site removed is `removed`, not `cancelled`.
    @Test func lostOnlyAfterGraceRemovedBySite() async throws {
        var b = SimulatedBatchBackend.Behavior()
        b.queueDelay = .seconds(0)
        let sim = try SimFactory(SimConfig.load(queues: "[Q1]\nwmsqueue = Q1\nbatchsubmit.condorssh.host = h1\nschedplugin = Fixed\nsched.fixed.pilotspercycle = 2\n"), behavior: b)
        sim.demand.set("Q1", ready: 0)
        await sim.cycle()
        sim.demand.set("Q1", ready: 0)
        let backend = try #require(sim.backend(SimConfig.target("h1")))
        let pilots = try sim.journal.livePilots(queue: "Q1")
        let ids = pilots.compactMap { p in p.batchID.flatMap { NativeJobID($0, system: .slurm) } }
        try #require(ids.count == 2)
        backend.forget(ids[0])
        backend.removeBySite(ids[1])
        await sim.cycle(advance: 100)
        let gone = try #require(pilots.first { $0.batchID == ids[0].text })
        let removed = try #require(pilots.first { $0.batchID == ids[1].text })
        #expect(try sim.journal.pilot(gone.id)?.state != .lost)
        #expect(try sim.journal.pilot(removed.id)?.state == .removed)
        for _ in 0..<3 { await sim.cycle(advance: 100) }
        #expect(try sim.journal.pilot(gone.id)?.state == .lost)
        let events = try sim.journal.events(pilotID: gone.id).map(\.message)
        #expect(events.contains { $0.contains("→ lost") })
    }

    /// Roadmap 2.5: pilots queued longer than `retire.idle_after` while the chain asks for none are cancelled.
    @Test func idlePilotsCancelledWhenDemandIsGone() async throws {
        var b = SimulatedBatchBackend.Behavior()
        b.slots = 0
        let sim = try SimFactory(SimConfig.load(queues: "[Q1]\nwmsqueue = Q1\nbatchsubmit.condorssh.host = h1\nretire.idle_after = 600\n"), behavior: b)
        sim.demand.set("Q1", ready: 4)
        await sim.cycle()
        sim.demand.set("Q1", ready: 0)
        let early = try #require(await sim.cycle()["Q1"])
        #expect(early.idleCancelled == 0)
        sim.manual.advance(600)
        let late = try #require(await sim.cycle()["Q1"])
        #expect(late.idleCancelled == 4)
        await sim.cycle()
        #expect(try sim.counts("Q1").live == 0)
    }

    /// Per-tenant limits hold across queues that decide in the same round, and show in the trace.
    @Test func tenantLimitsAcrossQueues() async throws {
        let queues = "[Q1]\nwmsqueue = Q1\nbatchsubmit.condorssh.host = h1\n\n[Q2]\nwmsqueue = Q2\nbatchsubmit.condorssh.host = h2\n"
        let sim = try SimFactory(SimConfig.load(queues: queues, factory: "\n[tenant:default]\nlimit.idle = 7\n"))
        sim.demand.set("Q1", ready: 10)
        sim.demand.set("Q2", ready: 10)
        await sim.cycle()
        #expect(try sim.journal.counts(tenant: "default").live == 7)
        let trace = try #require(try sim.journal.recentCycles(queue: "Q1", limit: 1).first?.trace)
        #expect(trace.contains(";TenantIdle:in="))
    }

    /// Every factory event of a cycle reaches a subscriber.
    @Test func eventsAreObservable() async throws {
        let sim = try SimFactory(SimConfig.load(queues: "[Q1]\nwmsqueue = Q1\nbatchsubmit.condorssh.host = h1\n"))
        sim.demand.set("Q1", ready: 2)
        let events = sim.factory.events()
        await sim.cycle()
        var it = events.makeAsyncIterator()
        var sawCycle = false
        while let e = await it.next() {
            if case .cycle(let c) = e, c.queue == "Q1", case .submitted(2, 0, 0, 0) = c.action { sawCycle = true; break }
        }
        #expect(sawCycle)
    }
}
