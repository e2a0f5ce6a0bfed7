import Foundation
import Testing

@testable import SSHSubmit

/// The PBS driver (Torque flavour) against the testbed's PBS login node (127.0.0.1:2223): Debian's slurm-wlm-torque
/// **Torque-compatible wrappers over the real SLURM** (no PBS or Torque server exists for Debian 12; TESTBED.md §6).
/// Jobs really run, in SLURM; qsub/qstat/qdel are the Perl wrappers.
@Suite(.enabled(if: Testbed.enabled), .timeLimit(.minutes(6)))
struct PBSIntegrationTests {
    let bed: BatchBed

    init() throws {
        bed = try BatchBed.load("pbs")
    }

    /// 50 pilots, one `qsub` each in one helper round trip: markers written, Q → R → C (done). Torque has no
    /// accounting query: once the job leaves qstat it is reported not found (never done), and the caller keeps the
    /// terminal state it saw.
    @Test func fiftyPilotsThroughTheTorqueWrappers() async throws {
        try await bed.session(portKey: "APF_TB_PBS_PORT", defaultPort: 2223) { runner, dirs in
            let tag = BatchBed.uniqueTag()
            let backend = PBSBackend(runner: runner, tag: tag, settings: PBSSettings(flavor: .torque))
            let queue = try await backend.prepare(BatchBed.queue("PBS_TEST", tag: tag, sleep: 4, options: BatchOptions(
                walltime: .seconds(600), partition: bed.tb.env["APF_TB_PBS_QUEUE"])))
            await dirs.add(queue)
            let pilots = ClientIDMinter(tag: tag).mint(count: 50)

            let submitStart = ContinuousClock.now
            let results = await backend.submit(pilots, to: queue)
            let ids = acceptedIDs(results)
            print("PBS: 50 qsub in \(ContinuousClock.now - submitStart)")
            try #require(ids.count == 50)
            #expect(Set(ids).count == 50)

            // Torque has no accounting: a pilot that finished early can leave qstat before the last one finishes,
            // so each pilot's terminal state is taken from the poll that saw it (as the agent core keeps it).
            let history = try await backend.poll(ids, timeout: .seconds(180)) { _, h in h.allSeenTerminal(ids) }
            for (pilot, id) in zip(pilots, ids) {
                let rec = try #require(history.lastRecord[id])
                #expect(rec.status.state == .done && rec.status.nativeState == "C", "\(id): \(rec)")
                #expect(rec.clientID == pilot, "Job_Name is the pilot's client ID")
            }
            #expect(history.last?.accounting == .unsupported)
            #expect(history.forwardOnly, "\(history.seen)")
            #expect(history.count(through: [.pending, .running, .done]) > 0, "some pilots seen Q, then R, then C")

            let markers = try await BatchBed.markers(runner, queue: queue)
            #expect(Set(markers.keys) == Set(pilots))
            for (id, words) in markers { #expect(words == [id.description, "PBS_TEST", "apf-test-factory", id.description]) }

            // When SLURM forgets the jobs (MinJobAge), the wrappers' qstat forgets them too: not found, not done.
            let gone = try await backend.poll(ids, every: .seconds(3), timeout: .seconds(180)) { r, _ in ids.allSatisfy { r.observation($0) == .notFound } }
            #expect(ids.allSatisfy { gone.last?.observation($0) == .notFound })
        }
    }

    /// 20 held pilots (`-h`, shown as Q) are cancelled; the wrappers then show C. A second cancel succeeds as
    /// already gone (the wrappers' qdel exits 1 silently for a finished job; the status taken in the same round trip
    /// decides).
    @Test func cancelTwentyPendingPilotsTwice() async throws {
        try await bed.session(portKey: "APF_TB_PBS_PORT", defaultPort: 2223) { runner, dirs in
            let tag = BatchBed.uniqueTag()
            let backend = PBSBackend(runner: runner, tag: tag)
            let queue = try await backend.prepare(BatchBed.queue("PBS_CANCEL", tag: tag, sleep: 1, options: BatchOptions(extra: ["-h"])))
            await dirs.add(queue)
            let pilots = ClientIDMinter(tag: tag).mint(count: 20)
            let ids = acceptedIDs(await backend.submit(pilots, to: queue))
            try #require(ids.count == 20)

            let before = try await backend.status(ids)
            #expect(ids.allSatisfy { before[$0]?.state == .pending }, "\(before.records.values.map(\.status))")

            let first = try await backend.cancel(ids)
            #expect(first.requested == Set(ids) && first.failed.isEmpty && first.alreadyGone.isEmpty, "\(first.failed)")

            let after = try await backend.poll(ids, timeout: .seconds(30)) { r, _ in ids.allSatisfy { r[$0]?.state.isTerminal == true || r.observation($0) == .notFound } }
            #expect(after.seen.values.allSatisfy { !$0.contains(.running) })

            let second = try await backend.cancel(ids)
            #expect(second.alreadyGone == Set(ids) && second.requested.isEmpty && second.failed.isEmpty, "\(second.failed)")
        }
    }
}
