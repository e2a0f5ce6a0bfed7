import Foundation
import GRDB
import SSHSubmit
import Testing

@testable import Agent

/// The runtime's small parts: journal date text, group commit, the pid file, batch-as-WMS commands, time formats.
struct RuntimePartsTests {
    /// The loop writes dates without a DateFormatter; they must be exactly what GRDB writes (and reads back).
    @Test func journalDatesAreGRDBs() throws {
        var rng = SystemRandomNumberGenerator()
        let samples = [0.0, 0.0009, 0.999, 1_767_225_600.5, 951_782_400.123, 4_102_444_799.999] +
            (0..<500).map { _ in Double.random(in: 0..<4_102_444_800, using: &rng) }
        for t in samples {
            let d = Date(timeIntervalSince1970: t)
            let ours = try #require(JournalDate.text(d))
            let grdb = try #require(String.fromDatabaseValue(d.databaseValue))
            #expect(ours == grdb, "\(t)")
            let back = try #require(Date.fromDatabaseValue(ours.databaseValue))
            #expect(abs(back.timeIntervalSince1970 - t) < 0.001)
        }
        #expect(StatusFormat.time(Date(timeIntervalSince1970: 1_767_225_600)) == "2026-01-01T00:00:00Z")
        #expect(StatusFormat.time(Date(timeIntervalSince1970: 951_868_799)) == "2000-02-29T23:59:59Z")
    }

    /// Requests that arrive together share a transaction, run in order (a later one sees an earlier one's write),
    /// and one failing request fails alone.
    @Test func groupCommitOrdersBatchesAndIsolatesFailures() async throws {
        let store = try AgentStore.inMemory()
        let commits = GroupCommit(store: store)
        struct Boom: Error {}
        let results = await withTaskGroup(of: (Int, Result<Int, any Error>).self) { group in
            for i in 0..<20 {
                group.addTask {
                    do {
                        let n = try await commits.perform { db, _ -> Int in
                            if i == 7 { throw Boom() }
                            try db.execute(sql: "INSERT INTO factoryState (key, value, updatedAt) VALUES (?, ?, ?)",
                                           arguments: ["k\(i)", "\(i)", Date()])
                            return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM factoryState")!
                        }
                        return (i, .success(n))
                    } catch {
                        return (i, .failure(error))
                    }
                }
            }
            var out: [Int: Result<Int, any Error>] = [:]
            for await (i, r) in group { out[i] = r }
            return out
        }
        for (i, r) in results {
            switch r {
            case .success(let n): #expect(i != 7 && (1...19).contains(n))
            case .failure(let e): #expect(i == 7 && e is Boom, "\(e)")
            }
        }
        let state = try store.factoryState()
        #expect(state.count == 19 && state["k7"] == nil)
        let counts = Set(results.values.compactMap { try? $0.get() })
        #expect(counts.count == 19, "each request saw the writes of those before it")
    }

    /// The pid file names this process while it holds it, and a stale file (a dead or foreign pid) is taken over.
    @Test func pidFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("apf-pid-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pid = PIDFile(journalPath: dir + "/journal.sqlite")
        #expect(pid.runningPID() == nil)
        try "1\n".write(toFile: pid.path, atomically: true, encoding: .utf8)  // pid 1 is no apf-agent
        #expect(pid.runningPID() == nil)
        try pid.acquire()
        #expect(pid.runningPID() == getpid())
        try pid.acquire()  // the same process may re-acquire
        pid.release()
        #expect(!FileManager.default.fileExists(atPath: pid.path))
    }

    /// Batch-as-WMS asks each system for one machine-readable ID per pending job.
    @Test func pendingJobCommands() throws {
        let runner = LocalCommandRunner(baseDirectory: "/tmp")
        let sel = PendingJobSelector(partition: "debug", constraint: nil)
        #expect(try PendingJobCounter(runner: runner, system: .slurm).argv(sel)
                == ["squeue", "-h", "-r", "-t", "PENDING", "-o", "%i", "--partition=debug"])
        #expect(try PendingJobCounter(runner: runner, system: .sge).argv(sel) == ["qstat", "-u", "*", "-s", "p", "-xml", "-q", "debug"])
        let pool = CondorPool(scheddHost: "schedd.example.org", scheddPort: 9618, collectorHost: "cm.example.org",
                              collectorPort: 9618, groupBy: "MATCH_APF_QUEUE")
        #expect(try PendingJobCounter.condorPool(pool).argv(PendingJobSelector(constraint: "MATCH_APF_QUEUE == \"Q\""))
                == ["condor_q", "-allusers", "-pool", "cm.example.org:9618", "-name", "schedd.example.org", "-constraint",
                    "JobStatus == 1 && (MATCH_APF_QUEUE == \"Q\")", "-af", "ClusterId"])
        #expect(throws: StatusError.self) { try PendingJobCounter(runner: runner, system: .pbs).argv(sel) }
    }
}
