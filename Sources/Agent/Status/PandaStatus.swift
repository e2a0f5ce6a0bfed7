import Foundation

/// PanDA job statistics per site, as APF's `Panda` WMS status plugin read them (APF.md §3.1), from the server's JSON
/// API instead of pickles. One instance per PanDA server serves every queue.
///
/// - Job statistics: `GET <url>/getJobStatisticsWithLabel` — `{site: {label: {jobStatus: n}}}`, summed over labels
///   (APF asked for all labels because the per-site call hides some, e.g. `rc_test`); the per-site shape
///   `{site: {jobStatus: n}}` is accepted too, and so is the `{"success": …, "data": …}` envelope of newer servers.
/// - Site status: `GET <url>/getSiteSpecs?siteType=all` — `{site: {"status": "online"|"offline"|"test", …}}`.
///
/// Mapping: activated → ready; pending, defined, assigned, waiting, throttled → notready; starting, sent, running,
/// holding, transferring → running; finished → done; failed, cancelled → failed. Other states are not counted.
public actor PandaStatusSource: WMSStatusSource {
    public struct Settings: Sendable, Hashable {
        /// The API base, e.g. `http://pandaserver.cern.ch:25080/server/panda`.
        public var baseURL: String
        public var timeout: Duration
        public var poll: PollPolicy
        /// Also read site specs (for StatusTest/StatusOffline, and to tell a site with no jobs from an unknown one).
        public var siteSpecs: Bool

        public init(baseURL: String, timeout: Duration = .seconds(30), poll: PollPolicy = PollPolicy(), siteSpecs: Bool = true) {
            self.baseURL = baseURL
            self.timeout = timeout
            self.poll = poll
            self.siteSpecs = siteSpecs
        }

        public init(_ s: PandaSettings) {
            self.init(
                baseURL: s.url, timeout: .seconds(s.timeout),
                poll: PollPolicy(refreshAfter: .seconds(s.sleep), maxAge: .seconds(s.maxAge), retries: s.retries),
                siteSpecs: s.siteSpecs)
        }
    }

    /// APF's `[PANDAWMSSTATUS-JOBSSTATISTICSPERSITE2INFO]` table.
    public static let stateMapping: [String: WMSQueueCounts.Bucket] = [
        "activated": .ready,
        "pending": .notready, "defined": .notready, "assigned": .notready, "waiting": .notready,
        "throttled": .notready,
        "starting": .running, "sent": .running, "running": .running, "holding": .running, "transferring": .running,
        "finished": .done,
        "failed": .failed, "cancelled": .failed,
    ]

    private let jobs: PolledSnapshot<[String: WMSQueueCounts]>
    private let sites: PolledSnapshot<[String: SiteStatus]>?

    public init(_ settings: Settings, http: any HTTPFetching = URLSessionFetcher(), clock: StatusClock = .system) {
        let base = settings.baseURL.hasSuffix("/") ? String(settings.baseURL.dropLast()) : settings.baseURL
        let timeout = settings.timeout
        jobs = PolledSnapshot(policy: settings.poll, clock: clock) { () async throws(StatusError) in
            let body = try await Self.get(http, base + "/getJobStatisticsWithLabel", timeout)
            return try Self.parseJobStatistics(body)
        }
        sites =
            settings.siteSpecs
            ? PolledSnapshot(policy: settings.poll, clock: clock) { () async throws(StatusError) in
                let body = try await Self.get(http, base + "/getSiteSpecs?siteType=all", timeout)
                return try Self.parseSiteSpecs(body)
            } : nil
    }

    public func observe(_ wmsQueue: String) async -> WMSObservation {
        let stats = await jobs.current()
        let specs = await sites?.current()
        var site: Fact<SiteStatus> = .missing("site specs are not read (wmsstatus.panda.sitespecs = False)")
        var siteKnown = false
        switch specs {
        case .success(let s)?:
            if let status = s.value[wmsQueue] {
                site = .known(status)
                siteKnown = true
            } else {
                site = .missing("site \(wmsQueue) is not in PanDA's site specs")
            }
        case .failure(let e)?:
            site = .missing("PanDA site specs: \(e.message)")
        case nil:
            break
        }
        switch stats {
        case .success(let s):
            if let counts = s.value[wmsQueue] {
                return WMSObservation(counts: .known(counts), site: site, asOf: s.at)
            }
            // A known site with no jobs has zero of everything; an unknown site is unknown, never 0.
            if siteKnown { return WMSObservation(counts: .known(WMSQueueCounts(ready: 0)), site: site, asOf: s.at) }
            return WMSObservation(
                counts: .missing("site \(wmsQueue) is not in PanDA's job statistics"), site: site, asOf: s.at)
        case .failure(let e):
            return WMSObservation(counts: .missing("PanDA job statistics: \(e.message)"), site: site, asOf: nil)
        }
    }

    /// HTTP fetches made so far (job statistics, site specs), for tests and metrics.
    public func fetchCounts() async -> (jobs: Int, sites: Int) {
        (await jobs.fetches, await sites?.fetches ?? 0)
    }

    static func get(_ http: any HTTPFetching, _ url: String, _ timeout: Duration) async throws(StatusError) -> Data {
        guard let u = URL(string: url) else {
            throw StatusError(.badResponse, "'\(url)' is not a valid URL", retryable: false)
        }
        let (status, body) = try await http.get(u, timeout: timeout)
        guard status == 200 else {
            throw StatusError(
                .http, "GET \(url) answered HTTP \(status)", retryable: status >= 500 || status == 429 || status == 0)
        }
        return body
    }

    /// Unwraps `{"success": true, "data": {...}}`; a bare object is returned as is.
    static func payload(_ body: Data, what: String) throws(StatusError) -> [String: Any] {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: body)
        } catch {
            throw StatusError(.badResponse, "\(what) is not JSON (\(body.count) bytes)", retryable: true)
        }
        guard let dict = object as? [String: Any] else {
            throw StatusError(.badResponse, "\(what) is not a JSON object", retryable: true)
        }
        if let success = dict["success"] as? Bool, dict.keys.contains("data") {
            guard success, let data = dict["data"] as? [String: Any] else {
                let message = dict["message"] as? String ?? ""
                throw StatusError(.badResponse, "\(what): the server reported failure \(message)", retryable: true)
            }
            return data
        }
        return dict
    }

    static func count(_ v: Any) -> Int? {
        if let i = v as? Int { return i }
        if let d = v as? Double, d == d.rounded() { return Int(d) }
        return nil
    }

    static func parseJobStatistics(_ body: Data) throws(StatusError) -> [String: WMSQueueCounts] {
        let data = try payload(body, what: "PanDA job statistics")
        var out: [String: WMSQueueCounts] = [:]
        for (site, value) in data {
            guard let byKey = value as? [String: Any] else { continue }
            var counts = WMSQueueCounts(ready: 0)
            func add(_ states: [String: Any]) {
                for (state, n) in states {
                    guard let bucket = stateMapping[state], let n = count(n), n >= 0 else { continue }
                    counts.add(n, to: bucket)
                }
            }
            if byKey.values.allSatisfy({ count($0) != nil }) {
                add(byKey)  // {site: {jobStatus: n}}
            } else {
                for labelCounts in byKey.values {  // {site: {label: {jobStatus: n}}}: sum every label
                    if let states = labelCounts as? [String: Any] { add(states) }
                }
            }
            out[site] = counts
        }
        return out
    }

    static func parseSiteSpecs(_ body: Data) throws(StatusError) -> [String: SiteStatus] {
        let data = try payload(body, what: "PanDA site specs")
        var out: [String: SiteStatus] = [:]
        for (site, value) in data {
            if let spec = value as? [String: Any], let status = spec["status"] as? String {
                out[site] = SiteStatus(status)
            }
        }
        return out
    }
}
