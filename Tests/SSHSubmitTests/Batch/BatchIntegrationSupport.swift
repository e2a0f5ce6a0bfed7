import AuthProfiles
import Foundation
import Logging
import Testing
import TestSupport

@testable import SSHSubmit

/// What the batch integration tests share: the testbed's login nodes, a per-run factory tag (so a run only ever sees
/// its own jobs), a marker-writing pilot wrapper, and a poller that records every state each pilot went through.
struct BatchBed {
    let tb: Testbed

    /// The testbed with `component` up. The testbed is shared by every session on the machine, and a `tb` run from
    /// another checkout rewrites the env file with the components *it* knows; if the component's key is missing,
    /// `tb up <component>` (idempotent) from this checkout restores it.
    static func load(_ component: String) throws -> BatchBed {
        let keys = ["slurm": "APF_TB_SLURM", "sge": "APF_TB_SGE", "pbs": "APF_TB_PBS", "condorfake": "APF_TB_CONDOR_FAKE"]
        let key = keys[component]!
        var tb = try Testbed.load()
        if tb.env[key] != "1" {
            try Testbed.tb("up", component)
            tb = try Testbed.load()
        }
        guard tb.env[key] == "1" else { throw TestFailure("testbed env lacks \(key)=1 after `tb up \(component)`") }
        return BatchBed(tb: tb)
    }

    /// A runner on the testbed sshd at `portKey` (2222: SLURM and SGE; 2223: PBS wrappers; 2225: the FAKE HTCondor).
    func runner(portKey: String = "APF_TB_SSH_PORT", defaultPort: Int = 2222) throws -> SSHCommandRunner {
        let port = Int(tb.env[portKey] ?? "") ?? defaultPort
        return SSHCommandRunner(pool: try tb.pool(SSHEndpoint(host: "127.0.0.1", port: port, user: tb.user)))
    }

    /// A tag no other run uses: "i" + three random base-36 characters.
    static func uniqueTag() -> FactoryTag {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return try! FactoryTag("i" + String((0..<3).map { _ in alphabet.randomElement()! }))
    }

    /// The pilot wrapper of the tests: writes `$APF_WORKDIR/markers/$APF_CLIENT_ID` (its identity, queue, factory and
    /// first argument), then sleeps `$2` seconds.
    static let markerWrapper = PilotWrapper(
        name: "marker-pilot",
        content: Array("""
            #!/bin/sh
            mkdir -p "$APF_WORKDIR/markers"
            printf '%s %s %s %s\\n' "$APF_CLIENT_ID" "$APF_QUEUE" "$APF_FACTORY" "$1" > "$APF_WORKDIR/markers/$APF_CLIENT_ID.tmp"
            mv "$APF_WORKDIR/markers/$APF_CLIENT_ID.tmp" "$APF_WORKDIR/markers/$APF_CLIENT_ID"
            sleep "$2"

            """.utf8),
        arguments: ["{client_id}", "{walltime_seconds}"])

    static func queue(_ name: String, tag: FactoryTag, sleep: Int, options: BatchOptions = BatchOptions()) -> QueueSpec {
        var w = markerWrapper
        w.arguments = ["{client_id}", "\(sleep)"]
        return QueueSpec(name: name, factory: "apf-test-factory", tag: tag, payload: .wrapper(w), options: options,
                         workDirectory: ".apf-agent/test-\(tag)")
    }

    /// The markers the pilots wrote: client ID → the marker's words.
    static func markers(_ runner: any CommandRunner, queue: PreparedQueue) async throws -> [ClientID: [String]] {
        let r = try await runner.run(RemoteCommand(["sh", "-c", "cat \"$1\"/markers/* 2>/dev/null; true", "sh", queue.workDirectory]))
        var out: [ClientID: [String]] = [:]
        for line in r.stdoutText.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            if let first = words.first, let id = ClientID(first) { out[id] = words }
        }
        return out
    }

    /// Runs `body` with a runner on the sshd at `portKey`; afterwards (also after a failure) removes the work
    /// directories `body` registered and shuts the pool down.
    func session<T>(portKey: String = "APF_TB_SSH_PORT", defaultPort: Int = 2222,
                    _ body: (SSHCommandRunner, WorkDirs) async throws -> T) async throws -> T {
        let runner = try runner(portKey: portKey, defaultPort: defaultPort)
        let dirs = WorkDirs()
        func finish() async {
            for d in await dirs.all { _ = try? await runner.run(RemoteCommand(["rm", "-rf", "--", d])) }
            await runner.pool.shutdown(grace: .seconds(5))
        }
        do {
            let r = try await body(runner, dirs)
            await finish()
            return r
        } catch {
            await finish()
            throw error
        }
    }
}

/// Work directories a test created on its target, removed when its session ends.
actor WorkDirs {
    private(set) var all: [String] = []
    func add(_ queue: PreparedQueue) { all.append(queue.workDirectory) }
}

/// Every state each pilot was seen in, in order (repeats collapsed), over repeated status polls.
struct StateHistory {
    var seen: [NativeJobID: [PilotState]] = [:]
    /// The latest record of each pilot, kept when a later poll no longer finds it (as the agent core keeps the last
    /// state it saw, LESSONS §16).
    var lastRecord: [NativeJobID: JobRecord] = [:]
    var notFoundPolls: [NativeJobID: Int] = [:]
    var last: StatusReport?
    var polls = 0

    mutating func record(_ report: StatusReport, ids: [NativeJobID]) {
        polls += 1
        last = report
        for id in ids {
            switch report.observation(id) {
            case .seen(let r):
                if seen[id]?.last != r.status.state { seen[id, default: []].append(r.status.state) }
                lastRecord[id] = r
            case .notFound: notFoundPolls[id, default: 0] += 1
            case .unresolved, .notAsked: break
            }
        }
    }

    static let rank: [PilotState: Int] = [.pending: 0, .held: 0, .running: 1, .completing: 2, .done: 3, .failed: 3, .cancelled: 3]

    /// No pilot ever went back (running after done, pending after running).
    var forwardOnly: Bool {
        seen.values.allSatisfy { states in zip(states, states.dropFirst()).allSatisfy { (Self.rank[$0] ?? 9) <= (Self.rank[$1] ?? -1) } }
    }

    /// Every pilot has been seen in a terminal state at some poll.
    func allSeenTerminal(_ ids: [NativeJobID]) -> Bool { ids.allSatisfy { seen[$0]?.last?.isTerminal == true } }

    func count(through states: [PilotState]) -> Int {
        seen.values.filter { s in states.allSatisfy(s.contains) }.count
    }
}

extension BatchBackend {
    /// Polls `status(ids)` every `interval` until `done` holds or `timeout` passes; records every observation.
    func poll(_ ids: [NativeJobID], every interval: Duration = .milliseconds(500), timeout: Duration,
              until done: (StatusReport, StateHistory) -> Bool) async throws -> StateHistory {
        var history = StateHistory()
        let deadline = ContinuousClock.now + timeout
        while true {
            let report = try await status(ids)
            history.record(report, ids: ids)
            if done(report, history) { return history }
            guard ContinuousClock.now < deadline else {
                Issue.record("\(system) on \(target): condition not reached within \(timeout) after \(history.polls) polls")
                return history
            }
            try await Task.sleep(for: interval)
        }
    }
}

/// The accepted native IDs of a submission, in pilot order; records an issue for any pilot not accepted.
func acceptedIDs(_ results: [SubmitResult]) -> [NativeJobID] {
    results.compactMap { r in
        if r.outcome.nativeID == nil { Issue.record("pilot \(r.clientID) not accepted: \(r.outcome)") }
        return r.outcome.nativeID
    }
}
