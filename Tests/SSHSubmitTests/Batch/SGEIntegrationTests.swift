import Foundation
import Testing

@testable import SSHSubmit

/// The SGE driver against the testbed's REAL Son of Grid Engine 8.1.9 (sge_qmaster + sge_execd, 8 slots) over the real
/// sshd (127.0.0.1:2222), as the test user.
@Suite(.enabled(if: Testbed.enabled), .timeLimit(.minutes(5)))
struct SGEIntegrationTests {
    let bed: BatchBed

    init() throws {
        bed = try BatchBed.load("sge")
    }

    /// 50 pilots as one array job (`-t 1-50`): markers written, pending → running → done. Finished tasks leave qstat at
    /// once, so "done" always comes from qacct.
    @Test func fiftyPilotsAsAnArrayThroughQacct() async throws {
        try await bed.session { runner, dirs in
            let tag = BatchBed.uniqueTag()
            let backend = SGEBackend(runner: runner, tag: tag)
            let queue = try await backend.prepare(BatchBed.queue("SGE_TEST", tag: tag, sleep: 4, options: BatchOptions(
                walltime: .seconds(600), partition: bed.tb.env["APF_TB_SGE_QUEUE"])))
            await dirs.add(queue)
            let pilots = ClientIDMinter(tag: tag).mint(count: 50)

            let ids = acceptedIDs(await backend.submit(pilots, to: queue))
            try #require(ids.count == 50)
            #expect(Set(ids.map(\.job)).count == 1, "one array job")
            #expect(ids.map { $0.task! } == Array(1...50))

            let start = ContinuousClock.now
            let history = try await backend.poll(ids, timeout: .seconds(180)) { r, _ in ids.allSatisfy { r[$0]?.state.isTerminal == true } }
            print("SGE: 50 pilots finished \(ContinuousClock.now - start) after submission; \(history.polls) polls; "
                  + "\(history.notFoundPolls.values.reduce(0, +)) not-found observations between qstat and qacct")
            let final = try #require(history.last)
            for (pilot, id) in zip(pilots, ids) {
                let rec = try #require(final.records[id])
                #expect(rec.status.state == .done && rec.status.exitCode == 0 && rec.source == .accounting, "\(id): \(rec)")
                #expect(rec.clientID == pilot)
            }
            #expect(history.forwardOnly, "\(history.seen)")
            #expect(history.count(through: [.pending, .running, .done]) > 0, "some pilots seen pending, then running, then done")

            let markers = try await BatchBed.markers(runner, queue: queue)
            #expect(Set(markers.keys) == Set(pilots))
            for (id, words) in markers { #expect(words == [id.description, "SGE_TEST", "apf-test-factory", id.description]) }

            let found = try await backend.find(pilots)
            #expect(Set(found.keys) == Set(pilots))
            #expect(zip(pilots, ids).allSatisfy { found[$0]?.id == $1 && found[$0]?.status.state == .done })
        }
    }

    /// 20 pending pilots (`-a` an hour ahead) are cancelled; a second cancel is a no-op that still succeeds. A task
    /// deleted while pending never reaches qacct: it is reported as not found (the caller knows it asked).
    @Test func cancelTwentyPendingPilotsTwice() async throws {
        try await bed.session { runner, dirs in
            let tag = BatchBed.uniqueTag()
            let backend = SGEBackend(runner: runner, tag: tag)
            let later = UTCTime.qacct(UInt64(Date().timeIntervalSince1970) + 7200)  // [[CC]YY]MMDDhhmm, two hours ahead
            let queue = try await backend.prepare(BatchBed.queue("SGE_CANCEL", tag: tag, sleep: 1, options: BatchOptions(extra: ["-a", later])))
            await dirs.add(queue)
            let pilots = ClientIDMinter(tag: tag).mint(count: 20)
            let ids = acceptedIDs(await backend.submit(pilots, to: queue))
            try #require(ids.count == 20)

            let before = try await backend.status(ids)
            #expect(ids.allSatisfy { before[$0]?.state == .pending && before[$0]?.nativeState == "qw" }, "\(before.records.values.map(\.status))")

            let first = try await backend.cancel(ids)
            #expect(first.requested == Set(ids) && first.failed.isEmpty && first.alreadyGone.isEmpty, "\(first.failed)")

            let after = try await backend.poll(ids, timeout: .seconds(30)) { r, _ in ids.allSatisfy { r.observation($0) == .notFound } }
            #expect(after.seen.values.allSatisfy { !$0.contains(.running) })

            let second = try await backend.cancel(ids)
            #expect(second.alreadyGone == Set(ids) && second.requested.isEmpty && second.failed.isEmpty, "\(second.failed)")
        }
    }
}
