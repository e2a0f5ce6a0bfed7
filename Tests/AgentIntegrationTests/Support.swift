import Agent
import AuthProfiles
import Foundation
import Logging
import SSHSubmit
import Testing
import TestSupport
import GRDB

#if canImport(Glibc)
import Glibc
#endif

/// The project's testbed (testbed/tb), described by the env file `tb up` writes; integration suites run only when
/// APF_INTEGRATION=1 (`make test` sets it).
struct Testbed {
    static let enabled = TestbedEnv.enabled
    static let repoRoot = TestbedEnv.repoRoot

    let env: [String: String]

    /// The testbed with `components` up; `tb up <component>` (idempotent) restores a component whose keys another
    /// checkout's `tb` left out of the shared env file.
    static func load(_ components: [String: String]) async throws -> Testbed {
        var tb = try read()
        for (component, key) in components where tb.env[key] != "1" {
            _ = try await runOffPool(["/bin/bash", "\(repoRoot)/testbed/tb", "up", component])
            tb = try read()
        }
        for (_, key) in components where tb.env[key] != "1" { throw Failure("testbed env lacks \(key)=1") }
        return tb
    }

    static func read() throws -> Testbed { Testbed(env: try TestbedEnv.read()) }

    subscript(_ key: String) -> String { get throws { try TestbedEnv.value(env, key) } }

    var user: String { env["APF_TB_USER"] ?? "apftest" }

    /// A pool to a testbed sshd as the test user (for checking what really is on the batch system).
    func pool(port: Int) throws -> SSHPool {
        let key = try Data(contentsOf: URL(fileURLWithPath: try self["APF_TB_KEY_ED25519"]))
        return SSHPool(endpoint: SSHEndpoint(host: "127.0.0.1", port: port, user: user),
                       identity: SSHIdentity(id: "test", privateKey: Secret(bytes: [UInt8](key))),
                       knownHostsPath: try self["APF_TB_KNOWN_HOSTS"], logger: .silent)
    }

    @discardableResult
    static func runOffPool(_ argv: [String]) async throws -> String { try await TestbedEnv.runOffPool(argv) }

    @discardableResult
    static func run(_ argv: [String], environment: [String: String] = [:], stdin: String? = nil) throws -> String {
        try TestbedEnv.run(argv, environment: environment, stdin: stdin)
    }
}

/// The end-to-end suite starts after the burst of the other suites' SSH connections at the beginning of a test run:
/// the testbed's sshd (MaxStartups 10:30:100) is shared, and some transport tests have tight time bounds.
actor QuietStart {
    static let shared = QuietStart()
    private var waited = false

    func wait(_ delay: Duration = .seconds(15)) async {
        guard !waited else { return }
        waited = true
        try? await Task.sleep(for: delay)
    }
}

typealias Failure = TestFailure

/// The built `apf-agent` executable (this test target depends on it).
enum BuiltCLI {
    static let path: String = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("apf-agent").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        let fallback = Testbed.repoRoot + "/.build/debug/apf-agent"
        return FileManager.default.isExecutableFile(atPath: fallback) ? fallback : ""
    }()
}

/// One end-to-end installation: an APF home made with the real CLI (tenant, SSH profile imported from the testbed
/// key, targets, host keys from the testbed), a configuration directory, a demand file read by a `Command` WMS
/// source, a unique client-ID tag (so listings see only this run's pilots), and the daemon as a child process.
final class AgentBed: @unchecked Sendable {
    // @unchecked: `daemon` is only touched by the test that owns the bed, one call at a time.
    let tb: Testbed
    let dir: String
    let tag: String
    var daemon: Process?
    var logPath: String { dir + "/agent.log" }
    var home: String { dir + "/home" }
    var journalPath: String { dir + "/journal.sqlite" }
    var conf: String { dir + "/conf" }

    private init(tb: Testbed) {
        self.tb = tb
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("apf-e2e-\(UUID().uuidString.prefix(8))").path
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        tag = "e" + String((0..<3).map { _ in alphabet.randomElement()! })
    }

    static func make(tb: Testbed) async throws -> AgentBed {
        let bed = AgentBed(tb: tb)
        try await bed.setUp()
        return bed
    }

    private func setUp() async throws {
        try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
        try await cli(["tenant", "add", "e2e"])
        try await cli(["profile", "add", "e2e-ssh", "--tenant", "e2e", "--kind", "ssh", "--key-file", try tb["APF_TB_KEY_ED25519"]])
        try FileManager.default.copyItem(atPath: try tb["APF_TB_KNOWN_HOSTS"], toPath: home + "/known_hosts")
        let wrapper = """
            #!/bin/sh
            echo "pilot $APF_CLIENT_ID of $FACTORYQUEUE"
            sleep "$1"

            """
        try wrapper.write(toFile: dir + "/pilot.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/pilot.sh", 0o755)
    }

    @discardableResult
    func cli(_ args: [String]) async throws -> String {
        try await Testbed.runOffPool([BuiltCLI.path] + args + ["--home", home])
    }

    func addTarget(_ name: String, port: Int, batch: String, partition: String? = nil) async throws {
        var args = ["target", "add", name, "--tenant", "e2e", "--host", "127.0.0.1", "--port", "\(port)", "--user", tb.user,
                    "--batch", batch, "--profile", "e2e-ssh"]
        if let partition { args += ["--partition", partition] }
        try await cli(args)
    }

    func writeFactory(targets: [String], extra: String = "") throws {
        var text = "[Factory]\nfactoryId = e2e-\(tag)\ntag = \(tag)\njournal = \(journalPath)\n"
        for t in targets { text += "\n[target:\(t)]\nstatus.ttl = 1\nbackoff.base = 2\nbackoff.max = 10\n" }
        try (text + extra).write(toFile: conf + "/factory.conf", atomically: true, encoding: .utf8)
    }

    /// A queue whose pilot count follows its demand (WeightedActivated with pending weight 0, then KeepNRunning;
    /// retire cancels queued pilots first, then running ones).
    func queueSection(_ name: String, target: String, sleep: Int = 600, extra: String = "") -> String {
        """
        [\(name)]
        enabled = True
        tenant = e2e
        wmsqueue = \(name)
        wmsstatusplugin = Command
        wmsstatus.command.run = /bin/cat \(dir)/demand.json
        wmsstatus.command.sleep = 1
        schedplugin = WeightedActivated, KeepNRunning
        sched.weightedactivated.pending = 0
        retire.policy = cancel
        batchsubmitplugin = SSH
        target = \(target)
        executable = \(dir)/pilot.sh
        executable.arguments = \(sleep)
        apfqueue.sleep = 2
        pilot.walltime = 900
        pilot.workdir = .apf-agent/e2e-\(tag)
        \(extra)

        """
    }

    func writeQueues(_ text: String) throws {
        try text.write(toFile: conf + "/queues.conf", atomically: true, encoding: .utf8)
    }

    func setDemand(_ demand: [String: Int]) throws {
        let body = demand.map { "\"\($0.key)\": {\"ready\": \($0.value)}" }.joined(separator: ", ")
        try "{\"queues\": {\(body)}}".write(toFile: dir + "/demand.json", atomically: true, encoding: .utf8)
    }

    /// Starts `apf-agent run` (logs to agent.log).
    func start(_ extra: [String] = []) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: BuiltCLI.path)
        p.arguments = ["run", "--config", conf, "--home", home, "--log-level", "info"] + extra
        FileManager.default.createFile(atPath: logPath + ".tmp", contents: nil)
        let log = try FileHandle(forUpdating: URL(fileURLWithPath: logPath + ".tmp"))
        if FileManager.default.fileExists(atPath: logPath) {
            let old = (try? Data(contentsOf: URL(fileURLWithPath: logPath))) ?? Data()
            log.write(old)
        }
        try? FileManager.default.removeItem(atPath: logPath)
        try FileManager.default.moveItem(atPath: logPath + ".tmp", toPath: logPath)
        log.seekToEndOfFile()
        p.standardError = log
        p.standardOutput = log
        try p.run()
        daemon = p
    }

    func signal(_ sig: Int32) { if let p = daemon, p.isRunning { kill(p.processIdentifier, sig) } }

    /// Sends SIGTERM and waits for the exit; returns the exit status and how long it took.
    func stop(timeout: Duration = .seconds(30)) async -> (status: Int32, took: Duration)? {
        guard let p = daemon else { return nil }
        let start = ContinuousClock.now
        if p.isRunning { kill(p.processIdentifier, SIGTERM) }
        while p.isRunning, ContinuousClock.now - start < timeout { try? await Task.sleep(for: .milliseconds(50)) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            await waitForExit()
            return nil
        }
        daemon = nil
        return (p.terminationStatus, ContinuousClock.now - start)
    }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func journal() throws -> AgentStore { try AgentStore.open(path: journalPath) }

    /// Polls `condition` every 250 ms until it holds or `timeout` passes.
    func until(_ what: String, timeout: Duration = .seconds(90), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            if try await condition() { return }
            guard ContinuousClock.now < deadline else {
                throw Failure("\(what): not reached within \(timeout); agent log tail:\n" + String(log().suffix(3000)))
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Waits for the daemon's exit without blocking a cooperative thread.
    func waitForExit() async {
        while let p = daemon, p.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
    }

    func cleanup() {
        if let p = daemon, p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// This run's jobs as the batch system itself lists them (the driver's listing, narrowed to the run's tag), and
/// removal of what is left at the end.
struct TargetView {
    let backend: any BatchBackend
    let pool: SSHPool

    static func make(_ tb: Testbed, port: Int, system: BatchSystem, tag: String) throws -> TargetView {
        let pool = try tb.pool(port: port)
        let runner = SSHCommandRunner(pool: pool)
        let t = try FactoryTag(tag)
        let backend: any BatchBackend
        switch system {
        case .slurm: backend = SlurmBackend(runner: runner, tag: t)
        case .sge: backend = SGEBackend(runner: runner, tag: t)
        case .pbs: backend = PBSBackend(runner: runner, tag: t)
        case .htcondor: backend = HTCondorBackend(runner: runner, tag: t)
        }
        return TargetView(backend: backend, pool: pool)
    }

    /// Every job of the run's tag on the batch system, by client ID: the queue listing narrowed to the tag (SLURM,
    /// SGE), or — for PBS, whose listing takes job IDs — a look-up of `clientIDs` (every ID the journal ever minted).
    func jobs(clientIDs: [String] = []) async throws -> [String: JobRecord] {
        var out: [String: JobRecord] = [:]
        if backend.system == .pbs {
            for (c, r) in try await backend.find(clientIDs.compactMap(ClientID.init)) { out[c.description] = r }
            return out
        }
        let report = try await backend.status([])
        for r in report.records.values { if let c = r.clientID { out[c.description] = r } }
        return out
    }

    /// Client IDs of the run's jobs that have not ended.
    func live(clientIDs: [String] = []) async throws -> Set<String> {
        Set(try await jobs(clientIDs: clientIDs).filter { !$0.value.status.state.isTerminal }.keys)
    }

    /// Cancels everything of the run's tag that is still there.
    func removeAll(clientIDs: [String] = []) async {
        if let records = try? await jobs(clientIDs: clientIDs).values {
            let ids = records.filter { !$0.status.state.isTerminal }.map(\.id)
            if !ids.isEmpty { _ = try? await backend.cancel(ids) }
        }
        await pool.shutdown(grace: .seconds(2))
    }
}

extension AgentStore {
    /// Client IDs of a queue's pilots that have not ended.
    func liveIDs(queue: String) throws -> Set<String> { Set(try livePilots(queue: queue).map(\.id)) }

    /// Every client ID the journal holds (any state).
    func allIDs() throws -> [String] {
        try writer.read { db in try String.fetchAll(db, sql: "SELECT id FROM pilot ORDER BY id") }
    }
}

/// Runs `body`, then `cleanup` (also when `body` throws).
func withCleanup<T>(_ body: () async throws -> T, cleanup: () async -> Void) async throws -> T {
    do {
        let r = try await body()
        await cleanup()
        return r
    } catch {
        await cleanup()
        throw error
    }
}
