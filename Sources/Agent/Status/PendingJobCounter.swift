import Foundation
import SSHSubmit

/// Counts a batch system's pending jobs as demand (`wmsstatusplugin = Batch`, and APF's `Condor` pattern where one
/// queue's idle pilots are another's work), with one machine-readable listing per poll: one ID per line, counted,
/// never parsed from human output.
///
/// | System | Command |
/// |---|---|
/// | SLURM | `squeue -h -r -t PENDING [--partition=P] [--name=C] -o %i` |
/// | SGE | `qstat -u '*' -s p [-q Q] -xml` (one `<JB_job_number>` per pending job or array) |
/// | HTCondor | `condor_q -allusers [-pool C] [-name S] -constraint 'JobStatus == 1 && (C)' -af ClusterId` |
///
/// PBS has no machine-readable pending listing that the Torque wrappers and PBS Pro share; it is refused.
struct PendingJobCounter: PendingJobCounting {
    let runner: any SSHSubmit.CommandRunner
    let system: BatchSystem
    var pool: CondorPool?

    static func condorPool(_ pool: CondorPool) -> PendingJobCounter {
        PendingJobCounter(runner: LocalCommandRunner(), system: .htcondor, pool: pool)
    }

    func argv(_ s: PendingJobSelector) throws(StatusError) -> [String] {
        switch system {
        case .slurm:
            var a = ["squeue", "-h", "-r", "-t", "PENDING", "-o", "%i"]
            if let p = s.partition { a.append("--partition=\(p)") }
            if let c = s.constraint { a.append("--name=\(c)") }
            return a
        case .sge:
            var a = ["qstat", "-u", "*", "-s", "p", "-xml"]
            if let p = s.partition { a += ["-q", p] }
            return a
        case .htcondor:
            var a = ["condor_q", "-allusers"]
            if let pool {
                a += ["-pool", "\(pool.collectorHost):\(pool.collectorPort)", "-name", pool.scheddHost]
            }
            a += ["-constraint", "JobStatus == 1" + (s.constraint.map { " && (\($0))" } ?? ""), "-af", "ClusterId"]
            return a
        case .pbs:
            throw StatusError(.command, "pending-job demand is not supported for PBS targets", retryable: false)
        }
    }

    func pendingJobs(_ selector: PendingJobSelector) async throws(StatusError) -> Int {
        let argv = try argv(selector)
        let r: ExecResult
        do {
            r = try await runner.run(RemoteCommand(argv, timeout: .seconds(60)))
        } catch {
            throw StatusError(.transport, "\(argv[0]) on \(runner.target): \(error.message)", retryable: true)
        }
        guard r.exitStatus == 0 else {
            throw StatusError(.command, "\(argv[0]) exited \(r.exitStatus): \(r.stderrText.prefix(200))", retryable: true)
        }
        let text = r.stdoutText
        if system == .sge { return text.components(separatedBy: "<JB_job_number>").count - 1 }
        return text.split(separator: "\n").filter { !$0.allSatisfy(\.isWhitespace) }.count
    }
}
