import ArgumentParser
import AuthProfiles
import Foundation
import Logging
import SSHSubmit

/// P2 and P3: bulk submission to the testbed's real SLURM over SSH, and parsing listings at scale.
struct SubmitBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "P2: 1,000 pilots into real SLURM over SSH vs the floor, a per-job sbatch loop and one ssh per job; P3: parse 100,000 squeue and sacct lines.")

    @Option(help: "Pilots for P2.") var pilots = 1000
    @Option(help: "Repetitions of the fast P2 measurements (ours, floor); the median is reported.") var repetitions = 5
    @Option(help: "At most this many jobs (and this many seconds) for one-ssh-per-job; the rest is extrapolated.") var sshJobs = 100
    @Option(help: "Time cap in seconds for one-ssh-per-job.") var sshSeconds = 60.0
    @Option(help: "Lines of each listing for P3.") var lines = 100_000
    @Flag(help: "Only P3 (no testbed needed).") var parseOnly = false
    @Flag(help: "Only P2.") var submitOnly = false
    @Flag(help: "Skip the Python reference parser in P3.") var noReference = false

    func run() async throws {
        if !submitOnly { try p3() }
        if !parseOnly { try await p2() }
    }

    // MARK: - P2

    func p2() async throws {
        let env = try TestbedEnv.load()
        guard env["APF_TB_SLURM"] == "1" else { throw ValidationError("the testbed's SLURM is not up: testbed/tb up slurm") }
        guard let key = env["APF_TB_KEY_ED25519"], let knownHosts = env["APF_TB_KNOWN_HOSTS"],
              let port = env["APF_TB_SSH_PORT"].flatMap(Int.init), let user = env["APF_TB_USER"]
        else { throw ValidationError("the testbed env file lacks the main sshd's settings") }
        let logger = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let identity = SSHIdentity(id: "bench", privateKey: Secret(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: key)))))
        let endpoint = SSHEndpoint(host: "127.0.0.1", port: port, user: user)
        let pool = SSHPool(endpoint: endpoint, identity: identity, knownHostsPath: knownHosts, logger: logger)
        let runner = SSHCommandRunner(pool: pool)
        let tag = try FactoryTag("b" + String(UInt32.random(in: 0..<(36 * 36 * 36)), radix: 36))
        let backend = SlurmBackend(runner: runner, tag: tag)
        // Held (--hold) so that 3,000+ benchmark jobs never run; every one is cancelled afterwards.
        let wrapper = PilotWrapper(name: "bench-pilot", content: Array("#!/bin/sh\ntrue\n".utf8))
        let queue = try await backend.prepare(QueueSpec(name: "BENCH", factory: "apf-bench", tag: tag, payload: .wrapper(wrapper),
                                                        options: BatchOptions(walltime: .seconds(300), extra: ["--hold"]), workDirectory: ".apf-agent/bench"))
        let minter = ClientIDMinter(tag: tag)
        _ = try await backend.status([])  // helper installed and connection warm, like the floor's open connection
        let n = pilots

        // Only this run's jobs are ever cancelled: by array ID, or by this run's unique job names.
        let names = (floor: "bf-\(tag)", loop: "bl-\(tag)", ssh: "bs-\(tag)")
        func cancel(jobs: [UInt64] = [], name: String? = nil) async throws {
            var argv = ["scancel"]
            if let name { argv += ["-u", user, "-n", name] }
            argv += jobs.map(String.init)
            guard argv.count > 1 else { return }
            _ = try await runner.run(RemoteCommand(argv))
        }

        // Ours: SlurmBackend.submit, until every pilot has its batch ID.
        var ours: [Double] = []
        for _ in 0..<repetitions {
            let ids = minter.mint(count: n)
            var results: [SubmitResult] = []
            let d = await measure { results = await backend.submit(ids, to: queue) }
            let accepted = results.compactMap { $0.outcome.nativeID }
            try await cancel(jobs: Array(Set(accepted.map(\.job))))
            guard accepted.count == n else { throw ValidationError("only \(accepted.count) of \(n) pilots got a batch ID: \(results[0])") }
            ours.append(d.seconds)
        }

        // (a) The floor: one `sbatch --array=1-N` exec on the already-open pooled connection.
        var floor: [Double] = []
        let tinyScript = Array("#!/bin/sh\ntrue\n".utf8)
        for _ in 0..<repetitions {
            let d = try await measure {
                let r = try await runner.run(RemoteCommand(["sbatch", "--parsable", "--hold", "--array=1-\(n)", "-o", "/dev/null", "-J", names.floor],
                                                           stdin: tinyScript))
                guard r.exitStatus == 0 else { throw ValidationError("floor sbatch failed: \(r.stderrText)") }
            }
            floor.append(d.seconds)
            try await cancel(name: names.floor)
        }

        // (b) A per-job sbatch loop over our pool (one command per pilot, as APF and DIRAC submit).
        let loop = try await measure {
            for i in 0..<n {
                let r = try await runner.run(RemoteCommand(["sbatch", "--parsable", "--hold", "-o", "/dev/null", "-J", names.loop],
                                                           stdin: tinyScript))
                guard r.exitStatus == 0 else { throw ValidationError("loop sbatch \(i) failed: \(r.stderrText)") }
            }
        }.seconds
        try await cancel(name: names.loop)

        // (c) One ssh process per job (the DIRAC way), capped and extrapolated linearly to N.
        let sshBase = ["/usr/bin/ssh", "-F", "/dev/null", "-p", "\(port)", "-i", key, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                       "-o", "UserKnownHostsFile=\(knownHosts)", "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                       "\(user)@127.0.0.1", "sbatch --parsable --hold -o /dev/null -J \(names.ssh) --wrap true"]
        var sshDone = 0
        let sshStart = ContinuousClock.now
        while sshDone < min(sshJobs, n), (ContinuousClock.now - sshStart).seconds < sshSeconds {
            guard try await spawn(sshBase) == 0 else { throw ValidationError("ssh sbatch failed") }
            sshDone += 1
        }
        let sshMeasured = (ContinuousClock.now - sshStart).seconds
        let sshPerJob = sshMeasured / Double(max(sshDone, 1)) * Double(n)
        try await cancel(name: names.ssh)
        _ = try? await runner.run(RemoteCommand(["rm", "-rf", "--", queue.workDirectory]))
        await pool.shutdown()

        let oursMedian = median(ours)
        let floorMedian = median(floor)
        print("P2: \(n) pilots into real SLURM 22.05 over SSH (127.0.0.1:\(port)); jobs submitted held and cancelled after each run")
        print(String(format: "  ours (SlurmBackend.submit: one array, one exec)       median %.3f s of %d: %@", oursMedian, ours.count,
                     ours.map { String(format: "%.3f", $0) }.joined(separator: " ")))
        print(String(format: "  (a) floor: one sbatch --array=1-%d exec, open connection median %.3f s of %d: %@", n, floorMedian, floor.count,
                     floor.map { String(format: "%.3f", $0) }.joined(separator: " ")))
        print(String(format: "  (b) per-job sbatch loop over our pool                  %.3f s (%.2f ms/job)", loop, loop * 1000 / Double(n)))
        print(String(format: "  (c) one ssh process per job                              %.1f s extrapolated from %d jobs in %.1f s (capped at %d jobs / %.0f s)",
                     sshPerJob, sshDone, sshMeasured, sshJobs, sshSeconds))
        print(String(format: "P2 pilots=%d seconds=%.3f floor_x=%.2f per_job_loop_x=%.1f ssh_per_job_x=%.1f", n, oursMedian,
                     oursMedian / floorMedian, loop / oursMedian, sshPerJob / oursMedian))
    }

    // MARK: - P3

    func p3() throws {
        let tag = try FactoryTag("apf")
        let (squeue, sacct) = Self.syntheticListings(lines: lines, tag: tag)
        // Warm up, then the median of 21 runs of each.
        var squeueTimes: [Double] = []
        var sacctTimes: [Double] = []
        var indexTimes: [Double] = []
        var counts = (0, 0)
        for run in 0..<22 {
            let t0 = ContinuousClock.now
            let q = SlurmParser.parseListing(squeue, layout: .squeue, tag: tag, source: .queue, capacity: lines)
            let t1 = ContinuousClock.now
            let a = SlurmParser.parseListing(sacct, layout: .sacct, tag: nil, source: .accounting, capacity: lines)
            let t2 = ContinuousClock.now
            // The same squeue records materialised and indexed by native ID, as a status report holds them.
            let index = q.records()
            let t3 = ContinuousClock.now
            guard q.stats.malformed == 0, a.stats.malformed == 0, q.rows.count == lines, a.rows.count == lines, index.count == lines else {
                throw ValidationError("P3 parse mismatch: \(q.rows.count) + \(a.rows.count) rows, \(q.stats.malformed + a.stats.malformed) malformed")
            }
            counts = (q.rows.count, a.rows.count)
            if run > 0 {
                squeueTimes.append((t1 - t0).seconds * 1000)
                sacctTimes.append((t2 - t1).seconds * 1000)
                indexTimes.append((t3 - t2).seconds * 1000)
            }
        }
        let sq = median(squeueTimes)
        let sa = median(sacctTimes)
        print("P3: \(lines) lines of `squeue -o '\(SlurmLayout.squeueFormat)'` and \(lines) of `sacct -X -n -P -o \(SlurmLayout.sacctFields)`,")
        print("    synthetic but in the exact shapes captured from the testbed's SLURM 22.05 (array tasks `J_T`, client-ID job names,")
        print("    states PENDING/RUNNING/COMPLETED/FAILED/CANCELLED by <uid>/TIMEOUT with their reasons and exit codes), fixed seed;")
        print("    parsed into \(counts.0) + \(counts.1) normalised records (ID, client ID, state, native state, reason, exit code).")
        print(String(format: "  squeue %.2f ms, sacct %.2f ms (medians of %d runs, release build; fastest runs %.2f and %.2f ms);",
                     sq, sa, squeueTimes.count, squeueTimes.min() ?? .nan, sacctTimes.min() ?? .nan))
        print(String(format: "  materialising the squeue rows as records indexed by ID costs %.2f ms more", median(indexTimes)))
        if !noReference, let py = try? pythonReference(sacct) {
            print(String(format: "  for reference, a split-based Python parser (the peers' way) on the same sacct lines: %.1f ms", py))
        }
        print(String(format: "P3 lines=%d parse_ms=%.2f", lines, sq + sa))
    }

    /// Times a split-based Python parser (like Harvester's and DIRAC's) on the same sacct lines; median of 11.
    func pythonReference(_ sacct: [UInt8]) throws -> Double {
        let path = NSTemporaryDirectory() + "apf-p3-sacct-\(getpid()).txt"
        try Data(sacct).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let script = """
            import sys, time, statistics
            data = open(sys.argv[1]).read()
            table = {"PENDING": "pending", "RUNNING": "running", "COMPLETED": "done", "FAILED": "failed", "CANCELLED": "cancelled",
                     "TIMEOUT": "done", "OUT_OF_MEMORY": "failed", "COMPLETING": "completing"}
            times = []
            for _ in range(11):
                t = time.perf_counter()
                jobs = {}
                for line in data.splitlines():
                    f = line.split("|")
                    state = f[1].split(" ")[0]
                    code, sig = f[2].split(":")
                    jobs[f[0]] = (table.get(state, "unknown"), state, f[3], int(code), int(sig), f[4])
                times.append((time.perf_counter() - t) * 1000)
            print(statistics.median(times))
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let ms = Double(String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        else { throw ValidationError("python3 reference failed") }
        return ms
    }

    /// Listings in the driver's own formats. Jobs are arrays of 50 tasks named after their first pilot's client ID.
    static func syntheticListings(lines: Int, tag: FactoryTag) -> ([UInt8], [UInt8]) {
        var rng = SplitMix(state: 0x5EED)
        let minter = ClientIDMinter(tag: tag, unixSeconds: { 1_800_000_000 })
        let squeueStates: [(String, String)] = [("PENDING", "Resources"), ("PENDING", "Priority"), ("RUNNING", "None"), ("RUNNING", "None"),
                                                 ("RUNNING", "None"), ("COMPLETING", "None"), ("COMPLETED", "None"), ("FAILED", "NonZeroExitCode"),
                                                 ("PENDING", "BeginTime"), ("CANCELLED", "None")]
        let sacctStates: [(String, String, String)] = [("COMPLETED", "0:0", "None"), ("COMPLETED", "0:0", "None"), ("FAILED", "3:0", "None"),
                                                       ("CANCELLED by 1001", "0:0", "None"), ("TIMEOUT", "0:0", "None"),
                                                       ("RUNNING", "0:0", "None"), ("PENDING", "0:0", "Resources"), ("OUT_OF_MEMORY", "0:125", "None")]
        var squeue = ""
        var sacct = ""
        squeue.reserveCapacity(lines * 48)
        sacct.reserveCapacity(lines * 52)
        var job = 1_000_000
        var i = 0
        while i < lines {
            let first = minter.mint(count: 50)[0]
            for task in 1...50 where i < lines {
                let (s, r) = squeueStates[Int(rng.next() % UInt64(squeueStates.count))]
                squeue += "\(job)_\(task)|\(s)|\(r)|\(first)\n"
                let (a, e, ar) = sacctStates[Int(rng.next() % UInt64(sacctStates.count))]
                sacct += "\(job)_\(task)|\(a)|\(e)|\(ar)|\(first)\n"
                i += 1
            }
            job += 51
        }
        return (Array(squeue.utf8), Array(sacct.utf8))
    }
}

struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    guard !s.isEmpty else { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
