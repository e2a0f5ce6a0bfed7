import Foundation
import Testing
import TestSupport

@testable import SSHSubmit

/// The SLURM driver against the testbed's REAL SLURM 22.05 (slurmctld, slurmd, slurmdbd; MinJobAge 30 s) over the real
/// sshd (127.0.0.1:2222), as the test user.
@Suite(.enabled(if: Testbed.enabled), .timeLimit(.minutes(6)))
struct SlurmIntegrationTests {
    let bed: BatchBed

    init() throws {
        bed = try BatchBed.load("slurm")
    }

    /// 50 pilots as one array: each pilot's wrapper writes a marker; every pilot goes forward through pending →
    /// running → done, and stays done (read from sacct) after squeue has forgotten it.
    @Test func fiftyPilotsAsAnArrayThroughAccounting() async throws {
        try await bed.session { runner, dirs in
            let tag = BatchBed.uniqueTag()
            let backend = SlurmBackend(runner: runner, tag: tag)
            let queue = try await backend.prepare(BatchBed.queue("SLURM_TEST", tag: tag, sleep: 4, options: BatchOptions(
                walltime: .seconds(600), partition: bed.tb.env["APF_TB_SLURM_PARTITION"])))
            await dirs.add(queue)
            let pilots = ClientIDMinter(tag: tag).mint(count: 50)

            let results = await backend.submit(pilots, to: queue)
            let ids = acceptedIDs(results)
            try #require(ids.count == 50)
            #expect(Set(ids.map(\.job)).count == 1, "one array job")
            #expect(ids.map { $0.task! } == Array(1...50))

            let runStart = ContinuousClock.now
            let history = try await backend.poll(ids, timeout: .seconds(150)) { r, _ in ids.allSatisfy { r[$0]?.state.isTerminal == true } }
            print("SLURM: 50 pilots finished \(ContinuousClock.now - runStart) after submission; \(history.polls) polls")
            let final = try #require(history.last)
            for (pilot, id) in zip(pilots, ids) {
                let rec = try #require(final.records[id])
                #expect(rec.status.state == .done, "\(id): \(rec.status)")
                #expect(rec.clientID == pilot, "the array task maps back to its pilot's client ID")
            }
            #expect(history.forwardOnly, "\(history.seen)")
            #expect(history.count(through: [.pending, .running, .done]) > 0, "some pilots seen pending, then running, then done")
            #expect(history.seen.values.allSatisfy { $0.contains(.running) || $0.first == .done }, "\(history.seen)")

            let markers = try await BatchBed.markers(runner, queue: queue)
            #expect(Set(markers.keys) == Set(pilots))
            for (id, words) in markers { #expect(words == [id.description, "SLURM_TEST", "apf-test-factory", id.description]) }

            // squeue forgets finished jobs after MinJobAge; the driver then answers from sacct, still done.
            let forgetStart = ContinuousClock.now
            let forgotten = try await backend.poll(ids, every: .seconds(3), timeout: .seconds(180)) { r, _ in
                ids.allSatisfy { r.records[$0]?.source == .accounting }
            }
            let after = try #require(forgotten.last)
            print("SLURM: squeue forgot the 50 finished pilots \(ContinuousClock.now - forgetStart) after the last finished; \(forgotten.polls) polls")
            #expect(after.accounting == .available)
            for id in ids {
                #expect(after[id]?.state == .done && after[id]?.exitCode == 0 && after.records[id]?.source == .accounting, "\(id)")
            }

            // find() reconciles by client ID alone, as after a crash.
            let found = try await backend.find(pilots)
            #expect(Set(found.keys) == Set(pilots))
            #expect(zip(pilots, ids).allSatisfy { found[$0]?.id == $1 })
        }
    }

    /// 20 pending pilots (start time an hour away) are cancelled; a second cancel is a no-op that still succeeds.
    @Test func cancelTwentyPendingPilotsTwice() async throws {
        try await bed.session { runner, dirs in
            let tag = BatchBed.uniqueTag()
            let backend = SlurmBackend(runner: runner, tag: tag)
            let queue = try await backend.prepare(BatchBed.queue("SLURM_CANCEL", tag: tag, sleep: 1, options: BatchOptions(
                walltime: .seconds(600), extra: ["--begin=now+3600"])))
            await dirs.add(queue)
            let pilots = ClientIDMinter(tag: tag).mint(count: 20)
            let ids = acceptedIDs(await backend.submit(pilots, to: queue))
            try #require(ids.count == 20)

            let before = try await backend.status(ids)
            #expect(ids.allSatisfy { before[$0]?.state == .pending }, "\(before.records.values.map(\.status))")
            #expect(ids.allSatisfy { [nil, "BeginTime"].contains(before[$0]?.reason) })

            let first = try await backend.cancel(ids)
            #expect(first.requested == Set(ids) && first.failed.isEmpty && first.alreadyGone.isEmpty)

            // Pending array tasks cancelled vanish from squeue and sacct alike: cancelled or not found, never running.
            let after = try await backend.poll(ids, timeout: .seconds(30)) { r, _ in
                ids.allSatisfy { id in r[id]?.state == .cancelled || r.observation(id) == .notFound }
            }
            #expect(after.seen.values.allSatisfy { !$0.contains(.running) })

            let second = try await backend.cancel(ids)
            #expect(second.alreadyGone == Set(ids) && second.requested.isEmpty && second.failed.isEmpty)
            let live = try await backend.find(pilots)
            #expect(live.values.allSatisfy { $0.status.state.isTerminal })
        }
    }

    /// A rejected option is a permanent failure for every pilot of the batch, and nothing is queued.
    @Test func aBadPartitionIsAPermanentFailure() async throws {
        try await bed.session { runner, dirs in
            let tag = BatchBed.uniqueTag()
            let backend = SlurmBackend(runner: runner, tag: tag)
            let queue = try await backend.prepare(BatchBed.queue("SLURM_BAD", tag: tag, sleep: 1, options: BatchOptions(partition: "nosuchpartition")))
            await dirs.add(queue)
            let pilots = ClientIDMinter(tag: tag).mint(count: 3)
            let results = await backend.submit(pilots, to: queue)
            for r in results {
                guard case .failed(let e) = r.outcome else { Issue.record("\(r)"); continue }
                #expect(e.isPermanent && e.code == .rejected)
            }
            #expect(try await backend.find(pilots).isEmpty)
        }
    }
}
