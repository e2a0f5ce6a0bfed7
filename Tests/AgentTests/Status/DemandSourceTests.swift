import Agent
import Foundation
import Synchronization
import Testing

struct DemandDocumentTests {
    @Test func parsesQueuesCountsStatusAndTimestamp() throws {
        let doc = try DemandDocument.parse(
            Data(#"{"timestamp": 1800000000, "queues": {"A": {"ready": 12, "running": 3, "status": "test"}, "B": 4}}"#.utf8),
            source: "t")
        #expect(doc.timestamp == Date(timeIntervalSince1970: 1_800_000_000))
        #expect(doc.queues["A"]?.counts == WMSQueueCounts(ready: 12, running: 3))
        #expect(doc.queues["A"]?.status == .test)
        #expect(doc.queues["B"]?.counts == WMSQueueCounts(ready: 4))
        #expect(doc.queues["B"]?.status == .ok)
    }

    @Test(arguments: [#"[1,2]"#, #"{"queue": {}}"#, #"{"queues": {"A": {"running": 1}}}"#, #"{"queues": {"A": -1}}"#, "nope"])
    func rejectsMalformedDocuments(text: String) {
        #expect(throws: StatusError.self) { try DemandDocument.parse(Data(text.utf8), source: "t") }
    }
}

/// `wmsstatusplugin = Command`: a real local process (/bin/sh) prints the demand.
@Suite(.serialized) struct CommandDemandSourceTests {
    private func source(_ script: String, timeout: Duration = .seconds(10), clock: TestClock = TestClock())
        -> JSONDemandSource
    {
        .command(argv: ["/bin/sh", "-c", script], timeout: timeout, poll: PollPolicy(retries: 0), clock: clock.clock)
    }

    @Test(.timeLimit(.minutes(1))) func readsTheCommandsJSON() async {
        let s = source(#"printf '{"queues": {"Q": {"ready": 7, "notready": 2}}}'"#)
        let o = await s.observe("Q")
        #expect(o.counts == .known(WMSQueueCounts(ready: 7, notready: 2)))
        #expect(o.site == .known(.ok))
        #expect(await s.observe("OTHER").counts.missingReason?.contains("'OTHER' is not in its output") == true)
    }

    @Test(.timeLimit(.minutes(1))) func failureExitAndStderrAreReported() async {
        let o = await source("echo 'no credentials' >&2; exit 3").observe("Q")
        #expect(o.counts.missingReason?.contains("exited with status 3: no credentials") == true)
    }

    @Test(.timeLimit(.minutes(1))) func hangingCommandTimesOut() async {
        let started = ContinuousClock.now
        let o = await source("sleep 30", timeout: .seconds(1)).observe("Q")
        #expect(o.counts.missingReason?.contains("did not finish within 1 s") == true)
        // The shell and its `sleep` child are stopped together (a process group), so the call returns promptly.
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test(.timeLimit(.minutes(1))) func oldTimestampIsRefused() async {
        // The document says it was produced at 1,799,999,000: 1,000 s before the test clock's now.
        let o = await source(#"printf '{"timestamp": 1799999000, "queues": {"Q": 5}}'"#).observe("Q")
        #expect(o.counts.missingReason?.contains("1000 s old (maxage 360 s)") == true)
    }

    @Test(.timeLimit(.minutes(1))) func notJSONIsReported() async {
        let o = await source("echo hello").observe("Q")
        #expect(o.counts.missingReason?.contains("did not print JSON") == true)
    }
}

@Suite(.serialized) struct HTTPDemandSourceTests {
    @Test(.timeLimit(.minutes(1))) func readsTheURLsJSON() async throws {
        let server = try LocalHTTPServer { path, _ in
            path == "/demand.json"
                ? .init(status: 200, body: Data(#"{"queues": {"Q": {"ready": 21}}}"#.utf8)) : .init(status: 404, body: Data())
        }
        defer { server.stop() }
        let s = JSONDemandSource.http(url: server.baseURL + "/demand.json", timeout: .seconds(5), poll: PollPolicy(), clock: TestClock().clock)
        #expect(await s.observe("Q").counts.value?.ready == 21)
        let missing = JSONDemandSource.http(url: server.baseURL + "/nope", timeout: .seconds(5), poll: PollPolicy(retries: 0), clock: TestClock().clock)
        #expect(await missing.observe("Q").counts.missingReason?.contains("HTTP 404") == true)
    }
}

/// A fake batch driver: answers pending-job counts from a script of results.
final class FakePendingCounter: PendingJobCounting {
    private let answers: Mutex<[Result<Int, StatusError>]>
    private let seen = Mutex<[PendingJobSelector]>([])

    init(_ answers: [Result<Int, StatusError>]) { self.answers = Mutex(answers) }

    var selectors: [PendingJobSelector] { seen.withLock { $0 } }

    func pendingJobs(_ selector: PendingJobSelector) async throws(StatusError) -> Int {
        seen.withLock { $0.append(selector) }
        let next = answers.withLock { $0.isEmpty ? .failure(StatusError(.transport, "no more answers", retryable: false)) : $0.removeFirst() }
        return try next.get()
    }
}

struct BatchDemandSourceTests {
    @Test func pendingJobsAreTheDemandAndStaleCountsAreRefused() async {
        let down = StatusError(.transport, "ssh: host unreachable", retryable: false)
        let counter = FakePendingCounter([.success(17), .failure(down), .failure(down)])
        let clock = TestClock()
        let selector = PendingJobSelector(partition: "waiting")
        let s = BatchDemandSource(
            counter: counter, selector: selector, poll: PollPolicy(refreshAfter: .seconds(60), maxAge: .seconds(300), retries: 0),
            clock: clock.clock)
        let o = await s.observe("anything")
        #expect(o.counts == .known(WMSQueueCounts(ready: 17)))
        #expect(o.site == .known(.ok))
        #expect(counter.selectors == [selector])
        clock.advance(120)  // refresh fails; the 120 s old count is still used
        #expect(await s.observe("anything").counts.value?.ready == 17)
        clock.advance(200)  // 320 s old
        let stale = await s.observe("anything")
        #expect(stale.counts.missingReason?.contains("320 s old (maxage 300 s); last error: ssh: host unreachable") == true)
    }
}
