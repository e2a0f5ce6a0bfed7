public import AuthProfiles
public import Logging
import Foundation
import SSHSubmit

/// `target check`: resolve the target (tenancy), connect and authenticate with its profile, and find the batch
/// system's commands and their versions over the pooled SSH connection. The pool stays open (it is shared); the
/// owner of `resolver.pools` shuts it down.
public struct TargetChecker: Sendable {
    public let resolver: TargetResolver
    public let logger: Logger

    public init(resolver: TargetResolver, logger: Logger) {
        self.resolver = resolver
        self.logger = logger
    }

    /// Every command probed, so the report shows what else is installed.
    static let probed = ["sbatch", "squeue", "sacct", "scancel", "sinfo", "qsub", "qstat", "qdel", "qacct",
                         "condor_submit", "condor_q", "condor_rm", "condor_history", "condor_version"]

    static func required(_ batch: TargetBatchSystem) -> [String] {
        switch batch {
        case .slurm: ["sbatch", "squeue", "scancel"]
        case .pbs, .sge: ["qsub", "qstat", "qdel"]
        case .condor: ["condor_submit", "condor_q", "condor_rm"]
        case .local: []
        }
    }

    static func versionCommands(_ found: [String: String]) -> [(String, [String])] {
        var out: [(String, [String])] = []
        if found["sbatch"] != nil { out.append(("slurm", ["sbatch", "--version"])) }
        if found["qstat"] != nil {
            // PBS Pro/Torque print a version with --version; SGE prints its version as the first line of -help.
            out.append(("qstat", found["qacct"] != nil ? ["qstat", "-help"] : ["qstat", "--version"]))
        }
        if found["condor_version"] != nil { out.append(("condor", ["condor_version"])) }
        return out
    }

    /// Parses `command -v a b c` output: one path (or builtin name) per found command.
    static func parseCommandV(_ stdout: String, probed: [String]) -> [String: String] {
        var found: [String: String] = [:]
        for line in stdout.split(separator: "\n") {
            let path = line.trimmingCharacters(in: .whitespaces)
            let base = (path as NSString).lastPathComponent
            if probed.contains(base) { found[base] = path }
        }
        return found
    }

    public func check(target name: String) async throws(AuthError) -> CheckReport {
        let target = try resolver.store.target(name)
        var report = CheckReport(subject: .target, name: name, tenant: target.tenant, kind: target.batch.rawValue)
        if target.batch == .local, target.host == nil {
            checkLocal(target, into: &report)
            return report
        }
        let pool: SSHPool
        do throws(AuthError) {
            pool = try resolver.pool(target: name)
            report.pass("profile", "profile '\(target.profile ?? "?")' of tenant '\(target.tenant)'"
                            + (target.jump.map { ", via jump target '\($0)'" } ?? ""))
        } catch {
            report.fail("profile", error.message)
            return report
        }
        do throws(SSHError) {
            let r = try await pool.exec(RemoteCommand(["uname", "-n"], timeout: .seconds(30)))
            try r.check("uname -n")
            report.pass("login", "authenticated to \(target.address); remote host name "
                            + r.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines))
        } catch {
            report.fail("login", error.description)
            return report
        }
        var found: [String: String] = [:]
        do throws(SSHError) {
            // `command -v` exits non-zero when any is missing; its output lists the ones found.
            let r = try await pool.exec(RemoteCommand(["command", "-v"] + Self.probed, timeout: .seconds(30)))
            found = Self.parseCommandV(r.stdoutText, probed: Self.probed)
        } catch {
            report.fail("batch commands", error.description)
            return report
        }
        var versions: [String: String] = [:]
        for (tool, argv) in Self.versionCommands(found) {
            if let r = try? await pool.exec(RemoteCommand(argv, timeout: .seconds(30))) {
                let text = (r.stdoutText + "\n" + r.stderrText).split(separator: "\n")
                    .map { $0.trimmingCharacters(in: .whitespaces) }.first { !$0.isEmpty } ?? ""
                versions[tool] = String(text.prefix(120))
            }
        }
        let missing = Self.required(target.batch).filter { found[$0] == nil }
        report.batch = BatchProbe(found: found, missing: missing, versions: versions)
        let list = found.keys.sorted().joined(separator: " ")
        if missing.isEmpty {
            report.pass("batch commands", "\(target.batch.rawValue): found \(list.isEmpty ? "nothing" : list)"
                            + (versions.isEmpty ? "" : "; " + versions.sorted { $0.key < $1.key }
                                .map { "\($0.key): \($0.value)" }.joined(separator: "; ")))
        } else {
            report.fail("batch commands", "\(target.batch.rawValue) needs \(missing.joined(separator: ", ")), not found "
                            + "in the login PATH of \(target.address) (found: \(list.isEmpty ? "none" : list)). Fix: "
                            + "install the \(target.batch.rawValue) client tools there or add them to PATH for "
                            + "non-interactive logins")
        }
        return report
    }

    func checkLocal(_ target: Target, into report: inout CheckReport) {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        var found: [String: String] = [:]
        for cmd in Self.probed {
            for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/\(cmd)") {
                found[cmd] = "\(dir)/\(cmd)"
                break
            }
        }
        report.batch = BatchProbe(found: found, missing: [], versions: [:])
        report.pass("batch commands", "local: found \(found.keys.sorted().joined(separator: " "))")
    }
}
