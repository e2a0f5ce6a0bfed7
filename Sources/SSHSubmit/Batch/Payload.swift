import Foundation

/// Per-queue batch options (LESSONS §15): a typed core plus raw options for what the core does not cover.
public struct BatchOptions: Sendable, Equatable {
    /// Wall-clock limit (SLURM `--time`, PBS `-l walltime`, SGE `-l h_rt`, HTCondor a periodic remove).
    public var walltime: Duration?
    /// Cores per pilot (SLURM `--cpus-per-task`, PBS `-l nodes=1:ppn=`/`ncpus`, SGE `-pe <pe> N`, HTCondor
    /// `request_cpus`).
    public var cores: Int?
    /// Memory per pilot in MiB (SLURM `--mem`, PBS `-l mem=`, SGE `-l h_vmem=` per slot, HTCondor `request_memory`).
    public var memoryMB: Int?
    /// SLURM partition, PBS or SGE queue. Not used by HTCondor.
    public var partition: String?
    /// SLURM `--account`, PBS `-A`, SGE `-A`, HTCondor `accounting_group`.
    public var account: String?
    /// SGE parallel environment for `cores` > 1 (`-pe <name> <cores>`).
    public var sgeParallelEnvironment: String?
    /// Raw options, passed verbatim and in order after ours: one argument per entry for SLURM (`--constraint=avx2`,
    /// values attached), PBS and SGE (`-l`, `select=1`: a value follows its option), or one `name = value`
    /// submit-description line for HTCondor.
    /// Options the driver sets itself (job name, array, output files) are refused.
    public var extra: [String]

    public init(walltime: Duration? = nil, cores: Int? = nil, memoryMB: Int? = nil, partition: String? = nil,
                account: String? = nil, sgeParallelEnvironment: String? = nil, extra: [String] = []) {
        self.walltime = walltime
        self.cores = cores
        self.memoryMB = memoryMB
        self.partition = partition
        self.account = account
        self.sgeParallelEnvironment = sgeParallelEnvironment
        self.extra = extra
    }

    public var walltimeSeconds: Int? { walltime.map { Int($0.components.seconds) } }

    /// Checks every field for `system`; the message names the field and the fix.
    public func validate(for system: BatchSystem) throws(BatchError) {
        if let w = walltimeSeconds, w < 60 {
            throw BatchError(.invalidOption, "walltime must be at least 1 minute (got \(w) s)", permanent: true)
        }
        if let c = cores, !(1...4096).contains(c) { throw BatchError(.invalidOption, "cores must be 1-4096 (got \(c))", permanent: true) }
        if let m = memoryMB, !(1...(64 << 20)).contains(m) { throw BatchError(.invalidOption, "memory must be 1 MiB-64 TiB (got \(m) MiB)", permanent: true) }
        for (name, value) in [("partition", partition), ("account", account), ("sge parallel environment", sgeParallelEnvironment)] {
            if let value, !Self.isName(value) {
                throw BatchError(.invalidOption, "\(name) '\(value)' may contain only letters, digits and . _ - @ +", permanent: true)
            }
        }
        if system == .sge, (cores ?? 1) > 1, sgeParallelEnvironment == nil {
            throw BatchError(.invalidOption, "SGE needs a parallel environment (sgeParallelEnvironment) for cores > 1", permanent: true)
        }
        var previousWasOption = false
        for option in extra {
            defer { previousWasOption = option.hasPrefix("-") && !option.contains("=") }
            guard !option.isEmpty, !option.utf8.contains(where: { $0 == 10 || $0 == 13 || $0 == 0 }) else {
                throw BatchError(.invalidOption, "extra option \(option.debugDescription) is empty or contains a line break", permanent: true)
            }
            if system == .htcondor {
                guard let eq = option.firstIndex(of: "=") else {
                    throw BatchError(.invalidOption, "HTCondor extra option '\(option)' must be a 'name = value' submit line", permanent: true)
                }
                let key = option[..<eq].trimmingSpaces.lowercased()
                guard !key.isEmpty, key.utf8.allSatisfy({ Self.isKeyByte($0) }) else {
                    throw BatchError(.invalidOption, "HTCondor extra option '\(option)' has an invalid name", permanent: true)
                }
                if Self.htcondorReserved.contains(key) || key.hasPrefix("+apf") || key.hasPrefix("my.apf") {
                    throw BatchError(.invalidOption, "HTCondor extra option '\(key)' is set by the agent and cannot be overridden", permanent: true)
                }
            } else {
                // SLURM values must be attached (`--begin=now+1hour`): a bare word would become sbatch's script name.
                // PBS and SGE options take their value as the next entry (`-a`, `202701010000`).
                if !option.hasPrefix("-") {
                    guard system != .slurm, previousWasOption else {
                        throw BatchError(.invalidOption, system == .slurm
                                         ? "extra option '\(option)' must start with '-' (attach values: --name=value)"
                                         : "extra option '\(option)' must be an option starting with '-' or the value right after one",
                                         permanent: true)
                    }
                    continue
                }
                let reserved = system == .slurm ? Self.slurmReserved : system == .pbs ? Self.pbsReserved : Self.sgeReserved
                let flag = option.split(separator: "=", maxSplits: 1)[0]
                if reserved.contains(String(flag)) {
                    throw BatchError(.invalidOption, "extra option '\(flag)' is set by the agent and cannot be overridden", permanent: true)
                }
            }
        }
    }

    static let slurmReserved: Set<String> = ["-J", "--job-name", "-a", "--array", "--parsable", "-o", "--output", "-e", "--error",
                                             "-D", "--chdir", "--wrap", "-M", "--clusters"]
    static let pbsReserved: Set<String> = ["-N", "-o", "-e", "-j", "-v", "-V", "-t", "-J", "-S", "-d"]
    static let sgeReserved: Set<String> = ["-N", "-o", "-e", "-j", "-t", "-terse", "-v", "-V", "-b", "-S", "-cwd", "-wd", "-sync"]
    static let htcondorReserved: Set<String> = ["executable", "arguments", "environment", "queue", "output", "error", "log",
                                                "universe", "transfer_executable", "getenv"]

    static func isName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 128 && s.utf8.allSatisfy {
            ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122)
                || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "@")
                || $0 == UInt8(ascii: "+")
        }
    }

    static func isKeyByte(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c >= 97 && c <= 122) || c == UInt8(ascii: "_") || c == UInt8(ascii: ".") || c == UInt8(ascii: "+")
    }
}

extension Substring {
    var trimmingSpaces: String {
        var s = self
        while s.first == " " || s.first == "\t" { s = s.dropFirst() }
        while s.last == " " || s.last == "\t" { s = s.dropLast() }
        return String(s)
    }
}

/// A per-queue pilot wrapper: the executable is staged to the target (checksum-named), then run by each pilot with
/// `arguments` and `environment`, which are templates (see `PilotTemplate`).
public struct PilotWrapper: Sendable {
    /// File name stem on the target (`pilot-wrapper` → `pilot-wrapper-<sha16>`).
    public var name: String
    public var content: [UInt8]
    public var arguments: [String]
    public var environment: [(String, String)]

    public init(name: String, content: [UInt8], arguments: [String] = [], environment: [(String, String)] = []) {
        self.name = name
        self.content = content
        self.arguments = arguments
        self.environment = environment
    }
}

/// A glidein: each pilot starts an HTCondor `condor_master` + `startd` from an HTCondor installation on the worker
/// node, joins `collector`, and exits after `idleTimeout` without a claim. The agent generates and stages the start
/// script and the condor configuration; it does not ship HTCondor itself.
public struct GlideinPayload: Sendable {
    /// `host` or `host:port` of the pool's collector.
    public var collector: String
    /// The HTCondor installation on the worker (holds `sbin/condor_master`), e.g. on CVMFS.
    public var condorLocation: String
    public var idleTimeout: Duration
    /// The startd stops accepting new claims after this long (`STARTD_...` via `START`), then drains and exits.
    public var maxLifetime: Duration?
    /// A file **on the worker** holding an IDTOKEN for the collector (never the token itself).
    public var tokenFile: String?
    /// Extra configuration, `NAME = value` lines (names validated).
    public var extraConfig: [(String, String)]

    public init(collector: String, condorLocation: String, idleTimeout: Duration, maxLifetime: Duration? = nil,
                tokenFile: String? = nil, extraConfig: [(String, String)] = []) {
        self.collector = collector
        self.condorLocation = condorLocation
        self.idleTimeout = idleTimeout
        self.maxLifetime = maxLifetime
        self.tokenFile = tokenFile
        self.extraConfig = extraConfig
    }
}

/// What a pilot runs.
public enum Payload: Sendable {
    case wrapper(PilotWrapper)
    case glidein(GlideinPayload)
}

/// One APF queue's submit settings for a target.
public struct QueueSpec: Sendable {
    /// The APF queue name (exported as `APF_QUEUE`).
    public var name: String
    /// The factory's ID (exported as `APF_FACTORY`).
    public var factory: String
    /// The client-ID tag: listings are narrowed to it.
    public var tag: FactoryTag
    public var payload: Payload
    public var options: BatchOptions
    /// Remote directory for staged files and pilot logs, relative to the home directory or absolute.
    public var workDirectory: String

    public init(name: String, factory: String, tag: FactoryTag, payload: Payload, options: BatchOptions = BatchOptions(),
                workDirectory: String = ".apf-agent/work") {
        self.name = name
        self.factory = factory
        self.tag = tag
        self.payload = payload
        self.options = options
        self.workDirectory = workDirectory
    }
}

/// Templates for wrapper arguments and environment values: `{name}` is a placeholder, `{{` and `}}` are literal
/// braces. Unknown placeholders and unbalanced braces are errors at `prepare` time, never a literal `{x}` in a pilot.
///
/// | Placeholder | Value |
/// |---|---|
/// | `{client_id}` | the pilot's client ID (also `$APF_CLIENT_ID`) |
/// | `{queue}` | the APF queue name |
/// | `{factory}` | the factory ID |
/// | `{workdir}` | the queue's absolute work directory on the target |
/// | `{cores}` | cores per pilot (1 when unset) |
/// | `{walltime_seconds}` | the walltime in seconds (0 when unset) |
public enum PilotTemplate {
    public static let placeholders: [String: String] = [
        "client_id": "APF_CLIENT_ID", "queue": "APF_QUEUE", "factory": "APF_FACTORY", "workdir": "APF_WORKDIR",
        "cores": "APF_CORES", "walltime_seconds": "APF_WALLTIME_SECONDS",
    ]

    enum Piece: Equatable {
        case literal(String)
        case variable(String)  // an environment variable set by the launcher
    }

    static func parse(_ template: String) throws(BatchError) -> [Piece] {
        var pieces: [Piece] = []
        var literal = ""
        var i = template.startIndex
        while i < template.endIndex {
            let c = template[i]
            let next = template.index(after: i)
            if c == "{", next < template.endIndex, template[next] == "{" {
                literal.append("{"); i = template.index(after: next); continue
            }
            if c == "}", next < template.endIndex, template[next] == "}" {
                literal.append("}"); i = template.index(after: next); continue
            }
            if c == "}" { throw BatchError(.template, "unbalanced '}' in \(template.debugDescription); write '}}' for a literal brace", permanent: true) }
            if c == "{" {
                guard let close = template[next...].firstIndex(of: "}") else {
                    throw BatchError(.template, "unclosed '{' in \(template.debugDescription)", permanent: true)
                }
                let name = String(template[next..<close])
                guard let variable = placeholders[name] else {
                    throw BatchError(.template, "unknown placeholder {\(name)} in \(template.debugDescription); known: "
                                     + placeholders.keys.sorted().map { "{\($0)}" }.joined(separator: ", "), permanent: true)
                }
                if !literal.isEmpty { pieces.append(.literal(literal)); literal = "" }
                pieces.append(.variable(variable))
                i = template.index(after: close)
                continue
            }
            literal.append(c)
            i = next
        }
        if !literal.isEmpty || pieces.isEmpty { pieces.append(.literal(literal)) }
        return pieces
    }

    /// One POSIX `sh` word: literals single-quoted, placeholders as `"${VAR}"`.
    static func shellWord(_ template: String) throws(BatchError) -> String {
        try parse(template).map { piece -> String in
            switch piece {
            case .literal(let s): return "'" + s.replacingAll("'", with: "'\\''") + "'"
            case .variable(let v): return "\"${\(v)}\""
            }
        }.joined()
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = self[...]
        while let r = rest.range(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        out += rest
        return out
    }

    /// Single-quoted for POSIX sh, always (also for safe strings, for uniform generated scripts).
    var shQuoted: String { "'" + replacingAll("'", with: "'\\''") + "'" }
}
