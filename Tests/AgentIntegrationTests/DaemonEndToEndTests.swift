import Agent
import Foundation
import SSHSubmit
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The real `apf-agent run` daemon, configured with the real CLI, against the testbed's REAL SLURM 22.05 and Son of
/// Grid Engine 8.1.9 over the real sshd (and the Torque wrappers over SLURM for the crash test).
@Suite(.enabled(if: Testbed.enabled), .serialized, .timeLimit(.minutes(5)))
struct DaemonEndToEndTests {
    /// Two queues — SLURM and SGE over SSH — reach their demand and follow it down (queued pilots cancelled first)
    /// and up again; at every step the journal's live pilots are exactly the jobs the batch system lists. `status
    /// --json` shows them; SIGTERM stops the daemon within its bound.
    @Test func twoQueuesFollowDemandUpAndDown() async throws {
        await QuietStart.shared.wait()
        let tb = try await Testbed.load(["slurm": "APF_TB_SLURM", "sge": "APF_TB_SGE"])
        let bed = try await AgentBed.make(tb: tb)
        defer { bed.cleanup() }
        let port = Int(tb.env["APF_TB_SSH_PORT"] ?? "2222") ?? 2222
        try await bed.addTarget("slurm1", port: port, batch: "slurm", partition: tb.env["APF_TB_SLURM_PARTITION"])
        try await bed.addTarget("sge1", port: port, batch: "sge")
        try bed.writeFactory(targets: ["slurm1", "sge1"])
        try bed.writeQueues(bed.queueSection("E2E-SLURM", target: "slurm1") + bed.queueSection("E2E-SGE", target: "sge1"))
        let slurm = try TargetView.make(tb, port: port, system: .slurm, tag: bed.tag)
        let sge = try TargetView.make(tb, port: port, system: .sge, tag: bed.tag)
        try await withCleanup {
            try await twoQueues(bed, slurm: slurm, sge: sge)
        } cleanup: {
            _ = await bed.stop()
            await slurm.removeAll()
            await sge.removeAll()
        }
    }

    func twoQueues(_ bed: AgentBed, slurm: TargetView, sge: TargetView) async throws {
        let check = try await Testbed.runOffPool([BuiltCLI.path, "config", "check", bed.conf])
        #expect(check.contains("valid"))

        let start = ContinuousClock.now
        try bed.setDemand(["E2E-SLURM": 5, "E2E-SGE": 4])
        try bed.start()
        try await follow(bed, slurm: slurm, sge: sge, expect: (5, 4), step: "up to 5/4")
        let status = try await bed.cli(["status", "--config", bed.conf, "--json"])
        let decoded = try JSONDecoder.iso.decode(FactoryStatus.self, from: Data(status.utf8))
        for (name, n) in [("E2E-SLURM", 5), ("E2E-SGE", 4)] {
            let q = try #require(decoded.queues.first { $0.name == name })
            #expect(q.state == "enabled" && q.pending + q.running + q.exiting + q.created == n, "\(q)")
            #expect(q.lastMessage?.contains("KeepNRunning:in=") == true)
        }
        #expect(decoded.targets.map(\.name).sorted() == ["sge1", "slurm1"] && decoded.targets.allSatisfy { $0.state == "ok" })
        #expect(decoded.factory["pid"]?.isEmpty == false)

        try bed.setDemand(["E2E-SLURM": 2, "E2E-SGE": 1])
        try await follow(bed, slurm: slurm, sge: sge, expect: (2, 1), step: "down to 2/1")
        try bed.setDemand(["E2E-SLURM": 4, "E2E-SGE": 3])
        try await follow(bed, slurm: slurm, sge: sge, expect: (4, 3), step: "up to 4/3")
        print("e2e: two queues followed 5/4 → 2/1 → 4/3 in \(ContinuousClock.now - start)")

        // The retired pilots ended as cancelled in the journal (by us, not "removed").
        let journal = try bed.journal()
        let cancelled = try journal.events(queue: "E2E-SLURM", limit: 500).filter { $0.message.contains("→ cancelled") }
        #expect(cancelled.count >= 3)
        let stopped = try #require(await bed.stop())
        #expect(stopped.status == 0 && stopped.took < .seconds(30), "exit \(stopped.status) after \(stopped.took)")
        #expect(bed.log().contains("apf-agent stopped"))
        #expect(try journal.factoryState()["pid"] == "")
    }

    /// Waits until each queue's live pilots in the journal are exactly its target's live jobs of the run, and
    /// number `expect`.
    func follow(_ bed: AgentBed, slurm: TargetView, sge: TargetView, expect: (Int, Int), step: String) async throws {
        let journal = try bed.journal()
        try await bed.until(step) {
            let js = try journal.liveIDs(queue: "E2E-SLURM")
            let jg = try journal.liveIDs(queue: "E2E-SGE")
            guard js.count == expect.0, jg.count == expect.1 else { return false }
            let ts = try await slurm.live()
            let tg = try await sge.live()
            return ts == js && tg == jg
        }
    }

    /// SIGKILL while a submit of 30 pilots is under way (Torque wrappers over SLURM: one `qsub` per pilot, so the
    /// submit takes seconds), then a restart: reconciliation finds the pilots that reached the batch system by
    /// client ID, the others become `missed` after the grace period and are replaced with new client IDs. At the
    /// end the journal's live pilots are exactly the batch system's, and no client ID was ever submitted twice.
    @Test func sigkillDuringSubmitThenRestart() async throws {
        await QuietStart.shared.wait()
        let tb = try await Testbed.load(["slurm": "APF_TB_SLURM", "pbs": "APF_TB_PBS"])
        let bed = try await AgentBed.make(tb: tb)
        defer { bed.cleanup() }
        let port = Int(tb.env["APF_TB_PBS_PORT"] ?? "2223") ?? 2223
        try await bed.addTarget("pbs1", port: port, batch: "pbs")
        try bed.writeFactory(targets: ["pbs1"])
        try bed.writeQueues(bed.queueSection("E2E-PBS", target: "pbs1"))
        let view = try TargetView.make(tb, port: port, system: .pbs, tag: bed.tag)
        try await withCleanup {
            try await killAndRestart(bed, view: view)
        } cleanup: {
            _ = await bed.stop()
            await view.removeAll(clientIDs: (try? bed.journal().allIDs()) ?? [])
        }
    }

    func killAndRestart(_ bed: AgentBed, view: TargetView) async throws {
        try bed.setDemand(["E2E-PBS": 30])
        try bed.start(["--missed-grace", "15"])
        let journal = try bed.journal()
        // Intents are committed before the submit: wait for them, let some qsubs happen, then kill.
        try await bed.until("intents committed", timeout: .seconds(60)) { try journal.intentsInDoubt().count == 30 }
        try await Task.sleep(for: .milliseconds(700))
        bed.signal(SIGKILL)
        await bed.waitForExit()
        bed.daemon = nil
        var original = try journal.intentsInDoubt().map(\.id)
        #expect(!original.isEmpty, "the kill landed during the submit")
        // The remote helper outlives the agent and finishes its qsubs: give it a moment before counting.
        try await Task.sleep(for: .seconds(3))
        let reached = try await view.jobs(clientIDs: original).count
        print("e2e: killed during the submit: \(original.count) of 30 intents in doubt, \(reached) jobs reached the batch system")
        // A crash a moment earlier — intents committed, nothing sent yet — leaves intents whose jobs never exist.
        // Two such intents, written the way the daemon writes them (same tag, minted after the newest ID), stand for
        // that window, which is too short to hit with a signal.
        let newest = try #require(try journal.newestPilotID(prefix: bed.tag + "-").flatMap(ClientID.init))
        let crashWindow = ClientIDMinter(tag: newest.tag, after: newest).mint(count: 2).map(\.description)
        try journal.recordCycle(
            QueueCycleRecord(queue: "E2E-PBS", tenant: "e2e", startedAt: Date(), inputs: "{}", trace: "", decision: "submit",
                             count: 2, message: nil),
            intents: crashWindow.map { PilotIntent(id: $0, tenant: "e2e", queue: "E2E-PBS", target: "pbs1") }, at: Date())
        original += crashWindow

        try bed.start(["--missed-grace", "15"])
        try await bed.until("reconciled and replaced", timeout: .seconds(150)) {
            let live = try journal.liveIDs(queue: "E2E-PBS")
            guard live.count == 30, try journal.intentsInDoubt().isEmpty else { return false }
            return try await view.live(clientIDs: try journal.allIDs()) == live
        }
        let reconciled = bed.log().components(separatedBy: "\n").first { $0.contains("reconciled intents in doubt") } ?? ""
        print("e2e: after the restart: \(reconciled)")
        // Every client ID the journal ever minted is on the batch system at most once, and exactly the journal's
        // live pilots are live there; the intents whose job never arrived are missed, never resubmitted.
        let all = try journal.allIDs()
        let jobs = try await view.jobs(clientIDs: all)
        #expect(Set(jobs.filter { !$0.value.status.state.isTerminal }.keys) == (try journal.liveIDs(queue: "E2E-PBS")))
        let ids = jobs.values.map(\.id)
        #expect(Set(ids).count == ids.count, "one job per client ID")
        for id in original {
            let state = try journal.pilot(id)?.state
            if jobs[id] != nil { #expect(state != .missed && state != .submitting, "\(id) is on the target: \(String(describing: state))") }
            else { #expect(state == .missed, "\(id) never reached the target: \(String(describing: state))") }
        }
        _ = await bed.stop()
    }

    /// SIGHUP with a broken file keeps the daemon running on the old configuration (and says why in `status`); a
    /// fixed file is then applied (its new queue starts).
    @Test func sighupWithABrokenFileKeepsTheOldConfiguration() async throws {
        await QuietStart.shared.wait()
        let tb = try await Testbed.load(["slurm": "APF_TB_SLURM"])
        let bed = try await AgentBed.make(tb: tb)
        defer { bed.cleanup() }
        let port = Int(tb.env["APF_TB_SSH_PORT"] ?? "2222") ?? 2222
        try await bed.addTarget("slurm1", port: port, batch: "slurm", partition: tb.env["APF_TB_SLURM_PARTITION"])
        try bed.writeFactory(targets: ["slurm1"])
        try bed.setDemand(["HUP-A": 0, "HUP-B": 0])
        try bed.writeQueues(bed.queueSection("HUP-A", target: "slurm1"))
        try await withCleanup {
            try await hup(bed)
        } cleanup: {
            _ = await bed.stop()
        }
    }

    func hup(_ bed: AgentBed) async throws {
        try bed.start()
        let journal = try bed.journal()
        try await bed.until("first cycles") { try journal.recentCycles(queue: "HUP-A", limit: 1).first?.repeats ?? 0 >= 2 }

        try bed.writeQueues(bed.queueSection("HUP-A", target: "slurm1") + bed.queueSection("HUP-B", target: "slurm1", extra: "schedplugin = Redy"))
        bed.signal(SIGHUP)
        try await bed.until("reload refused") { bed.log().contains("configuration refused") }
        let refusedAt = Date()
        try await Task.sleep(for: .seconds(5))
        #expect(bed.daemon?.isRunning == true)
        let after = try journal.recentCycles(queue: "HUP-A", limit: 50).filter { $0.lastSeenAt > refusedAt }
        #expect(after.count >= 1, "queue A keeps cycling on the old configuration")
        #expect(try journal.recentCycles(queue: "HUP-B", limit: 1).isEmpty, "queue B of the broken file did not start")
        let status = try await bed.cli(["status", "--config", bed.conf])
        #expect(status.contains("last configuration reload refused") && status.contains("Redy"))

        try bed.writeQueues(bed.queueSection("HUP-A", target: "slurm1") + bed.queueSection("HUP-B", target: "slurm1"))
        bed.signal(SIGHUP)
        try await bed.until("fixed file applied") { try !journal.recentCycles(queue: "HUP-B", limit: 1).isEmpty }
        #expect(bed.log().contains("configuration reloaded"))
        #expect(try journal.factoryState()["config.last-error"] == "")

        // `queue disable` persists in the journal and reaches the running daemon.
        try await bed.cli(["queue", "disable", "HUP-A", "--config", bed.conf])
        try await Task.sleep(for: .seconds(1))
        let disabledAt = Date()
        try await Task.sleep(for: .seconds(5))
        #expect(try journal.recentCycles(queue: "HUP-A", limit: 50).filter { $0.lastSeenAt > disabledAt }.isEmpty)
        #expect(try journal.recentCycles(queue: "HUP-B", limit: 50).contains { $0.lastSeenAt > disabledAt })
        let stopped = try #require(await bed.stop())
        #expect(stopped.status == 0)
    }
}

extension JSONDecoder {
    static let iso: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }()
}
