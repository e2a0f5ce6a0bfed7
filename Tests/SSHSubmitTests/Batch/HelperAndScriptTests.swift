import Foundation
import Testing

@testable import SSHSubmit

struct HelperFrameTests {
    func frame(nonce: String, ops: [(Int32, String, String)]) -> [UInt8] {
        let header = "{\"v\":1,\"nonce\":\"\(nonce)\",\"ops\":[" + ops.map { "{\"rc\":\($0.0),\"out\":\($0.1.utf8.count),\"err\":\($0.2.utf8.count)}" }
            .joined(separator: ",") + "]}"
        return Array("APF1 \(header.utf8.count)\n\(header)".utf8) + ops.flatMap { Array($0.1.utf8) + Array($0.2.utf8) }
    }

    @Test func bannersAndShellNoiseBeforeTheFrameAreIgnored() {
        let noise = Array("Welcome to the cluster!\nAPF1 is not a frame\nlast login: yesterday\n".utf8)
        let body = frame(nonce: "abc", ops: [(0, "123;cl\n", ""), (1, "", "sacct: error\n")])
        let r = RemoteHelper.parseFrame(noise + body, nonce: "abc", count: 2)
        #expect(r?.count == 2)
        #expect(r?[0].stdoutText == "123;cl\n")
        #expect(r?[1].exitStatus == 1 && r?[1].stderrText == "sacct: error\n")
    }

    @Test func aFrameWithAnotherNonceOrCountIsRejected() {
        let body = frame(nonce: "abc", ops: [(0, "x", "")])
        #expect(RemoteHelper.parseFrame(body, nonce: "other", count: 1) == nil)
        #expect(RemoteHelper.parseFrame(body, nonce: "abc", count: 2) == nil)
        #expect(RemoteHelper.parseFrame(Array(body.dropLast()), nonce: "abc", count: 1) == nil)  // truncated payload
    }

    @Test func requestsAreArgumentVectorsWithoutNewlines() throws {
        let (argv, stdin) = try RemoteHelper.encode([.exec(["squeue", "-o", "%i|%T"]),
                                                     .absent(reference: 0, present: .firstFieldPipe, runs: .chunks(100),
                                                             argv: ["sacct", "-j", "@IDS@"], ids: ["1", "2_3"])], stdin: [])
        #expect(argv == ["x", "3", "squeue", "-o", "%i|%T", "a", "0", "f1|", "100", "3", "sacct", "-j", "@IDS@", "2", "1", "2_3"])
        #expect(stdin.isEmpty)
        #expect(throws: BatchError.self) { try RemoteHelper.encode([.exec(["echo", "a\nb"])], stdin: []) }
        #expect(throws: BatchError.self) { try RemoteHelper.encode([.execStdin(["a"]), .write(path: "p", mode: 0o600)], stdin: []) }
        #expect(throws: BatchError.self) {
            try RemoteHelper.encode([.absent(reference: 0, present: .sgeXML, runs: .each, argv: ["q"], ids: [])], stdin: [])
        }
    }

    @Test func manyIDsTravelOnStdinNotOnTheCommandLine() throws {
        let ids = (1...5000).map { "\($0)_1" }
        let (argv, stdin) = try RemoteHelper.encode([.exec(["squeue"]), .absent(reference: 0, present: .firstFieldPipe, runs: .chunks(100),
                                                                                argv: ["sacct"], ids: ids)], stdin: [])
        #expect(argv.last == "-")
        #expect(String(decoding: stdin, as: UTF8.self).split(separator: "\n").count == 5000)
    }

    @Test func independentOpsArePackedUnderTheCommandLineBudget() {
        let ops = (0..<400).map { i in HelperOp.exec(["scancel"] + (0..<100).map { "\(1_000_000 + i * 100 + $0)_1" }) }
        let groups = RemoteHelper.pack(ops, budget: RemoteHelper.commandBudget)
        #expect(groups.count > 1)
        #expect(groups.flatMap { $0 }.count == 400)
        for g in groups { #expect(g.reduce(0) { $0 + $1.encodedSize } <= RemoteHelper.commandBudget) }
    }
}

struct CancelReaderTests {
    func apply(_ reader: CancelReader, rc: Int32, out: String = "", err: String = "", ids: [NativeJobID]) -> CancelReport {
        var report = CancelReport()
        reader.apply(HelperOpResult(exitStatus: rc, stdout: Array(out.utf8), stderr: Array(err.utf8)), ids: ids, target: "t", into: &report)
        return report
    }

    /// Messages as printed by the testbed's Son of Grid Engine 8.1.9 (`qdel 5.11 5.12 5.99`).
    @Test func sgeTaskMessagesAreMatchedExactly() {
        let r = apply(SGEBackend.cancelReader, rc: 1,
                      out: "apftest has deleted job-array task 5.11\napftest has deleted job-array task 5.12\n",
                      err: "job \"5\" task \"99\" does not exist\n", ids: [.sge(5, task: 11), .sge(5, task: 12), .sge(5, task: 99)])
        #expect(r.requested == [.sge(5, task: 11), .sge(5, task: 12)])
        #expect(r.alreadyGone == [.sge(5, task: 99)])
        #expect(r.failed.isEmpty)
    }

    @Test func slurmInvalidIDIsGoneAndOtherIDsAreNotConfused() {
        let r = apply(SlurmBackend.cancelReader, rc: 1,
                      err: "scancel: error: Kill job error on job id 12: Invalid job id specified\n", ids: [.slurm(12), .slurm(123)])
        #expect(r.alreadyGone == [.slurm(12)])
        #expect(r.requested == [.slurm(123)])  // "12" in the message is not "123"
    }

    @Test func aWholeCommandFailureFailsEveryID() {
        let r = apply(PBSBackend.cancelReader, rc: 2, err: "qdel: cannot connect to server\n", ids: [.pbs(1, server: "s"), .pbs(2, server: "s")])
        #expect(r.failed.count == 2 && r.requested.isEmpty)
    }
}

struct TemplateAndOptionTests {
    @Test func placeholdersBecomeQuotedExpansions() throws {
        #expect(try PilotTemplate.shellWord("--id={client_id}") == "'--id='\"${APF_CLIENT_ID}\"")
        #expect(try PilotTemplate.shellWord("it's {{literal}}") == "'it'\\''s {literal}'")
        #expect(try PilotTemplate.shellWord("") == "''")
    }

    @Test(arguments: ["{clientid}", "{client_id", "a}b", "{}", "{QUEUE}"]) func unknownOrBrokenPlaceholdersAreRefused(_ t: String) {
        #expect(throws: BatchError.self) { try PilotTemplate.parse(t) }
    }

    @Test func optionsAreValidatedPerSystem() throws {
        try BatchOptions(walltime: .seconds(3600), cores: 8, memoryMB: 2000, partition: "debug", account: "atlas",
                         extra: ["--constraint=avx2"]).validate(for: .slurm)
        #expect(throws: BatchError.self) { try BatchOptions(extra: ["--array=1-9"]).validate(for: .slurm) }
        #expect(throws: BatchError.self) { try BatchOptions(extra: ["-J", "x"]).validate(for: .slurm) }
        #expect(throws: BatchError.self) { try BatchOptions(extra: ["constraint"]).validate(for: .slurm) }
        #expect(throws: BatchError.self) { try BatchOptions(extra: ["--begin", "now"]).validate(for: .slurm) }
        try BatchOptions(extra: ["-a", "202701010000", "-l", "h_vmem=1G"]).validate(for: .sge)
        #expect(throws: BatchError.self) { try BatchOptions(extra: ["value", "-a"]).validate(for: .sge) }
        #expect(throws: BatchError.self) { try BatchOptions(extra: ["-l", "a", "b"]).validate(for: .pbs) }
        #expect(throws: BatchError.self) { try BatchOptions(extra: ["--a\n#SBATCH --b"]).validate(for: .slurm) }
        #expect(throws: BatchError.self) { try BatchOptions(partition: "a b").validate(for: .pbs) }
        #expect(throws: BatchError.self) { try BatchOptions(walltime: .seconds(5)).validate(for: .pbs) }
        #expect(throws: BatchError.self) { try BatchOptions(cores: 4).validate(for: .sge) }  // needs a parallel environment
        try BatchOptions(extra: ["+ProjectName = \"x\"", "requirements = (OpSys == \"LINUX\")"]).validate(for: .htcondor)
        #expect(throws: BatchError.self) { try BatchOptions(extra: ["queue = 5"]).validate(for: .htcondor) }
        #expect(throws: BatchError.self) { try BatchOptions(extra: ["+APFClientID = \"x\""]).validate(for: .htcondor) }
    }

    func queue(_ payload: Payload, options: BatchOptions = BatchOptions()) -> QueueSpec {
        QueueSpec(name: "ANALY_TEST", factory: "apf-test factory", tag: .t("t1"), payload: payload, options: options)
    }

    @Test func launcherExportsTheIdentityAndQuotesEverything() throws {
        let w = PilotWrapper(name: "wrapper", content: [], arguments: ["-q", "{queue}", "--id={client_id}", "$(rm -rf /)"],
                             environment: [("PANDA_SITE", "site 'x'"), ("GTAG", "http://h/{client_id}.out")])
        let text = String(decoding: try Scripts.launcher(queue: queue(.wrapper(w)), payloadCommand: ["/w/wrapper-abc"], workDirectory: "/w",
                                                         environment: w.environment, arguments: w.arguments), as: UTF8.self)
        #expect(text.contains("APF_QUEUE='ANALY_TEST'"))
        #expect(text.contains("APF_FACTORY='apf-test factory'"))
        #expect(text.contains("PANDA_SITE='site '\\''x'\\'''"))
        #expect(text.contains("GTAG='http://h/'\"${APF_CLIENT_ID}\"'.out'"))
        #expect(text.hasSuffix("exec '/w/wrapper-abc' '-q' \"${APF_QUEUE}\" '--id='\"${APF_CLIENT_ID}\" '$(rm -rf /)'\n"))
        #expect(throws: BatchError.self) {
            try Scripts.launcher(queue: queue(.wrapper(w)), payloadCommand: ["/w"], workDirectory: "/w", environment: [("APF_QUEUE", "x")], arguments: [])
        }
    }

    @Test func arrayScriptMapsTasksToClientIDs() {
        let ids = ClientIDMinter(tag: .t("t1")).mint(count: 3)
        let text = String(decoding: Scripts.arrayScript(pilots: ids, indexVariable: "SLURM_ARRAY_TASK_ID", launcherPath: "/w/l.sh"), as: UTF8.self)
        #expect(text.hasPrefix("#!/bin/sh\n"))
        for (i, id) in ids.enumerated() { #expect(text.contains("\(i + 1)) APF_CLIENT_ID=\(id) ;;")) }
        #expect(text.contains("exit 97"))
        #expect(text.hasSuffix("export APF_CLIENT_ID\nexec '/w/l.sh'\n"))
    }

    /// HTCondor daemons cannot run here (TESTBED.md §8): only the glidein's generated files are checked, not a running
    /// startd joining a collector.
    @Test func glideinGeneratedFilesOnly() throws {
        let g = GlideinPayload(collector: "pool.example.org:9618", condorLocation: "/cvmfs/oasis/condor", idleTimeout: .seconds(1200),
                               maxLifetime: .seconds(86400), tokenFile: "/etc/apf/tokens/pool.token", extraConfig: [("SLOT_TYPE_1", "cpus=100%")])
        let config = String(decoding: try Scripts.glideinConfig(g), as: UTF8.self)
        for line in ["CONDOR_HOST = pool.example.org:9618", "DAEMON_LIST = MASTER, STARTD", "STARTD_NOCLAIM_SHUTDOWN = 1200",
                     "MASTER.DAEMON_SHUTDOWN = STARTD_StartTime =?= 0", "START = (time() - DaemonStartTime) < 86400",
                     "SEC_TOKEN_DIRECTORY = /etc/apf/tokens", "STARTD_ATTRS = $(STARTD_ATTRS) APF_CLIENT_ID APF_QUEUE APF_FACTORY",
                     "SLOT_TYPE_1 = cpus=100%"] {
            #expect(config.contains(line + "\n"), "\(line)")
        }
        let startup = String(decoding: try Scripts.glideinStartup(g, configPath: "/w/glidein-config-0123"), as: UTF8.self)
        #expect(startup.contains("CONDOR_CONFIG='/w/glidein-config-0123'"))
        #expect(startup.contains("\"$condor_location/sbin/condor_master\" -f"))
        #expect(throws: BatchError.self) { try Scripts.glideinConfig(GlideinPayload(collector: "a b", condorLocation: "/c", idleTimeout: .seconds(600))) }
        #expect(throws: BatchError.self) { try Scripts.glideinConfig(GlideinPayload(collector: "h", condorLocation: "rel", idleTimeout: .seconds(600))) }
        #expect(throws: BatchError.self) { try Scripts.glideinConfig(GlideinPayload(collector: "h", condorLocation: "/c", idleTimeout: .seconds(5))) }
    }
}

struct DriverLogicTests {
    @Test func contiguousRunsBecomeArrays() {
        let m = ClientIDMinter(tag: .t("t1"))
        let a = m.mint(count: 5)
        let b = m.mint(count: 2)
        let runs = DriverCore.contiguousRuns([a[0], a[1], a[2], a[4], b[0], b[1]], maxRun: 2)
        #expect(runs.map(\.count) == [2, 1, 2, 1])  // a[4] and b[0] are consecutive serials
        #expect(DriverCore.contiguousRuns(a + b, maxRun: 1000).count == 1)
        #expect(DriverCore.chunks(Array(0..<250)).map(\.count) == [100, 100, 50])
    }

    @Test func notInTheQueueIsNeverDone() {
        var report = StatusReport(target: "t")
        report.records[.slurm(1)] = JobRecord(id: .slurm(1), clientID: nil, status: JobStatus(state: .running, nativeState: "RUNNING"), source: .queue)
        report.accounting = .available
        report.settle(requested: [.slurm(1), .slurm(2)])
        #expect(report.observation(.slurm(2)) == .notFound)
        #expect(report.observation(.slurm(3)) == .notAsked)

        var failing = StatusReport(target: "t")
        failing.accounting = .available
        failing.accountingError = BatchError(.commandFailed, "slurmdbd down", permanent: false)
        failing.settle(requested: [.slurm(2)])
        #expect(failing.observation(.slurm(2)) == .unresolved)  // no information: the caller keeps the old state
    }

    @Test func sbatchOutcomes() {
        func r(_ rc: Int32, _ out: String, _ err: String = "") -> HelperOpResult {
            HelperOpResult(exitStatus: rc, stdout: Array(out.utf8), stderr: Array(err.utf8))
        }
        #expect(SlurmBackend.classifySbatch(r(0, "4242\n"), target: "t")(7).nativeID == .slurm(4242, task: 7))
        #expect(SlurmBackend.classifySbatch(r(0, "4242;west\n"), target: "t")(1).nativeID == .slurm(4242, task: 1))
        guard case .unknown = SlurmBackend.classifySbatch(r(1, "", "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation"),
                                                          target: "t")(1) else { Issue.record("a timeout may have queued the job"); return }
        guard case .failed(let e) = SlurmBackend.classifySbatch(r(1, "", "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified"),
                                                                target: "t")(1), e.isPermanent else { Issue.record("a bad account is permanent"); return }
        guard case .unknown = SlurmBackend.classifySbatch(r(0, "garbage"), target: "t")(1) else { Issue.record("no ID is not a failure"); return }
    }

    @Test func sbatchArgumentVector() {
        let backend = SlurmBackend(runner: LocalCommandRunner(baseDirectory: "/tmp"), tag: .t("t1"), settings: SlurmSettings(cluster: "west"))
        let spec = QueueSpec(name: "q", factory: "f", tag: .t("t1"), payload: .wrapper(PilotWrapper(name: "w", content: [])),
                             options: BatchOptions(walltime: .seconds(3601), cores: 2, memoryMB: 1000, partition: "debug", account: "apf",
                                                   extra: ["--constraint=avx2"]))
        let prepared = PreparedQueue(spec: spec, workDirectory: "/h/w", logDirectory: "/h/w/logs", launcherPath: "/h/w/l.sh", payloadPaths: [],
                                     target: "local")
        let first = ClientIDMinter(tag: .t("t1")).mint()
        #expect(backend.sbatchArgv(first: first, count: 50, queue: prepared) == [
            "sbatch", "--parsable", "--job-name=\(first)", "--array=1-50", "--output=/h/w/logs/%A_%a.out", "--error=/h/w/logs/%A_%a.err",
            "--chdir=/h/w", "--time=61", "--cpus-per-task=2", "--mem=1000M", "--partition=debug", "--account=apf", "--clusters=west",
            "--constraint=avx2",
        ])
    }

    @Test func utcTimes() {
        #expect(UTCTime.sacct(0) == "1970-01-01T00:00:00")
        #expect(UTCTime.sacct(1_800_000_000) == "2027-01-15T08:00:00")
        #expect(UTCTime.qacct(1_800_000_000) == "202701150800")
    }

    @Test func htcondorDescriptionCarriesEachPilotsIdentity() {
        let backend = HTCondorBackend(runner: LocalCommandRunner(baseDirectory: "/tmp"), tag: .t("t1"))
        let spec = QueueSpec(name: "BNL \"q\"", factory: "f", tag: .t("t1"), payload: .wrapper(PilotWrapper(name: "w", content: [])),
                             options: BatchOptions(cores: 1, extra: ["+ProjectName = \"x\""]))
        let prepared = PreparedQueue(spec: spec, workDirectory: "/h/w", logDirectory: "/h/w/logs", launcherPath: "/h/w/l.sh", payloadPaths: [],
                                     target: "local")
        let ids = ClientIDMinter(tag: .t("t1")).mint(count: 2)
        let text = String(decoding: backend.description(ids, queue: prepared), as: UTF8.self)
        #expect(text.contains("+APFFactoryTag = \"t1\"\n"))
        #expect(text.contains("+MATCH_APF_QUEUE = \"BNL \\\"q\\\"\"\n"))
        #expect(text.contains("+APFClientID = \"\(ids[1])\"\nenvironment = \"APF_CLIENT_ID=\(ids[1])\"\nqueue 1\n"))
        #expect(text.components(separatedBy: "queue 1").count == 3)
    }

    @Test func splitConcatenatedJSONArrays() {
        let parts = HTCondorBackend.splitJSONArrays(Array("[\n{\"a\": \"]\"}\n]\n[\n{\"b\": 1}\n]\n".utf8))
        #expect(parts.count == 2)
    }
}

struct SlurmListingTests {
    /// The compact listing and the indexed records agree, and a name is never reused across different arrays.
    @Test func listingRowsMatchIndexedRecordsAcrossInterleavedArrays() throws {
        let m = ClientIDMinter(tag: .t("t1"))
        let a = m.mint(count: 3)
        let b = m.mint(count: 2)
        let text = """
            10_1|RUNNING|None|\(a[0])
            11_1|PENDING|Resources|\(b[0])
            10_2|PENDING|Priority|\(a[0])
            10_3|CANCELLED by 1001|None|\(a[0])
            11_2|PENDING|Resources|\(b[0])
            12|RUNNING|None|someone-else|with|pipes
            13_[1-2]|PENDING|BeginTime|\(b[0])

            """
        let listing = SlurmParser.parseListing(Array(text.utf8), layout: .squeue, tag: .t("t1"), source: .queue)
        #expect(listing.rows.count == 7 && listing.stats.foreign == 1 && listing.stats.malformed == 0)
        let expected: [NativeJobID: ClientID] = [.slurm(10, task: 1): a[0], .slurm(11, task: 1): b[0], .slurm(10, task: 2): a[1],
                                                 .slurm(10, task: 3): a[2], .slurm(11, task: 2): b[1], .slurm(13, task: 1): b[0],
                                                 .slurm(13, task: 2): b[1]]
        var dict: [NativeJobID: JobRecord] = [:]
        var stats = ParseStats()
        SlurmParser.parse(Array(text.utf8), layout: .squeue, tag: .t("t1"), source: .queue, into: &dict, stats: &stats)
        #expect(dict == listing.records())
        for i in listing.rows.indices {
            let r = listing.record(at: i)
            #expect(expected[r.id] == r.clientID, "\(r)")
            #expect(dict[r.id] == r)
        }
        #expect(dict[.slurm(10, task: 3)]?.status == JobStatus(state: .cancelled, nativeState: "CANCELLED"))
        #expect(dict[.slurm(10, task: 2)]?.status.reason == "Priority")
    }
}
