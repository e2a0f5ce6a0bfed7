/// The files the drivers generate: the per-queue launcher, the per-batch array script and the glidein files.
/// Everything variable is single-quoted for `sh`; template placeholders become `"${APF_…}"` expansions.
enum Scripts {
    /// The per-queue launcher, staged checksum-named: exports `APF_*` and the queue's environment, then execs the
    /// wrapper with its arguments. It needs `APF_CLIENT_ID` in its environment (an array script, `qsub -v` or the
    /// HTCondor `environment` sets it).
    static func launcher(queue: QueueSpec, payloadCommand: [String], workDirectory: String,
                         environment: [(String, String)], arguments: [String]) throws(BatchError) -> [UInt8] {
        for bad in [queue.name, queue.factory] where bad.isEmpty || bad.utf8.contains(where: { $0 < 32 }) {
            throw BatchError(.invalidOption, "queue and factory names must be non-empty without control characters: \(bad.debugDescription)",
                             permanent: true)
        }
        var lines = [
            "#!/bin/sh",
            "# apf-agent pilot launcher for queue \(queue.name.shQuoted) (factory \(queue.factory.shQuoted)); generated, do not edit.",
            ": \"${APF_CLIENT_ID:?apf-agent: APF_CLIENT_ID is not set}\"",
            "APF_QUEUE=\(queue.name.shQuoted)",
            "APF_FACTORY=\(queue.factory.shQuoted)",
            "APF_WORKDIR=\(workDirectory.shQuoted)",
            "APF_CORES=\(String(queue.options.cores ?? 1).shQuoted)",
            "APF_WALLTIME_SECONDS=\(String(queue.options.walltimeSeconds ?? 0).shQuoted)",
            "export APF_CLIENT_ID APF_QUEUE APF_FACTORY APF_WORKDIR APF_CORES APF_WALLTIME_SECONDS",
        ]
        for (name, value) in environment {
            guard ShellQuote.isValidName(name) else {
                throw BatchError(.invalidOption, "environment name '\(name)' is not a valid variable name", permanent: true)
            }
            guard !name.hasPrefix("APF_") else {
                throw BatchError(.invalidOption, "environment name '\(name)': APF_* variables are set by the agent", permanent: true)
            }
            lines.append("\(name)=\(try PilotTemplate.shellWord(value))")
            lines.append("export \(name)")
        }
        var exec = "exec " + payloadCommand.map(\.shQuoted).joined(separator: " ")
        for a in arguments { exec += " " + (try PilotTemplate.shellWord(a)) }
        lines.append(exec)
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    /// The script sent on stdin with an array submission: maps the task index to the pilot's client ID, then execs
    /// the launcher. `indexVariable` is `SLURM_ARRAY_TASK_ID` or `SGE_TASK_ID`; tasks are numbered from 1.
    static func arrayScript(pilots: [ClientID], indexVariable: String, launcherPath: String, directives: [String] = []) -> [UInt8] {
        var s = "#!/bin/sh\n"
        for d in directives { s += d + "\n" }
        s += "# apf-agent: \(pilots.count) pilots, \(pilots.first.map { "\($0)" } ?? "")..\(pilots.last.map { "\($0)" } ?? "")\n"
        s += "case \"${\(indexVariable):-}\" in\n"
        for (i, id) in pilots.enumerated() { s += "\(i + 1)) APF_CLIENT_ID=\(id) ;;\n" }
        s += "*) echo \"apf-agent: no client ID for task '${\(indexVariable):-}'\" >&2; exit 97 ;;\nesac\n"
        s += "export APF_CLIENT_ID\nexec \(launcherPath.shQuoted)\n"
        return Array(s.utf8)
    }

    // MARK: - Glidein

    /// The HTCondor configuration of a glidein: a master and a startd that join `collector`, accept any job, and
    /// shut down after `idleTimeout` without a claim (and, with `maxLifetime`, stop matching after it).
    static func glideinConfig(_ g: GlideinPayload) throws(BatchError) -> [UInt8] {
        try validate(g)
        let idle = Int(g.idleTimeout.components.seconds)
        var lines = [
            "# apf-agent glidein configuration; generated, do not edit.",
            "CONDOR_HOST = \(g.collector)",
            "COLLECTOR_HOST = \(g.collector)",
            "DAEMON_LIST = MASTER, STARTD",
            "LOCAL_DIR = $ENV(APF_GLIDEIN_DIR)",
            "LOG = $(LOCAL_DIR)/log",
            "EXECUTE = $(LOCAL_DIR)/execute",
            "SPOOL = $(LOCAL_DIR)/spool",
            "LOCK = $(LOCAL_DIR)/lock",
            "RUN = $(LOCAL_DIR)/run",
            "STARTD_NAME = glidein_$ENV(APF_CLIENT_ID)",
            "NUM_CPUS = $ENV(APF_CORES)",
            "APF_CLIENT_ID = \"$ENV(APF_CLIENT_ID)\"",
            "APF_QUEUE = \"$ENV(APF_QUEUE)\"",
            "APF_FACTORY = \"$ENV(APF_FACTORY)\"",
            "STARTD_ATTRS = $(STARTD_ATTRS) APF_CLIENT_ID APF_QUEUE APF_FACTORY",
            "START = TRUE",
            "SUSPEND = FALSE",
            "PREEMPT = FALSE",
            "KILL = FALSE",
            "RANK = 0",
            "# Leave after \(idle) s without a claim; the master follows its startd out.",
            "STARTD_NOCLAIM_SHUTDOWN = \(idle)",
            "MASTER.DAEMON_SHUTDOWN = STARTD_StartTime =?= 0",
        ]
        if let life = g.maxLifetime {
            let s = Int(life.components.seconds)
            lines[lines.firstIndex(of: "START = TRUE")!] = "START = (time() - DaemonStartTime) < \(s)"
            lines.append("# Stop matching after \(s) s; idle shutdown then ends the glidein.")
        }
        if let token = g.tokenFile {
            lines += ["SEC_DEFAULT_AUTHENTICATION_METHODS = IDTOKENS", "SEC_TOKEN_DIRECTORY = \(dirname(token))",
                      "SEC_CLIENT_AUTHENTICATION_METHODS = IDTOKENS"]
        }
        for (name, value) in g.extraConfig {
            guard !name.isEmpty, name.utf8.allSatisfy({ ShellQuote.isValidName(String(UnicodeScalar($0))) || ($0 >= 48 && $0 <= 57) || $0 == UInt8(ascii: ".") }),
                  !value.utf8.contains(where: { $0 == 10 || $0 == 13 || $0 == 0 })
            else {
                throw BatchError(.invalidOption, "glidein extra configuration '\(name)' must be a plain name with a one-line value", permanent: true)
            }
            lines.append("\(name) = \(value)")
        }
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    /// The glidein's start script: makes a private local directory and runs `condor_master -f` in the foreground
    /// with the staged configuration, so the batch job lasts as long as the startd.
    static func glideinStartup(_ g: GlideinPayload, configPath: String) throws(BatchError) -> [UInt8] {
        try validate(g)
        let lines = [
            "#!/bin/sh",
            "# apf-agent glidein start script; generated, do not edit.",
            "set -eu",
            ": \"${APF_CLIENT_ID:?apf-agent: APF_CLIENT_ID is not set}\"",
            "condor_location=\(g.condorLocation.shQuoted)",
            "APF_GLIDEIN_DIR=${TMPDIR:-/tmp}/apf-glidein-$APF_CLIENT_ID",
            "mkdir -p \"$APF_GLIDEIN_DIR/log\" \"$APF_GLIDEIN_DIR/execute\" \"$APF_GLIDEIN_DIR/spool\" \"$APF_GLIDEIN_DIR/lock\" \"$APF_GLIDEIN_DIR/run\"",
            "trap 'rm -rf \"$APF_GLIDEIN_DIR\"' EXIT",
            "CONDOR_CONFIG=\(configPath.shQuoted)",
            "export CONDOR_CONFIG APF_GLIDEIN_DIR",
            "PATH=\"$condor_location/bin:$condor_location/sbin:$PATH\"",
            "export PATH",
            "\"$condor_location/sbin/condor_master\" -f",
        ]
        return Array((lines.joined(separator: "\n") + "\n").utf8)
    }

    static func validate(_ g: GlideinPayload) throws(BatchError) {
        let hostPort = g.collector.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(hostPort.count), BatchOptions.isName(String(hostPort[0])),
              hostPort.count == 1 || (Int(hostPort[1]).map { (1...65535).contains($0) } ?? false)
        else {
            throw BatchError(.invalidOption, "glidein collector '\(g.collector)' must be host or host:port", permanent: true)
        }
        guard g.condorLocation.hasPrefix("/"), !g.condorLocation.utf8.contains(where: { $0 < 32 }) else {
            throw BatchError(.invalidOption, "glidein condorLocation must be an absolute path (got '\(g.condorLocation)')", permanent: true)
        }
        guard g.idleTimeout >= .seconds(60) else {
            throw BatchError(.invalidOption, "glidein idle timeout must be at least 60 s", permanent: true)
        }
        if let t = g.tokenFile, !t.hasPrefix("/") || t.utf8.contains(where: { $0 < 32 }) {
            throw BatchError(.invalidOption, "glidein tokenFile must be an absolute path on the worker", permanent: true)
        }
    }

    static func dirname(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let d = String(path[..<slash])
        return d.isEmpty ? "/" : d
    }
}
