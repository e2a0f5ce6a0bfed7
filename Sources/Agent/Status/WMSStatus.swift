public import Foundation

/// Where a queue's demand comes from (APF's WMS status plugins, APF.md §3.1). One instance serves every queue that
/// uses the same endpoint (a singleton per endpoint, as in APF).
public protocol WMSStatusSource: Sendable {
    /// Demand and site status of one WMS queue. Stale or missing information is `.missing` with its reason, never 0.
    func observe(_ wmsQueue: String) async -> WMSObservation
}

/// One WMS queue as seen by a status source.
public struct WMSObservation: Sendable, Equatable {
    public var counts: Fact<WMSQueueCounts>
    public var site: Fact<SiteStatus>
    /// When the information was produced (or fetched), if known.
    public var asOf: Date?

    public init(counts: Fact<WMSQueueCounts>, site: Fact<SiteStatus>, asOf: Date?) {
        self.counts = counts
        self.site = site
        self.asOf = asOf
    }

    public static func missing(_ reason: String) -> WMSObservation {
        WMSObservation(counts: .missing(reason), site: .missing(reason), asOf: nil)
    }
}

/// A status fetch that failed: a stable code, and a message that says what happened.
public struct StatusError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let id: String
        public init(_ id: String) { self.id = id }
        public var description: String { id }

        public static let timeout = Code("status.timeout")
        public static let transport = Code("status.transport")
        public static let http = Code("status.http")
        public static let badResponse = Code("status.bad-response")
        public static let command = Code("status.command")
        public static let stale = Code("status.stale")
        public static let cancelled = Code("status.cancelled")
    }

    public var code: Code
    public var message: String
    /// Whether trying again may help (timeouts, connection failures, HTTP 5xx and 429).
    public var isRetryable: Bool

    public init(_ code: Code, _ message: String, retryable: Bool) {
        self.code = code
        self.message = message
        self.isRetryable = retryable
    }

    public var description: String { "[\(code.id)] \(message)" }
    public static func == (a: Self, b: Self) -> Bool { a.code == b.code }
}

/// How a polled source refreshes and when it refuses its information (APF's `sleep` and `maxage`).
public struct PollPolicy: Sendable, Hashable {
    /// Information younger than this is reused without asking again (APF's poll interval, 150 s).
    public var refreshAfter: Duration
    /// Information older than this is refused: the queue's decision blocks (APF's `maxage`, 360 s).
    public var maxAge: Duration
    /// Extra attempts after a retryable failure, with exponential back-off from `backoff`.
    public var retries: Int
    public var backoff: Duration

    public init(
        refreshAfter: Duration = .seconds(150), maxAge: Duration = .seconds(360), retries: Int = 2,
        backoff: Duration = .seconds(1)
    ) {
        self.refreshAfter = refreshAfter
        self.maxAge = maxAge
        self.retries = retries
        self.backoff = backoff
    }
}

/// Time for polled sources: the wall clock and sleeping, injectable so tests run instantly.
public struct StatusClock: Sendable {
    public var now: @Sendable () -> Date
    public var sleep: @Sendable (Duration) async throws -> Void

    public init(now: @escaping @Sendable () -> Date, sleep: @escaping @Sendable (Duration) async throws -> Void) {
        self.now = now
        self.sleep = sleep
    }

    public static let system = StatusClock(now: { Date() }, sleep: { try await Task.sleep(for: $0) })
}

extension Duration {
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}

/// A snapshot fetched from an endpoint, reused until `refreshAfter`, refused after `maxAge`; one fetch at a time
/// (callers that arrive during a fetch wait for it); retryable failures are retried with exponential back-off.
actor PolledSnapshot<Value: Sendable> {
    private let policy: PollPolicy
    private let clock: StatusClock
    private let fetch: @Sendable () async throws(StatusError) -> Value
    private var stored: (value: Value, at: Date)?
    private var lastError: StatusError?
    private var inflight: Task<Void, Never>?
    private(set) var fetches = 0

    init(policy: PollPolicy, clock: StatusClock, fetch: @escaping @Sendable () async throws(StatusError) -> Value) {
        self.policy = policy
        self.clock = clock
        self.fetch = fetch
    }

    /// The snapshot and its time, or why there is none that may be used.
    func current() async -> Result<(value: Value, at: Date), StatusError> {
        if let s = stored, clock.now().timeIntervalSince(s.at) < policy.refreshAfter.seconds {
            return .success(s)
        }
        if let running = inflight {
            await running.value
        } else {
            let task = Task { await self.refresh() }
            inflight = task
            await task.value
            inflight = nil
        }
        if let s = stored {
            let age = clock.now().timeIntervalSince(s.at)
            if age <= policy.maxAge.seconds { return .success(s) }
            let last = lastError.map { "; last error: \($0.message)" } ?? ""
            return .failure(
                StatusError(
                    .stale,
                    "information is \(Int(age)) s old (maxage \(Int(policy.maxAge.seconds)) s)\(last)", retryable: true))
        }
        return .failure(lastError ?? StatusError(.transport, "no information yet", retryable: true))
    }

    private func refresh() async {
        var delay = policy.backoff
        for attempt in 0...max(0, policy.retries) {
            fetches += 1
            do {
                let value = try await fetch()
                stored = (value, clock.now())
                lastError = nil
                return
            } catch {
                lastError = error
                guard error.isRetryable, attempt < policy.retries else { return }
                try? await clock.sleep(delay)
                delay = delay * 2
            }
        }
    }
}
