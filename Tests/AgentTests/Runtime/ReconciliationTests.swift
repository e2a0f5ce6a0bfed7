import Agent
import Foundation
import SSHSubmit
import Testing

/// Start-up reconciliation (LESSONS §1): a crash never causes over-submission.
@Suite(.timeLimit(.minutes(1)))
struct ReconciliationTests {
    static let queues = "[Q1]\nwmsqueue = Q1\nbatchsubmit.condorssh.host = h1\n"

    /// A first factory "crashes" with intents in doubt: 4 whose jobs exist (unknown outcome, really queued), 2 whose
    /// jobs do not, and 2 committed but never sent (a crash between the journal write and the submit). A second
    /// factory on the same journal finds the 4 by client ID at start-up, keeps the other 4 as pilots during the
    /// grace period (so nothing replaces them), marks them `missed` after it, and only then submits replacements
    /// with new client IDs. Journal == batch system throughout, and no client ID ever reached it twice.
    @Test func crashWithIntentsInDoubtNeverOverSubmits() async throws {
        let config = SimConfig.load(queues: Self.queues)
        let journal = try AgentStore.inMemory()
        let first = try SimFactory(config, journal: journal)
        let target = SimConfig.target("h1")
        let backend = try #require(first.backend(target))
        backend.injectSubmitFaults([.unknown(queued: true), .unknown(queued: true), .unknown(queued: true), .unknown(queued: true),
                                    .unknown(queued: false), .unknown(queued: false)])
        first.demand.set("Q1", ready: 10)
        _ = await first.factory.runOnce()
        // The crash window: intents committed, the process dies before the submit call.
        let newest = try #require(try journal.newestPilotID(prefix: "sim-").flatMap(ClientID.init))
        let orphans = ClientIDMinter(tag: newest.tag, after: newest).mint(count: 2).map {
            PilotIntent(id: $0.description, tenant: "default", queue: "Q1", target: target)
        }
        try journal.recordCycle(QueueCycleRecord(queue: "Q1", tenant: "default", startedAt: first.manual.now, inputs: "{}",
                                                 trace: "", decision: "submit", count: 2, message: nil),
                                intents: orphans, at: first.manual.now)
        #expect(try journal.intentsInDoubt().count == 8)
        let submittedByFirst = Set(backend.submissions.keys.map(\.description))
        #expect(submittedByFirst.count == 8)

        // Restart: same journal, same batch system, a little later.
        let clock = ManualClock(first.manual.now.addingTimeInterval(5))
        let second = try SimFactory(config, journal: journal, clock: clock, backends: [target: backend])
        second.demand.set("Q1", ready: 10)
        let summary = await second.factory.reconcile()
        #expect(summary.inDoubt == 8 && summary.found == 4 && summary.missed == 0 && summary.waiting == 4)
        #expect(summary.unreachable.isEmpty)
        let r1 = try #require(await second.cycle()["Q1"])
        #expect(r1.decision == 0, "intents in doubt count as pilots: nothing is submitted in their place")
        #expect(backend.submissions.count == 8)
        // Past the grace period they are missed, and replaced with new client IDs.
        clock.advance(400)
        let r2 = try #require(await second.cycle()["Q1"])
        #expect(r2.decision == 2, "8 pilots (4 accepted, 4 found); 4 intents missed")
        let missed = try journal.livePilots(queue: "Q1").filter { $0.state == .submitting }
        #expect(missed.isEmpty)
        #expect(backend.submissions.count == 10 && backend.submissions.values.allSatisfy { $0 == 1 })
        let live = Set(try journal.livePilots(queue: "Q1").map(\.id))
        let onTarget = Set(backend.liveJobs().map(\.clientID.description))
        #expect(live == onTarget, "journal == batch system")
        #expect(live.count == 10)
        // The restarted minter never re-issues an ID of the first run.
        let newIDs = Set(backend.submissions.keys.map(\.description)).subtracting(submittedByFirst)
        #expect(newIDs.allSatisfy { id in submittedByFirst.allSatisfy { id > $0 } })
    }

    /// An unreachable target at start-up leaves its intents in doubt (reported, not guessed) and backs off.
    @Test func unreachableTargetKeepsIntentsInDoubt() async throws {
        let config = SimConfig.load(queues: Self.queues)
        let journal = try AgentStore.inMemory()
        let target = SimConfig.target("h1")
        try journal.recordCycle(QueueCycleRecord(queue: "Q1", tenant: "default", startedAt: Date(timeIntervalSince1970: 1_767_225_000),
                                                 inputs: "{}", trace: "", decision: "submit", count: 1, message: nil),
                                intents: [PilotIntent(id: "sim-0000000001", tenant: "default", queue: "Q1", target: target)],
                                at: Date(timeIntervalSince1970: 1_767_225_000))
        let sim = try SimFactory(config, journal: journal)
        try #require(sim.backend(target)).setHung(true)
        let summary = await sim.factory.reconcile()
        #expect(summary.waiting == 1 && summary.missed == 0)
        #expect(summary.unreachable[target]?.contains("does not answer") == true)
        #expect(try journal.pilot("sim-0000000001")?.state == .submitting)
        #expect(try sim.factory.status().targets.first?.state == "backing-off")
    }

    /// Intents of a target no longer configured stay in doubt and are reported.
    @Test func intentsOfAnUnconfiguredTargetAreReported() async throws {
        let journal = try AgentStore.inMemory()
        try journal.recordCycle(QueueCycleRecord(queue: "OLD", tenant: "default", startedAt: Date(), inputs: "{}", trace: "",
                                                 decision: "submit", count: 1, message: nil),
                                intents: [PilotIntent(id: "sim-0000000002", tenant: "default", queue: "OLD", target: "gone")],
                                at: Date())
        let sim = try SimFactory(SimConfig.load(queues: Self.queues), journal: journal)
        let summary = await sim.factory.reconcile()
        #expect(summary.waiting == 1)
        #expect(summary.unreachable["gone"] != nil)
    }
}
