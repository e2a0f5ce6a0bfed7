import Foundation
import Testing

@testable import SSHSubmit

/// Parsers over recorded real outputs from public sources (the fixture folder's SOURCES.md names each file's
/// repository, commit and command); oracles are the source projects' own published expectations where they exist.
@Suite(.enabled(if: BatchFixtures.available, BatchFixtures.skipNote))
struct SlurmFixtureTests {
    func parse(_ file: String, _ layout: SlurmLayout, tag: FactoryTag? = nil) throws -> ([NativeJobID: JobRecord], ParseStats) {
        var records: [NativeJobID: JobRecord] = [:]
        var stats = ParseStats()
        SlurmParser.parse(try BatchFixtures.bytes(file), layout: layout, tag: tag, source: .accounting, into: &records, stats: &stats)
        return (records, stats)
    }

    /// kong's test_sacct_parse oracle: steps fold into their job, exit codes as printed, unknown states stay unknown.
    @Test func sacctParsable2WithSteps() throws {
        let layout = SlurmLayout(fieldCount: 7, id: 0, state: 1, exitCode: 2)
        let (r, stats) = try parse("slurm/sacct-parsable2-steps_kong.txt", layout)
        #expect(stats.malformed == 0)
        #expect(r.count == 8)
        #expect(r[.slurm(5205197)]?.status == JobStatus(state: .failed, nativeState: "FAILED", exitCode: 2))
        #expect(r[.slurm(5205223)]?.status.exitCode == 13)
        #expect(r[.slurm(5205355)]?.status.state == .pending)
        #expect(r[.slurm(5205757)]?.status.state == .done)
        #expect(r[.slurm(22822)]?.status.state == .unknown)
        #expect(r[.slurm(22822)]?.status.nativeState == "NOCLUE")
    }

    @Test func sacctUnitSeparatorWithCancelledBy() throws {
        let layout = SlurmLayout(separator: 0x1F, fieldCount: 17, id: 2, state: 9, name: 3)
        let (r, stats) = try parse("slurm/sacct-P-unitsep_ood-mock-script.txt", layout)
        #expect(stats.malformed == 0)
        #expect(r[.slurm(20251)]?.status.state == .pending)
        #expect(r[.slurm(20252)]?.status.state == .running)
        // "CANCELLED by 1001" is CANCELLED, not unknown and not a truncated "CANCELLED+".
        #expect(r[.slurm(5963565)]?.status.state == .cancelled)
        #expect(r[.slurm(5963565)]?.status.nativeState == "CANCELLED")
    }

    @Test func sacctFirecrestWithBatchStep() throws {
        let layout = SlurmLayout(fieldCount: 20, id: 0, state: 10, reason: 11, exitCode: 3, name: 6)
        let (r, _) = try parse("slurm/sacct-parsable2_firecrest-with-step.txt", layout)
        #expect(r.count == 1)
        #expect(r[.slurm(12)]?.status.state == .done)
        let (all, _) = try parse("slurm/sacct-parsable2_firecrest-allusers.txt", layout)
        #expect(Set(all.keys) == [.slurm(3), .slurm(4)])
    }

    /// A row with one field too many is rejected and counted, never re-aligned (SOURCES.md: the Cardinal capture's
    /// first job row has 52 fields).
    @Test func squeueFormatOWithAMalformedRow() throws {
        let layout = SlurmLayout(separator: 0x1F, fieldCount: 50, id: 1, state: 35, reason: 32, name: 17, headerLines: 1)
        let (r, stats) = try parse("slurm/squeue-O-unitsep_ood-cardinal.txt", layout)
        #expect(stats.malformed == 1)
        #expect(r[.slurm(6779842)] == nil)
        #expect(r[.slurm(6787542)]?.status.state == .running)
        let timeout = try #require(r[.slurm(6783828)]?.status)
        #expect(timeout.state == .done && timeout.ending == .timeout && timeout.reason == "TimeLimit")

        let (mock, mockStats) = try parse("slurm/squeue-O-unitsep_ood-mock-script.txt", layout)
        #expect(mockStats.malformed == 0)
        #expect(mock[.slurm(4320602)]?.status == JobStatus(state: .pending, nativeState: "PENDING", reason: "Resources"))
        #expect(mock[.slurm(5096321)]?.status.state == .done)
    }

    @Test func squeueNonUTF8NameDoesNotBreakTheRow() throws {
        let layout = SlurmLayout(separator: 0x1F, fieldCount: 50, id: 1, state: 35, reason: 32, name: 17, headerLines: 1)
        let (r, stats) = try parse("slurm/squeue-O-unitsep_ood-pitzer-non-utf8.txt", layout)
        #expect(stats.malformed == 0)
        #expect(r[.slurm(123)]?.status.state == .done)
        #expect(r[.slurm(123)]?.clientID == nil)
    }

    @Test func squeueFormatPipe() throws {
        let layout = SlurmLayout(fieldCount: 20, id: 0, state: 10, reason: 11, name: 6)
        #expect(try parse("slurm/squeue-Format-pipe_firecrest-job.txt", layout).0[.slurm(1)]?.status.state == .running)
        // The same --Format printed this row with one field fewer (`EndTime:||` gave no empty field after "(null)"):
        // it is rejected and counted, not shifted. The agent's own formats use single separators and a last-field name.
        let (odd, oddStats) = try parse("slurm/squeue-Format-pipe_firecrest-allusers.txt", layout)
        #expect(odd.isEmpty && oddStats.malformed == 1)
        let shorter = SlurmLayout(fieldCount: 19, id: 0, state: 10, reason: 11, name: 6)
        let pending = try parse("slurm/squeue-Format-pipe_firecrest-allusers.txt", shorter).0[.slurm(1)]?.status
        #expect(pending == JobStatus(state: .pending, nativeState: "PENDING", reason: "Resources"))
        let (empty, stats) = try parse("slurm/squeue-Format-pipe_firecrest-empty.txt", layout)
        #expect(empty.isEmpty && stats.rows == 0)
    }

    /// slurmrestd documents share `squeue --json`'s shape; job_state is a string in 23.02 and a list in 25.11.
    @Test func squeueJSONAcrossVersions() throws {
        var r: [NativeJobID: JobRecord] = [:]
        var stats = ParseStats()
        try SlurmParser.parseJSON(try BatchFixtures.bytes("slurm/squeue-json-equiv_slurmrestd-25.11-v0.0.44-jobs.txt"), tag: nil,
                                  source: .queue, into: &r, stats: &stats)
        let counts = Dictionary(grouping: r.values, by: \.status.nativeState).mapValues(\.count)
        #expect(counts == ["COMPLETED": 7, "RUNNING": 4, "PENDING": 1, "FAILED": 1, "TIMEOUT": 1, "CANCELLED": 1])
        let cancelled = try #require(r.values.first { $0.status.nativeState == "CANCELLED" })
        #expect(cancelled.status.state == .cancelled && cancelled.status.signal == 15)

        var old: [NativeJobID: JobRecord] = [:]
        try SlurmParser.parseJSON(try BatchFixtures.bytes("slurm/squeue-json-equiv_slurmrestd-23.02-v0.0.39-jobs.txt"), tag: nil,
                                  source: .queue, into: &old, stats: &stats)
        let oldCounts = Dictionary(grouping: old.values, by: \.status.state).mapValues(\.count)
        #expect(oldCounts == [.pending: 26, .running: 3, .done: 1])
        #expect(stats.malformed == 0)
    }

    @Test func sacctJSONRecords() throws {
        for (file, state, exit) in [("failed", PilotState.failed, 1), ("completed", .done, 0), ("timeout", .done, nil), ("pending", .pending, nil),
                                    ("running", .running, nil)] as [(String, PilotState, Int?)] {
            var r: [NativeJobID: JobRecord] = [:]
            var stats = ParseStats()
            try SlurmParser.parseJSON(try BatchFixtures.bytes("slurm/sacct-json-equiv_slurmdbd-25.11-v0.0.44-job-\(file).txt"), tag: nil,
                                      source: .accounting, into: &r, stats: &stats)
            #expect(r.count == 1, "\(file)")
            #expect(r.values.first?.status.state == state, "\(file)")
            if let exit { #expect(r.values.first?.status.exitCode == exit, "\(file)") }
        }
    }

    @Test func squeueJSONErrorDocumentIsAnError() throws {
        var r: [NativeJobID: JobRecord] = [:]
        var stats = ParseStats()
        #expect(throws: BatchError.self) {
            try SlurmParser.parseJSON(try BatchFixtures.bytes("slurm/squeue-json-equiv_slurmrestd-25.11-v0.0.44-job-unfound.txt"),
                                      tag: nil, source: .queue, into: &r, stats: &stats)
        }
    }

    @Test func sbatchOutputs() throws {
        // Plain sbatch (no --parsable) is not an ID: the driver always asks for --parsable.
        #expect(SlurmParser.parseSbatch(try BatchFixtures.text("slurm/sbatch_firecrest.txt")) == nil)
        let reject = HelperOpResult(exitStatus: 1, stdout: try BatchFixtures.bytes("slurm/sbatch-qos-reject_firecrest.txt"),
                                    stderr: try BatchFixtures.bytes("slurm/sbatch-qos-reject_firecrest.stderr.txt"))
        guard case .failed(let e) = SlurmBackend.classifySbatch(reject, target: "t")(1) else {
            Issue.record("a QOS limit is a clean refusal")
            return
        }
        #expect(!e.isPermanent)  // the limit may clear: not the same failure forever
    }
}

@Suite(.enabled(if: BatchFixtures.available, BatchFixtures.skipNote))
struct PBSFixtureTests {
    @Test func openPBSJSONWithHistory() throws {
        var stats = ParseStats()
        let jobs = try PBSParser.parseJSON(try BatchFixtures.bytes("pbs/qstat-F-json-f-x_firecrest-allusers.txt"), stats: &stats)
        let r = PBSParser.records(jobs, tag: nil, source: .queue, stats: &stats)
        #expect(r[id("1004.pbs", .pbs)]?.status == JobStatus(state: .done, nativeState: "F",
                                                          reason: "Job run at Thu Jun 19 at 10:36 on (pbs:ncpus=1) and finished", exitCode: 0))
        #expect(r[id("1006.pbs", .pbs)]?.status.state == .running)
        #expect(r.count == 3 && stats.malformed == 0)
        #expect(jobs.first { $0.id == id("1004.pbs", .pbs) }?.attributes["Resource_List.walltime"] == "00:05:00")
        #expect(PBSParser.parseQsub(try BatchFixtures.text("pbs/qsub_firecrest-openpbs23.txt")) == id("1.pbs", .pbs))
    }

    /// DIRAC's Test_PBSResourceUsage oracle: wrapped continuation lines are joined.
    @Test func torqueFullWithContinuationLines() throws {
        var stats = ParseStats()
        let jobs = PBSParser.parseFull(try BatchFixtures.text("torque/qstat-f_dirac-rrcki.txt"), stats: &stats)
        let job = try #require(jobs.first)
        #expect(jobs.count == 1)
        #expect(job.id == id("55755440.seer.t1.grid.kiae.ru", .pbs))
        #expect(job.attributes["resources_used.walltime"] == "43:22:30")
        #expect(job.attributes["resources_used.cput"] == "43:02:47")
        #expect(job.attributes["Output_Path"]?.hasSuffix("ymfcHKDmABFKDmVYviIm.o55755440") == true)
        #expect(PBSParser.status(of: job)?.state == .running)
    }

    @Test func torqueXMLWithArrays() throws {
        var stats = ParseStats()
        let jobs = try PBSParser.parseTorqueXML(try BatchFixtures.bytes("torque/qstat-x-t_fyrd-stanford.txt"), stats: &stats)
        #expect(jobs.count == 6)
        let r = PBSParser.records(jobs, tag: nil, source: .queue, stats: &stats)
        #expect(r[id("665199.superserver.stanford.edu", .pbs)]?.status.state == .running)
        #expect(r[id("667999.superserver.stanford.edu", .pbs)]?.status.state == .pending)
        #expect(r[.pbs(673175, index: 20, server: "fruster")]?.status.state == .done)
        #expect(r[.pbs(673175, index: 19, server: "fruster")] != nil)
        #expect(r[.pbs(673175, server: "superserver")]?.status.state == .done)  // the array itself, "673175[]"
    }
}

@Suite(.enabled(if: BatchFixtures.available, BatchFixtures.skipNote))
struct SGEFixtureTests {
    @Test func qstatXMLRunningPendingHeldAndArrays() throws {
        var stats = ParseStats()
        let r = try SGEParser.parseQstatXML(try BatchFixtures.bytes("sge/qstat-r-xml_ood.txt"), tag: nil, stats: &stats)
        #expect(r[.sge(88)]?.status.state == .running)
        #expect(r[.sge(1045)]?.status.state == .pending)
        #expect(r[.sge(44)]?.status == JobStatus(state: .held, nativeState: "hqw"))
        // A pending array's range 1-10:2 expands to its tasks.
        #expect(Set(r.keys.filter { $0.job == 1046 }) == Set([1, 3, 5, 7, 9].map { NativeJobID.sge(1046, task: $0) }))
        #expect(stats.malformed == 0)
    }

    /// ood_core reads this reply as "completed"; it is not even well-formed XML, and it is never read as a state here.
    @Test func unknownJobReplyIsNotCompleted() throws {
        var stats = ParseStats()
        #expect(throws: BatchError.self) {
            _ = try SGEParser.parseQstatXML(try BatchFixtures.bytes("sge/qstat-r-xml-j_ood-missing.txt"), tag: nil, stats: &stats)
        }
    }
}

@Suite(.enabled(if: BatchFixtures.available, BatchFixtures.skipNote))
struct HTCondorFixtureTests {
    @Test func condorQJSON() throws {
        var stats = ParseStats()
        let r = HTCondorParser.records(try HTCondorParser.parseJSON(try BatchFixtures.bytes("htcondor/condor_q-json-attributes_kong.txt")),
                                       tag: nil, source: .queue, stats: &stats)
        let expected: [UInt64: PilotState] = [5184659: .pending, 5184660: .pending, 5184661: .running, 5184662: .cancelled,
                                              5184663: .done, 5184664: .held, 5184665: .completing, 5184666: .unknown]
        #expect(r.count == 8)
        for (cluster, state) in expected { #expect(r[.htcondor(cluster, 0)]?.status.state == state, "\(cluster)") }
    }

    /// kong's oracle for history: 4 + ExitCode 0 → completed, 4 + ExitCode 1 → failed. Held stays held here (kong and
    /// DIRAC call it failed; LESSONS §16: held is not terminal).
    @Test func condorHistoryJSON() throws {
        var stats = ParseStats()
        let r = HTCondorParser.records(try HTCondorParser.parseJSON(try BatchFixtures.bytes("htcondor/condor_history-json-userlog_kong.txt")),
                                       tag: nil, source: .accounting, stats: &stats)
        #expect(r[.htcondor(5184667, 0)]?.status.state == .done)
        #expect(r[.htcondor(5184668, 0)]?.status == JobStatus(state: .failed, nativeState: "4", exitCode: 1))
        #expect(r[.htcondor(5184664, 0)]?.status.state == .held)
        #expect(r.count == 10)
    }

    /// DIRAC's test_getJobStatusBatchSystem data: 123.0 done (history), 123.1 removed, 123.2 held with code 4, 333.3 absent.
    @Test func autoformatRows() throws {
        var stats = ParseStats()
        let attrs = ["JobStatus", "HoldReasonCode", "HoldReasonSubCode", "HoldReason"]
        let q = HTCondorParser.parseAutoformat(try BatchFixtures.text("htcondor/condor_q-af-j_dirac-status.txt"), attributes: attrs, stats: &stats)
        let h = HTCondorParser.parseAutoformat(try BatchFixtures.text("htcondor/condor_history-af-j_dirac-history.txt"), attributes: attrs,
                                               stats: &stats)
        var r = HTCondorParser.records(q, tag: nil, source: .queue, stats: &stats)
        r.merge(HTCondorParser.records(h, tag: nil, source: .accounting, stats: &stats)) { a, _ in a }
        #expect(r[.htcondor(123, 0)]?.status.state == .done)
        #expect(r[.htcondor(123, 1)]?.status.state == .cancelled)
        #expect(r[.htcondor(123, 2)]?.status.state == .held)
        #expect(r[.htcondor(123, 2)]?.status.reason == "code 4")
        #expect(r[.htcondor(333, 3)] == nil)
        #expect(stats.malformed == 0)
    }

    /// A live APF factory's condor_q -long -xml (BNL, 2013): 40 pilots, 24 running and 16 idle.
    @Test func classAdXMLFromAnAPFFactory() throws {
        let ads = try HTCondorParser.parseXML(try BatchFixtures.bytes("htcondor/condor_q-long-xml_apf-bnl-factory.txt"))
        #expect(ads.count == 40)
        let states = ads.compactMap { HTCondorParser.status(of: $0)?.state }
        #expect(states.filter { $0 == .running }.count == 24)
        #expect(states.filter { $0 == .pending }.count == 16)
        #expect(Set(ads.compactMap { $0["MATCH_APF_QUEUE"]?.string }).count == 5)
    }

    @Test func submitTerse() {
        let parsed = HTCondorParser.parseSubmit("123.0 - 123.49\n")
        #expect(parsed?.cluster == 123 && parsed?.procs == 0...49)
        #expect(HTCondorParser.parseSubmit("Submitting job(s).\n1 job(s) submitted to cluster 7.\n") == nil)
    }
}
