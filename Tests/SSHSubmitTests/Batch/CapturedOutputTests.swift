import Foundation
import Testing
import TestSupport

@testable import SSHSubmit

/// Parsers on outputs captured from this project's own testbed (testbed/captured/, see INDEX.md in each folder):
/// real SLURM 22.05.8, real Son of Grid Engine 8.1.9, and the Torque wrappers of slurm-wlm-torque 22.05.8.
enum Captured {
    static let slurm = "\(BatchFixtures.capturedDirectory)/slurm-22.05.8"
    static let sge = "\(BatchFixtures.capturedDirectory)/sge-8.1.9"
    static let torque = "\(BatchFixtures.capturedDirectory)/torque-wrappers-slurm-22.05.8"
    static func present(_ dir: String) -> Bool { FileManager.default.fileExists(atPath: "\(dir)/INDEX.md") }
    static func bytes(_ dir: String, _ file: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(file)"))) }
    static func text(_ dir: String, _ file: String) throws -> String { String(decoding: try bytes(dir, file), as: UTF8.self) }
}

@Suite(.enabled(if: Captured.present(Captured.slurm), "testbed/captured/slurm-22.05.8 absent"))
struct CapturedSlurmTests {
    func parse(_ file: String, _ layout: SlurmLayout) throws -> ([NativeJobID: JobRecord], ParseStats) {
        var r: [NativeJobID: JobRecord] = [:]
        var s = ParseStats()
        SlurmParser.parse(try Captured.bytes(Captured.slurm, file), layout: layout, tag: nil, source: .queue, into: &r, stats: &s)
        return (r, s)
    }

    @Test func squeueListingWithArrayTasks() throws {
        let (r, s) = try parse("squeue-pipe.txt", SlurmLayout(fieldCount: 9, id: 0, state: 4, reason: 5, name: 3))
        #expect(s.malformed == 0 && s.rows == r.count)
        #expect(r[.slurm(1059)]?.status.state == .done)
        #expect(r[.slurm(1060)]?.status == JobStatus(state: .failed, nativeState: "FAILED", reason: "NonZeroExitCode"))
        #expect(r[.slurm(1064, task: 7)]?.status == JobStatus(state: .pending, nativeState: "PENDING", reason: "Resources"))
    }

    @Test func foldedPendingArrayExpands() throws {
        let (r, s) = try parse("squeue-pipe-folded.txt", SlurmLayout(fieldCount: 3, id: 0, state: 1, reason: 2))
        #expect(s.malformed == 0)
        #expect((7...20).allSatisfy { r[.slurm(1064, task: Int64($0))]?.status.state == .pending })
        #expect(r[.slurm(1062)]?.status.reason == "JobHeldUser")
        let (semi, _) = try parse("squeue-name-semicolon.txt", SlurmLayout(separator: UInt8(ascii: ";"), fieldCount: 3, id: 0, state: 1, reason: 2))
        #expect(semi.count == 20 && semi[.slurm(1064, task: 7)]?.status.state == .pending && semi[.slurm(1064, task: 1)]?.status.state == .running)
    }

    /// The agent's accounting query uses JobID (array tasks as `1064_N`), not JobIDRaw (their own raw numbers).
    @Test func sacctStatesExitCodesAndArrayTasks() throws {
        let (r, s) = try parse("sacct-X-n-P-wide.txt", SlurmLayout(fieldCount: 13, id: 1, state: 6, reason: 8, exitCode: 7, name: 2))
        #expect(s.malformed == 0)
        #expect(r[.slurm(1059)]?.status == JobStatus(state: .done, nativeState: "COMPLETED", exitCode: 0))
        #expect(r[.slurm(1060)]?.status == JobStatus(state: .failed, nativeState: "FAILED", exitCode: 3))
        #expect(r[.slurm(1061)]?.status.state == .cancelled)  // "CANCELLED by 1001"
        #expect(r[.slurm(1063)]?.status.ending == .timeout)
        #expect(r[.slurm(1064, task: 1)]?.status.state == .cancelled)
        #expect(r[.slurm(1065)] == nil)  // the task's raw ID is not an ID the agent ever holds
        let (steps, _) = try parse("sacct-n-P-steps.txt", SlurmLayout(fieldCount: 4, id: 1, state: 2, exitCode: 3))
        #expect(steps.count == 2 && steps[.slurm(1060)]?.status.exitCode == 3 && steps[.slurm(1061)]?.status.state == .cancelled)
        #expect(try parse("sacct-unknown-id.txt", .sacct).0.isEmpty)
    }

    @Test func jsonOutputs() throws {
        var r: [NativeJobID: JobRecord] = [:]
        var s = ParseStats()
        try SlurmParser.parseJSON(try Captured.bytes(Captured.slurm, "squeue-json.txt"), tag: nil, source: .queue, into: &r, stats: &s)
        #expect(!r.isEmpty && s.malformed == 0)
        #expect(r.values.contains { $0.id.task != nil }, "array tasks keep their task")
        var a: [NativeJobID: JobRecord] = [:]
        try SlurmParser.parseJSON(try Captured.bytes(Captured.slurm, "sacct-json.txt"), tag: nil, source: .accounting, into: &a, stats: &s)
        #expect(a[.slurm(1059)]?.status.state == .done && a[.slurm(1060)]?.status.state == .failed)
        // 22.05's JSON reports the failed job's exit code as 0 ("SUCCESS") where `sacct -P` says 3:0: one more reason
        // the driver reads `sacct -P`.
        #expect(a[.slurm(1060)]?.status.exitCode == 0)
    }

    @Test func submitAndCancelAnswers() throws {
        #expect(SlurmParser.parseSbatch(try Captured.text(Captured.slurm, "sbatch-parsable-array.txt"))?.job == 1064)
        for (file, rc) in [("sbatch-bad-partition", Int32(1)), ("sbatch-bad-option", 255)] {
            let r = HelperOpResult(exitStatus: rc, stdout: try Captured.bytes(Captured.slurm, "\(file).txt"),
                                   stderr: try Captured.bytes(Captured.slurm, "\(file).stderr.txt"))
            guard case .failed(let e) = SlurmBackend.classifySbatch(r, target: "t")(1) else { Issue.record("\(file)"); continue }
            #expect(e.isPermanent, "\(file)")
        }
        var report = CancelReport()
        SlurmBackend.cancelReader.apply(HelperOpResult(exitStatus: 0, stdout: [], stderr: try Captured.bytes(Captured.slurm, "scancel-unknown-id-verbose.stderr.txt")),
                                        ids: [.slurm(999999)], target: "t", into: &report)
        #expect(report.alreadyGone == [.slurm(999999)])
    }
}

@Suite(.enabled(if: Captured.present(Captured.sge), "testbed/captured/sge-8.1.9 absent"))
struct CapturedSGETests {
    @Test func qstatXMLAllStates() throws {
        var s = ParseStats()
        let r = try SGEParser.parseQstatXML(try Captured.bytes(Captured.sge, "qstat-xml.txt"), tag: nil, stats: &s)
        #expect(s.malformed == 0)
        #expect(r[.sge(19)]?.status.state == .running)
        #expect(r[.sge(16)]?.status == JobStatus(state: .failed, nativeState: "Eqw"))
        #expect(r[.sge(20)]?.status.state == .held)
        #expect((1...7).allSatisfy { r[.sge(21, task: Int64($0))]?.status.state == .running })
        #expect((8...20).allSatisfy { r[.sge(21, task: Int64($0))]?.status.state == .pending })
        #expect(try SGEParser.parseQstatXML(try Captured.bytes(Captured.sge, "qstat-xml-empty.txt"), tag: nil, stats: &s).isEmpty)
    }

    @Test func qacctRecords() throws {
        var s = ParseStats()
        #expect(SGEParser.parseQacct(try Captured.text(Captured.sge, "qacct-j-done.txt"), tag: nil, stats: &s)[.sge(17)]?.status.state == .done)
        let fail = SGEParser.parseQacct(try Captured.text(Captured.sge, "qacct-j-fail.txt"), tag: nil, stats: &s)[.sge(18)]?.status
        #expect(fail?.state == .failed && fail?.exitCode == 3)
        let deleted = SGEParser.parseQacct(try Captured.text(Captured.sge, "qacct-j-deleted.txt"), tag: nil, stats: &s)[.sge(19)]?.status
        #expect(deleted?.state == .failed && deleted?.exitCode == 137 && deleted?.reason?.hasPrefix("100") == true)
        let array = SGEParser.parseQacct(try Captured.text(Captured.sge, "qacct-j-array.txt"), tag: nil, stats: &s)
        #expect(!array.isEmpty && array.keys.allSatisfy { $0.job == 21 && $0.task != nil })
        #expect(SGEParser.parseQacct(try Captured.text(Captured.sge, "qacct-j-unknown.txt"), tag: nil, stats: &s).isEmpty)
        #expect(s.malformed == 0)
    }

    @Test func submitAndCancelAnswers() throws {
        let array = SGEParser.parseQsub(try Captured.text(Captured.sge, "qsub-terse-array.txt"))
        #expect(array?.job == 21 && array?.tasks == (1...20).map { Int64($0) })
        #expect(SGEParser.parseQsub(try Captured.text(Captured.sge, "qsub-terse.txt"))?.tasks == nil)
        let refused = HelperOpResult(exitStatus: 1, stdout: [], stderr: try Captured.bytes(Captured.sge, "qsub-no-such-queue.stderr.txt"))
        guard case .failed(let e) = SGEBackend.classifyFailure(refused, target: "t"), e.isPermanent else {
            Issue.record("an unknown queue is a permanent refusal")
            return
        }
        for (file, job) in [("qdel-unknown.txt", UInt64(999999)), ("qdel-again.txt", 19)] {
            var report = CancelReport()
            SGEBackend.cancelReader.apply(HelperOpResult(exitStatus: 1, stdout: try Captured.bytes(Captured.sge, file), stderr: []),
                                          ids: [.sge(job)], target: "t", into: &report)
            #expect(report.alreadyGone == [.sge(job)], "\(file)")
        }
    }
}

@Suite(.enabled(if: Captured.present(Captured.torque), "testbed/captured/torque-wrappers-slurm-22.05.8 absent"))
struct CapturedTorqueWrapperTests {
    func job(_ file: String) throws -> PBSParser.Job? {
        var s = ParseStats()
        return PBSParser.parseFull(try Captured.text(Captured.torque, file), stats: &s).first
    }

    @Test func qstatFullStates() throws {
        #expect(try job("qstat-f-running.txt").flatMap(PBSParser.status)?.state == .running)
        #expect(try job("qstat-f-held.txt").flatMap(PBSParser.status)?.state == .pending)  // a held job shows Q
        let done = try job("qstat-f-done.txt").flatMap(PBSParser.status)
        #expect(done?.state == .done && done?.exitCode == nil)  // exit 3, but the wrappers print no exit_status
        #expect(try job("qstat-f-cancelled.txt").flatMap(PBSParser.status)?.nativeState == "C")
        #expect(try job("qstat-f-running.txt")?.id == .pbs(1073, server: nil))
        #expect(try job("qstat-f-unknown.txt") == nil)
        var s = ParseStats()
        #expect(PBSParser.parseFull(try Captured.text(Captured.torque, "qstat-f-all.txt"), stats: &s).count > 1 && s.malformed == 0)
        #expect(PBSParser.parseQsub(try Captured.text(Captured.torque, "qsub.txt")) == .pbs(1073, server: nil))
    }
}
