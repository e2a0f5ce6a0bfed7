public import Foundation

/// The JSON document of apf-agent's generic demand sources (`Command`, `HTTP`):
///
/// ```json
/// {"timestamp": 1767225600, "queues": {"QUEUE": {"ready": 12, "notready": 0, "running": 3, "status": "online"}}}
/// ```
///
/// `ready` is required per queue (a bare number means `ready`); the other counts default to 0; `status` (site
/// status) defaults to `ok`; `timestamp` (Unix seconds, optional) is when the numbers were produced, and `maxage`
/// is measured from it.
public struct DemandDocument: Sendable, Equatable {
    public var queues: [String: (counts: WMSQueueCounts, status: SiteStatus)]
    public var timestamp: Date?

    public static func == (a: Self, b: Self) -> Bool {
        a.timestamp == b.timestamp && a.queues.count == b.queues.count
            && a.queues.allSatisfy { k, v in b.queues[k].map { $0.counts == v.counts && $0.status == v.status } ?? false }
    }

    public static func parse(_ body: Data, source: String) throws(StatusError) -> DemandDocument {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: body)
        } catch {
            throw StatusError(.badResponse, "\(source) did not print JSON (\(body.count) bytes)", retryable: true)
        }
        guard let dict = object as? [String: Any], let queues = dict["queues"] as? [String: Any] else {
            throw StatusError(.badResponse, "\(source): expected {\"queues\": {NAME: {\"ready\": N, ...}}}", retryable: true)
        }
        var out: [String: (WMSQueueCounts, SiteStatus)] = [:]
        for (name, value) in queues {
            if let n = PandaStatusSource.count(value), n >= 0 {
                out[name] = (WMSQueueCounts(ready: n), .ok)
                continue
            }
            guard let q = value as? [String: Any], let ready = q["ready"].flatMap(PandaStatusSource.count), ready >= 0
            else {
                throw StatusError(
                    .badResponse, "\(source): queue '\(name)' has no non-negative whole number 'ready'", retryable: true)
            }
            func n(_ k: String) -> Int { q[k].flatMap(PandaStatusSource.count).map { max(0, $0) } ?? 0 }
            out[name] = (
                WMSQueueCounts(ready: ready, notready: n("notready"), running: n("running"), done: n("done"), failed: n("failed")),
                (q["status"] as? String).map { SiteStatus($0) } ?? .ok
            )
        }
        let ts = dict["timestamp"].flatMap { ($0 as? Double) ?? ($0 as? Int).map(Double.init) }
        return DemandDocument(
            queues: out.mapValues { (counts: $0.0, status: $0.1) }, timestamp: ts.map(Date.init(timeIntervalSince1970:)))
    }

    /// The observation of one queue from a document fetched at `fetchedAt`, refusing it past `maxAge`.
    func observe(_ queue: String, fetchedAt: Date, now: Date, maxAge: Duration, source: String) -> WMSObservation {
        let asOf = timestamp ?? fetchedAt
        let age = now.timeIntervalSince(asOf)
        if age > maxAge.seconds {
            return .missing("\(source): numbers are \(Int(age)) s old (maxage \(Int(maxAge.seconds)) s)")
        }
        guard let q = queues[queue] else { return .missing("\(source): queue '\(queue)' is not in its output") }
        return WMSObservation(counts: .known(q.counts), site: .known(q.status), asOf: asOf)
    }
}

/// apf-agent's generic demand sources: `wmsstatusplugin = Command` (a local command, an argument vector run without
/// a shell, prints a `DemandDocument`) and `wmsstatusplugin = HTTP` (a URL returns one).
public actor JSONDemandSource: WMSStatusSource {
    private let snapshot: PolledSnapshot<DemandDocument>
    private let clock: StatusClock
    private let poll: PollPolicy
    private let name: String

    private init(
        name: String, poll: PollPolicy, clock: StatusClock,
        fetch: @escaping @Sendable () async throws(StatusError) -> DemandDocument
    ) {
        self.clock = clock
        self.poll = poll
        self.name = name
        snapshot = PolledSnapshot(policy: poll, clock: clock, fetch: fetch)
    }

    /// Runs `argv` (in its own process group, killed at `timeout`) and parses its standard output.
    public static func command(
        argv: [String], timeout: Duration, poll: PollPolicy, clock: StatusClock = .system
    ) -> JSONDemandSource {
        let name = "command \(argv.first ?? "")"
        return JSONDemandSource(name: name, poll: poll, clock: clock) { () async throws(StatusError) in
            try DemandDocument.parse(try await CommandRunner.run(argv, timeout: timeout), source: name)
        }
    }

    /// GETs `url` and parses the body.
    public static func http(
        url: String, timeout: Duration, poll: PollPolicy, http: any HTTPFetching = URLSessionFetcher(),
        clock: StatusClock = .system
    ) -> JSONDemandSource {
        JSONDemandSource(name: url, poll: poll, clock: clock) { () async throws(StatusError) in
            try DemandDocument.parse(try await PandaStatusSource.get(http, url, timeout), source: url)
        }
    }

    public func observe(_ wmsQueue: String) async -> WMSObservation {
        switch await snapshot.current() {
        case .success(let s):
            return s.value.observe(wmsQueue, fetchedAt: s.at, now: clock.now(), maxAge: poll.maxAge, source: name)
        case .failure(let e):
            return .missing("\(name): \(e.message)")
        }
    }
}

/// What a batch driver offers to use a batch system as a WMS (APF's two-queue pattern): the number of jobs waiting
/// there that match a selector — a SLURM partition's pending jobs, an HTCondor schedd's idle jobs of a label.
/// Batch drivers implement it; one query per selector and poll interval.
public protocol PendingJobCounting: Sendable {
    func pendingJobs(_ selector: PendingJobSelector) async throws(StatusError) -> Int
}

/// `wmsstatusplugin = Batch` (and APF's `Condor`): pending jobs of a batch system as demand. Site status is `ok`.
public actor BatchDemandSource: WMSStatusSource {
    private let snapshot: PolledSnapshot<Int>
    private let selector: PendingJobSelector

    public init(counter: any PendingJobCounting, selector: PendingJobSelector, poll: PollPolicy, clock: StatusClock = .system) {
        self.selector = selector
        snapshot = PolledSnapshot(policy: poll, clock: clock) { () async throws(StatusError) in
            try await counter.pendingJobs(selector)
        }
    }

    /// The WMS queue name is not used: the selector says which jobs are demand.
    public func observe(_ wmsQueue: String) async -> WMSObservation {
        switch await snapshot.current() {
        case .success(let s):
            return WMSObservation(counts: .known(WMSQueueCounts(ready: s.value)), site: .known(.ok), asOf: s.at)
        case .failure(let e):
            return .missing("pending jobs (\(selector.partition ?? selector.constraint ?? "?")): \(e.message)")
        }
    }
}

/// Runs an argument vector locally (no shell) with a deadline: stdout is returned, a non-zero exit is an error.
/// The command runs in its own process group, so a timeout stops it and everything it started.
enum CommandRunner {
    static func run(_ argv: [String], timeout: Duration) async throws(StatusError) -> Data {
        guard let exe = argv.first else { throw StatusError(.command, "empty command", retryable: false) }
        let spawned: SpawnedProcess
        do {
            spawned = try SpawnedProcess(argv)
        } catch {
            throw StatusError(.command, "cannot run \(exe): \(error)", retryable: false)
        }
        async let stdout = readAll(spawned.stdout)
        async let stderr = readAll(spawned.stderr)
        let status = await spawned.exit.wait(timeout: timeout) { spawned.killGroup() }
        let (o, e) = await (stdout, stderr)
        guard let status else {
            throw StatusError(.timeout, "\(exe) did not finish within \(Int(timeout.seconds)) s", retryable: true)
        }
        guard status == 0 else {
            let text = String(decoding: e.prefix(300), as: UTF8.self).trimmingWhitespace()
            let what = status > 0 ? "exited with status \(status)" : "was killed by signal \(-status)"
            throw StatusError(.command, "\(exe) \(what)\(text.isEmpty ? "" : ": \(text)")", retryable: true)
        }
        return o
    }
}

/// A child process started with posix_spawn in a new process group, its stdout and stderr on pipes, stdin from
/// /dev/null, and a thread waiting for its exit.
final class SpawnedProcess: Sendable {
    struct SpawnError: Error, CustomStringConvertible {
        var errno: Int32
        var description: String { String(cString: strerror(errno)) }
    }

    let pid: pid_t
    let stdout: Int32
    let stderr: Int32
    let exit = ProcessExit()

    init(_ argv: [String]) throws {
        var outPipe: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        guard pipe(&outPipe) == 0 else { throw SpawnError(errno: errno) }
        guard pipe(&errPipe) == 0 else {
            let e = errno
            close(outPipe[0])
            close(outPipe[1])
            throw SpawnError(errno: e)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        for fd in outPipe + errPipe { posix_spawn_file_actions_addclose(&actions, fd) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attr, 0)
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, argv[0], &actions, &attr, &cargs, environ)
        close(outPipe[1])
        close(errPipe[1])
        guard rc == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            throw SpawnError(errno: rc)
        }
        pid = child
        stdout = outPipe[0]
        stderr = errPipe[0]
        let exit = self.exit
        let spawnedPID = child
        Thread.detachNewThread {
            var status: Int32 = 0
            while waitpid(spawnedPID, &status, 0) < 0 && errno == EINTR {}
            // Exit code, or the negated signal number.
            exit.finish((status & 0x7f) == 0 ? (status >> 8) & 0xff : -(status & 0x7f))
        }
    }

    /// SIGTERM to the whole process group, then SIGKILL after 2 s if anything is left.
    func killGroup() {
        kill(-pid, SIGTERM)
        let pid = self.pid
        let exit = self.exit
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: 2)
            if !exit.isFinished || kill(-pid, 0) == 0 { kill(-pid, SIGKILL) }
        }
    }
}

/// Reads a file descriptor to its end on a dedicated thread (blocking reads stay off the shared pool), then closes it.
private func readAll(_ fd: Int32) async -> Data {
    await withCheckedContinuation { c in
        Thread.detachNewThread {
            var data = Data()
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fd, &buf, buf.count)
                if n > 0 {
                    data.append(contentsOf: buf[0..<n])
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            close(fd)
            c.resume(returning: data)
        }
    }
}

/// The exit status of a process, awaited with a deadline.
final class ProcessExit: @unchecked Sendable {
    // @unchecked: every access to `status` and `waiters` holds `lock`.
    private let lock = NSLock()
    private var status: Int32?
    private var waiters: [CheckedContinuation<Int32?, Never>] = []

    var isFinished: Bool {
        lock.lock()
        defer { lock.unlock() }
        return status != nil
    }

    func finish(_ s: Int32) {
        lock.lock()
        status = s
        let ws = waiters
        waiters = []
        lock.unlock()
        for w in ws { w.resume(returning: s) }
    }

    /// The exit status, or nil if `timeout` passed first; then `onTimeout` runs (it must make the process exit)
    /// and the exit is awaited.
    func wait(timeout: Duration, onTimeout: @escaping @Sendable () -> Void) async -> Int32? {
        await withTaskGroup(of: Int32?.self) { group in
            group.addTask { await self.exit() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            if first == nil { onTimeout() }
            group.cancelAll()
            return first
        }
    }

    private func exit() async -> Int32? {
        await withCheckedContinuation { c in
            lock.lock()
            if let s = status {
                lock.unlock()
                c.resume(returning: s)
            } else {
                waiters.append(c)
                lock.unlock()
            }
        }
    }
}
