public import Foundation
import Synchronization

/// Demand set in process: for embedders that compute demand themselves, tests and simulations. A queue without a
/// value is *missing* (its chain blocks), never 0.
public final class InMemoryDemandSource: WMSStatusSource {
    private let values = Mutex<[String: (WMSQueueCounts, SiteStatus)]>([:])
    private let now: @Sendable () -> Date

    public init(now: @escaping @Sendable () -> Date = { Date() }) { self.now = now }

    /// Sets the demand of `wmsQueue` (activated jobs → `ready`).
    public func set(_ wmsQueue: String, ready: Int, status: SiteStatus = .online) {
        values.withLock { $0[wmsQueue] = (WMSQueueCounts(ready: ready), status) }
    }

    public func set(_ wmsQueue: String, counts: WMSQueueCounts, status: SiteStatus = .online) {
        values.withLock { $0[wmsQueue] = (counts, status) }
    }

    public func remove(_ wmsQueue: String) { _ = values.withLock { $0.removeValue(forKey: wmsQueue) } }

    public func observe(_ wmsQueue: String) async -> WMSObservation {
        guard let (counts, status) = values.withLock({ $0[wmsQueue] }) else {
            return .missing("no demand set for '\(wmsQueue)'")
        }
        return WMSObservation(counts: .known(counts), site: .known(status), asOf: now())
    }
}
