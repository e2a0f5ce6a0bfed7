import Foundation
import Testing

@testable import SSHSubmit

/// The HTCondor driver end to end over the real sshd against a **FAKE HTCondor** (testbed component `condorfake`,
/// login node 127.0.0.1:2225): stateful stand-ins for condor_submit, condor_q, condor_history and condor_rm plus a fake
/// schedd that moves jobs idle → running → completed and really runs their executables, printing the recorded real
/// output formats. HTCondor daemons cannot be installed here (TESTBED.md §8); the parsers are also tested on recorded
/// real outputs (HTCondorFixtureTests).
@Suite(.enabled(if: Testbed.enabled), .timeLimit(.minutes(4)))
struct HTCondorFakeIntegrationTests {
    let bed: BatchBed

    init() throws {
        bed = try BatchBed.load("condorfake")
    }

    @Test func pilotsRunAndFinishThroughHistory() async throws {
        try await bed.session(portKey: "APF_TB_CONDOR_PORT", defaultPort: 2225) { runner, dirs in
            let tag = BatchBed.uniqueTag()
            let backend = HTCondorBackend(runner: runner, tag: tag)
            let queue = try await backend.prepare(BatchBed.queue("CONDOR_TEST", tag: tag, sleep: 2, options: BatchOptions(cores: 1, memoryMB: 100)))
            await dirs.add(queue)
            let pilots = ClientIDMinter(tag: tag).mint(count: 12)
            let ids = acceptedIDs(await backend.submit(pilots, to: queue))
            try #require(ids.count == 12)
            #expect(Set(ids.map(\.job)).count == 1 && ids.map { $0.task! } == Array(0..<12), "one cluster, procs 0..11")

            let history = try await backend.poll(ids, timeout: .seconds(90)) { r, _ in ids.allSatisfy { r[$0]?.state.isTerminal == true } }
            let final = try #require(history.last)
            for (pilot, id) in zip(pilots, ids) {
                let rec = try #require(final.records[id])
                #expect(rec.status.state == .done && rec.status.exitCode == 0, "\(id): \(rec)")
                #expect(rec.clientID == pilot, "+APFClientID carries the pilot's client ID")
            }
            #expect(ids.allSatisfy { final.records[$0]?.source == .accounting }, "finished jobs are answered by condor_history")
            #expect(history.forwardOnly, "\(history.seen)")
            #expect(history.count(through: [.pending, .running, .done]) > 0)

            let markers = try await BatchBed.markers(runner, queue: queue)
            #expect(Set(markers.keys) == Set(pilots))
            for (id, words) in markers { #expect(words == [id.description, "CONDOR_TEST", "apf-test-factory", id.description]) }

            let found = try await backend.find(pilots)
            #expect(Set(found.keys) == Set(pilots) && zip(pilots, ids).allSatisfy { found[$0]?.id == $1 })
        }
    }

    @Test func cancelIdlePilotsTwice() async throws {
        try await bed.session(portKey: "APF_TB_CONDOR_PORT", defaultPort: 2225) { runner, dirs in
            let tag = BatchBed.uniqueTag()
            let backend = HTCondorBackend(runner: runner, tag: tag)
            let queue = try await backend.prepare(BatchBed.queue("CONDOR_CANCEL", tag: tag, sleep: 1,
                                                                 options: BatchOptions(extra: ["+FakeIdleSeconds = 3600"])))
            await dirs.add(queue)
            let pilots = ClientIDMinter(tag: tag).mint(count: 6)
            let ids = acceptedIDs(await backend.submit(pilots, to: queue))
            try #require(ids.count == 6)
            let before = try await backend.status(ids)
            #expect(ids.allSatisfy { before[$0]?.state == .pending }, "\(before.records.values.map(\.status))")

            let first = try await backend.cancel(ids)
            #expect(first.requested == Set(ids) && first.failed.isEmpty, "\(first.failed)")
            let after = try await backend.poll(ids, timeout: .seconds(30)) { r, _ in ids.allSatisfy { r[$0]?.state == .cancelled } }
            #expect(after.seen.values.allSatisfy { !$0.contains(.running) })

            let second = try await backend.cancel(ids)
            #expect(second.alreadyGone == Set(ids) && second.requested.isEmpty && second.failed.isEmpty, "\(second.failed)")
        }
    }
}
