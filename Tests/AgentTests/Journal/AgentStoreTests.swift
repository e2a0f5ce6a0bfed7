import Agent
import Foundation
import GRDB
import Testing

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)
private func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

private func store() throws -> AgentStore { try AgentStore.inMemory() }

private func intents(_ ids: [String], queue: String = "Q", target: String = "t1") -> [PilotIntent] {
    ids.map { PilotIntent(id: $0, tenant: "atlas", queue: queue, target: target) }
}

struct JournalSchemaTests {
    @Test func migratesAnEmptyDatabaseAndReopensIt() throws {
        let db = try DatabaseQueue()
        _ = try AgentStore(db)
        _ = try AgentStore(db)  // a second open applies nothing and succeeds
        let tables = try db.read { try String.fetchAll($0, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") }
        #expect(Set(tables).isSuperset(of: ["pilot", "queueCycle", "event", "grdb_migrations", "queueControl", "targetHealth", "factoryState"]))
        #expect(AgentStore.schemaVersions == ["0001-journal", "0002-runtime", "0003-cycle-repeats"])
    }

    @Test func refusesAJournalWrittenByANewerVersion() throws {
        let db = try DatabaseQueue()
        _ = try AgentStore(db)
        try db.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('0099-from-the-future')") }
        #expect(throws: StoreError(.schemaTooNew, "")) { try AgentStore(db) }
        do {
            _ = try AgentStore(db)
        } catch {
            #expect(error.message.contains("0099-from-the-future"))
        }
    }

    @Test func onDiskJournalUsesWAL() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("apf-journal-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let s = try AgentStore.open(path: dir.appendingPathComponent("journal.sqlite3").path)
        try s.recordIntents(intents(["A"]), at: t0)
        let mode = try s.writer.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
        #expect(s.writer is DatabasePool)
        // A second process-like opener sees the committed intent.
        let again = try AgentStore.open(path: dir.appendingPathComponent("journal.sqlite3").path)
        #expect(try again.inDoubt().map(\.id) == ["A"])
    }

    @Test func unopenablePathIsATypedError() {
        #expect(throws: StoreError(.openFailed, "")) { try AgentStore.open(path: "/nonexistent-dir/sub/journal.sqlite3") }
    }
}

struct SubmitJournalTests {
    @Test func intentIsCommittedBeforeSubmitAndInDoubtUntilABatchID() throws {
        let s = try store()
        let rows = try s.recordIntents(intents(["P1", "P2"]), at: t0)
        #expect(rows.map(\.state) == [.submitting, .submitting])
        #expect(try s.inDoubt().map(\.id) == ["P1", "P2"])
        #expect(try s.pilot("P1")?.attempts == 1)
        #expect(try s.recordSubmitted("P1", batchID: "1001", at: at(2)) == .applied(from: .submitting, synthesized: []))
        let p1 = try #require(try s.pilot("P1"))
        #expect(p1.state == .pending)
        #expect(p1.batchID == "1001")
        #expect(p1.submittedAt == at(2))
        #expect(try s.inDoubt().map(\.id) == ["P2"])
        #expect(try s.pilot(batchID: "1001", target: "t1")?.id == "P1")
        #expect(try s.pilot(batchID: "1001", target: "other") == nil)
        #expect(try s.events(pilotID: "P1").map(\.kind) == ["submitted"])
    }

    @Test func duplicateClientIDIsRefused() throws {
        let s = try store()
        try s.recordIntents(intents(["P1"]), at: t0)
        #expect(throws: StoreError(.duplicate, "")) { try s.recordIntents(intents(["P1"]), at: t0) }
    }

    @Test func rejectedSubmitEndsThePilotUnknownKeepsItInDoubt() throws {
        let s = try store()
        try s.recordIntents(intents(["R", "U"]), at: t0)
        try s.recordSubmitFailed("R", .rejected("sbatch: invalid partition"), at: at(1))
        try s.recordSubmitFailed("U", .unknown("ssh: session lost after exec"), at: at(1))
        #expect(try s.pilot("R")?.state == .failed)
        #expect(try s.pilot("R")?.reason == "sbatch: invalid partition")
        #expect(try s.pilot("U")?.state == .submitting)
        #expect(try s.inDoubt().map(\.id) == ["U"])
        // Reconciliation found no trace of U on the target: the same intent is tried again, counted.
        #expect(try s.recordAttempt("U", at: at(60)))
        #expect(try s.pilot("U")?.attempts == 2)
        #expect(try !s.recordAttempt("R", at: at(60)))  // no longer in doubt
    }
}

struct ForwardOnlyStateTests {
    @Test func statesOnlyMoveForward() throws {
        let s = try store()
        try s.recordIntents(intents(["P"]), at: t0)
        try s.recordSubmitted("P", batchID: "7", at: at(1))
        #expect(try s.transition("P", to: .running, nativeState: "RUNNING", at: at(10)) == .applied(from: .pending, synthesized: []))
        #expect(try s.pilot("P")?.startedAt == at(10))
        // A late listing still saying PENDING is ignored.
        #expect(try s.transition("P", to: .pending, nativeState: "PENDING", at: at(11)) == .ignoredBackward(current: .running))
        #expect(try s.pilot("P")?.nativeState == "RUNNING")
        #expect(try s.transition("P", to: .completed, nativeState: "COMPLETED", exitCode: 0, at: at(100)) == .applied(from: .running, synthesized: []))
        let done = try #require(try s.pilot("P"))
        #expect(done.endedAt == at(100))
        #expect(done.exitCode == 0)
        #expect(try s.transition("P", to: .running, at: at(101)) == .ignoredTerminal(current: .completed))
        #expect(try s.transition("P", to: .lost, at: at(102)) == .ignoredTerminal(current: .completed))
    }

    @Test func heldIsNotTerminalAndSharesPendingsRank() throws {
        let s = try store()
        try s.recordIntents(intents(["P"]), at: t0)
        try s.recordSubmitted("P", batchID: "7", at: at(1))
        #expect(try s.transition("P", to: .held, at: at(2)) == .applied(from: .pending, synthesized: []))
        #expect(try s.transition("P", to: .pending, at: at(3)) == .applied(from: .held, synthesized: []))
        #expect(try s.transition("P", to: .held, at: at(4)) == .applied(from: .pending, synthesized: []))
        #expect(try s.transition("P", to: .running, at: at(5)) == .applied(from: .held, synthesized: []))
    }

    @Test func skippedStatesAreSynthesized() throws {
        let s = try store()
        try s.recordIntents(intents(["A", "B", "C"]), at: t0)
        // Found by reconciliation already finished: it must have queued and run.
        #expect(try s.transition("A", to: .completed, at: at(50)) == .applied(from: .submitting, synthesized: [.pending, .running]))
        #expect(try s.pilot("A")?.startedAt == at(50))
        #expect(try s.events(pilotID: "A").last?.message == "submitting → completed (synthesized: pending, running)")
        // Cancelled while queued: it never ran.
        try s.recordSubmitted("B", batchID: "2", at: at(1))
        #expect(try s.transition("B", to: .cancelled, at: at(3)) == .applied(from: .pending, synthesized: []))
        #expect(try s.pilot("B")?.startedAt == nil)
        // Unmatched intent after the grace period.
        #expect(try s.transition("C", to: .missed, at: at(900)) == .applied(from: .submitting, synthesized: []))
    }

    @Test func lostMayStillBecomeTheRealEnding() throws {
        let s = try store()
        try s.recordIntents(intents(["P"]), at: t0)
        try s.recordSubmitted("P", batchID: "9", at: at(1))
        _ = try s.transition("P", to: .lost, at: at(600))
        #expect(try s.transition("P", to: .timeout, nativeState: "TIMEOUT", at: at(700)) == .applied(from: .lost, synthesized: []))
        #expect(try s.pilot("P")?.endedAt == at(600))
    }

    @Test func unknownPilotIsNotFound() throws {
        #expect(try store().transition("nope", to: .running, at: t0) == .notFound)
    }
}

struct CancelAndRetireTests {
    private func seeded() throws -> AgentStore {
        let s = try store()
        for (i, id) in ["P1", "P2", "P3", "R1", "D1"].enumerated() {
            try s.recordIntents(intents([id]), at: at(Double(i)))
            try s.recordSubmitted(id, batchID: "\(100 + i)", at: at(Double(i) + 0.5))
        }
        _ = try s.transition("P2", to: .held, at: at(10))
        _ = try s.transition("R1", to: .running, at: at(10))
        _ = try s.transition("D1", to: .completed, at: at(20))
        return s
    }

    @Test func retireTakesNotStartedPilotsNewestFirst() throws {
        let s = try seeded()
        #expect(try s.retireCandidates(queue: "Q", limit: 2, order: .newest).map(\.id) == ["P3", "P2"])
        #expect(try s.retireCandidates(queue: "Q", limit: 2, order: .oldest).map(\.id) == ["P1", "P2"])
        #expect(try s.retireCandidates(queue: "Q", limit: 10, order: .newest).map(\.id) == ["P3", "P2", "P1"])
        #expect(try s.retireCandidates(queue: "Q", limit: 10, order: .newest, includeRunning: true).map(\.id) == ["P3", "P2", "P1", "R1"])
        #expect(try s.retireCandidates(queue: "other", limit: 10, order: .newest).isEmpty)
    }

    @Test func cancelIsRecordedOnceAndReissuedUntilTerminal() throws {
        let s = try seeded()
        #expect(try s.requestCancel(["P3", "D1"], at: at(30)) == 1)  // D1 already ended
        #expect(try s.requestCancel(["P3"], at: at(31)) == 0)  // already requested
        #expect(try s.pilot("P3")?.cancelRequestedAt == at(30))
        #expect(try s.pendingCancels().map(\.id) == ["P3"])
        #expect(try s.retireCandidates(queue: "Q", limit: 10, order: .newest).map(\.id) == ["P2", "P1"])
        _ = try s.transition("P3", to: .cancelled, at: at(40))
        #expect(try s.pendingCancels().isEmpty)
    }

    @Test func idlePilotsAreThoseQueuedLongerThanTheLimit() throws {
        let s = try seeded()
        // Queued since t0+0 (P1), +1 (P2, held), +2 (P3); R1 runs, D1 ended. At t0+3.5:
        #expect(try s.idlePilots(queue: "Q", longerThan: 3, now: at(3.5)).map(\.id) == ["P1"])
        #expect(try s.idlePilots(queue: "Q", longerThan: 2, now: at(3.5)).map(\.id) == ["P1", "P2"])
        #expect(try s.idlePilots(queue: "Q", longerThan: 1, now: at(3.5)).map(\.id) == ["P1", "P2", "P3"])
    }
}

struct StatusCountTests {
    @Test func apfmonColumnsPerQueue() throws {
        let s = try store()
        let now = at(7200)
        try s.recordIntents(intents(["c1", "c2"]), at: at(7000))  // created (no batch ID yet)
        try s.recordIntents(intents(["p1", "h1", "r1", "x1", "d1", "d2", "f1", "old"]), at: at(0))
        for (i, id) in ["p1", "h1", "r1", "x1", "d1", "d2", "f1", "old"].enumerated() {
            try s.recordSubmitted(id, batchID: "\(i)", at: at(1))
        }
        _ = try s.transition("h1", to: .held, at: at(2))
        _ = try s.transition("r1", to: .running, at: at(2))
        _ = try s.transition("x1", to: .exiting, at: at(2))
        _ = try s.transition("d1", to: .completed, at: at(7100))
        _ = try s.transition("d2", to: .timeout, at: at(3000))
        _ = try s.transition("f1", to: .lost, at: at(7100))
        _ = try s.transition("old", to: .failed, at: at(100))  // more than an hour ago
        try s.recordIntents(intents(["o1"], queue: "OTHER"), at: at(0))
        // A queue with cycles only, and a blocked last cycle for Q.
        var f = CycleFacts.simulated(activated: 40, pending: 12, running: 0)
        let d = SchedulerChain([Ready(), Scale(factor: 0.25)]).decide(f)
        try s.recordCycle(QueueCycleRecord(queue: "Q", tenant: "atlas", at: at(7100), facts: f, decision: d))
        f.wms = .missing("PanDA status is 400 s old (maxage 360 s)")
        let blocked = SchedulerChain([Ready()]).decide(f)
        try s.recordCycle(QueueCycleRecord(queue: "Q", tenant: "atlas", at: at(7150), facts: f, decision: blocked))
        try s.recordCycle(QueueCycleRecord(queue: "IDLE", tenant: "atlas", at: at(7150), facts: f, decision: d))

        let rows = try s.statusRows(now: now)
        #expect(rows.map(\.queue) == ["IDLE", "OTHER", "Q"])
        let q = rows[2]
        #expect(q.created == 2)
        #expect(q.pending == 2)
        #expect(q.held == 1)
        #expect(q.running == 1)
        #expect(q.exiting == 1)
        #expect(q.done1h == 1)  // d1; d2 ended 4200 s ago
        #expect(q.fault1h == 1)  // f1 lost; "old" failed more than an hour ago
        #expect(q.lastMessage == "blocked: Ready: wms: PanDA status is 400 s old (maxage 360 s)")
        #expect(q.lastMessageAt == at(7150))
        #expect(rows[0].lastMessage == "Ready:in=0,activated=40,offset=0,pending=12,ret=28;Scale:in=28,factor=0.25,ret=7")
        #expect(rows[1].created == 1)
    }

    @Test func cycleRecordKeepsInputsTraceAndDecision() throws {
        let s = try store()
        let f = CycleFacts.simulated(activated: 0, pending: 150, running: 10)
        let d = SchedulerChain([Ready(), MaxPending(maximum: 100)]).decide(f)
        let saved = try s.recordCycle(QueueCycleRecord(queue: "Q", tenant: "atlas", at: t0, facts: f, decision: d))
        #expect(saved.id != nil)
        let back = try #require(try s.recentCycles(queue: "Q").first)
        #expect(back.decision == "retire")
        #expect(back.count == -50)
        #expect(back.trace == d.trace)
        let inputs = try JSONSerialization.jsonObject(with: Data(back.inputs.utf8)) as? [String: Any]
        #expect((inputs?["batch"] as? [String: Any])?["pending"] as? Int == 150)
    }

    @Test func batchCountsAndRecentRunsFromTheJournal() throws {
        let s = try store()
        try s.recordIntents(intents(["a", "b", "c", "d", "e"]), at: t0)
        for id in ["b", "c", "d", "e"] { try s.recordSubmitted(id, batchID: id, at: at(1)) }
        _ = try s.transition("c", to: .held, at: at(2))
        _ = try s.transition("d", to: .running, at: at(100))
        _ = try s.transition("e", to: .running, at: at(100))
        _ = try s.transition("e", to: .completed, at: at(105))
        #expect(try s.batchCounts(queue: "Q") == BatchQueueCounts(pending: 3, running: 1, held: 1))
        let runs = try s.recentRuns(queue: "Q", since: at(50))
        #expect(runs == [PilotHistory.Run(startedAt: at(100), wallSeconds: 5)])
        // Fed to Throttle: 1 of 1 recent pilots ran under 10 s.
        let f = CycleFacts.simulated(activated: 0, pending: 0, running: 0, history: PilotHistory(now: at(200), runs: runs))
        #expect(Throttle().apply(30, f).count == 1)
    }
}

struct PilotIDTests {
    @Test func ulidsSortByTimeAndDoNotRepeat() {
        let a = PilotID.make(at: t0)
        let b = PilotID.make(at: at(0.002))
        #expect(a.count == 26 && b.count == 26)
        #expect(a < b)
        #expect(Set((0..<1000).map { _ in PilotID.make(at: t0) }).count == 1000)
        #expect(a.allSatisfy { "0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains($0) })
    }
}
