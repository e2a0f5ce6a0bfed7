public import Foundation

/// A value the scheduler may or may not have. Missing information is explicit and carries its reason, so a
/// decision that needs it blocks instead of reading it as 0 (APF.md §3.1, §11).
public enum Fact<Value: Sendable>: Sendable {
    case known(Value)
    case missing(String)

    public var value: Value? {
        if case .known(let v) = self { return v }
        return nil
    }

    public var missingReason: String? {
        if case .missing(let r) = self { return r }
        return nil
    }
}

extension Fact: Equatable where Value: Equatable {}

/// WMS demand for one WMS queue (APF's `{notready, ready, running, done, failed}`).
public struct WMSQueueCounts: Sendable, Hashable, Codable {
    /// Jobs ready to run (PanDA `activated`): the demand `Ready` reads.
    public var ready: Int
    public var notready: Int
    public var running: Int
    public var done: Int
    public var failed: Int

    public init(ready: Int, notready: Int = 0, running: Int = 0, done: Int = 0, failed: Int = 0) {
        self.ready = ready
        self.notready = notready
        self.running = running
        self.done = done
        self.failed = failed
    }

    /// APF's WMS job classes.
    public enum Bucket: String, Sendable, Hashable, CaseIterable {
        case ready, notready, running, done, failed
    }

    public mutating func add(_ n: Int, to bucket: Bucket) {
        switch bucket {
        case .ready: ready += n
        case .notready: notready += n
        case .running: running += n
        case .done: done += n
        case .failed: failed += n
        }
    }
}

/// The WMS site status: PanDA's `online`, `offline`, `test` (or another word it may send); `ok` for sources that
/// have no notion of status (HTCondor, batch demand).
public struct SiteStatus: Sendable, Hashable, Codable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }
    public var description: String { rawValue }

    public static let online: SiteStatus = "online"
    public static let offline: SiteStatus = "offline"
    public static let test: SiteStatus = "test"
    public static let ok: SiteStatus = "ok"
}

/// Pilots of one APF queue in the batch system (APF's `{pending, running}`, plus held and retiring apart).
public struct BatchQueueCounts: Sendable, Hashable, Codable {
    /// Not yet running. Includes held pilots, as APF counted them (so a held backlog throttles `Ready`).
    public var pending: Int
    public var running: Int
    /// Of `pending`, how many are held (shown apart; APF.md §3.2).
    public var held: Int
    /// Of `running`, how many are draining (VM queues).
    public var retiring: Int

    public init(pending: Int, running: Int, held: Int = 0, retiring: Int = 0) {
        self.pending = pending
        self.running = running
        self.held = held
        self.retiring = retiring
    }
}

/// Pilots of the queue that started recently and have finished, for the `Throttle` black-hole guard.
public struct PilotHistory: Sendable, Hashable {
    public struct Run: Sendable, Hashable {
        public var startedAt: Date
        public var wallSeconds: Double
        public init(startedAt: Date, wallSeconds: Double) {
            self.startedAt = startedAt
            self.wallSeconds = wallSeconds
        }
    }

    public var now: Date
    /// Finished pilots, at least those started within the longest Throttle interval of the chain.
    public var runs: [Run]

    public init(now: Date, runs: [Run]) {
        self.now = now
        self.runs = runs
    }
}

/// Everything a scheduler chain may read in one cycle. Pure data: the chain does no I/O and reads no clock.
public struct CycleFacts: Sendable {
    public var wms: Fact<WMSQueueCounts>
    public var site: Fact<SiteStatus>
    public var batch: Fact<BatchQueueCounts>
    /// Σ(pending + running) over every queue of this factory on the same schedd/target, for `MaxPerFactory`.
    public var factoryTotal: Fact<Int>
    public var history: Fact<PilotHistory>

    public init(
        wms: Fact<WMSQueueCounts>, site: Fact<SiteStatus>, batch: Fact<BatchQueueCounts>,
        factoryTotal: Fact<Int>, history: Fact<PilotHistory>
    ) {
        self.wms = wms
        self.site = site
        self.batch = batch
        self.factoryTotal = factoryTotal
        self.history = history
    }

    /// Facts as `apf-simulate-scheds` builds them: every input known.
    public static func simulated(
        activated: Int, pending: Int, running: Int, status: SiteStatus = .online, factoryTotal: Int? = nil,
        history: PilotHistory? = nil
    ) -> CycleFacts {
        CycleFacts(
            wms: .known(WMSQueueCounts(ready: activated)), site: .known(status),
            batch: .known(BatchQueueCounts(pending: pending, running: running)),
            factoryTotal: .known(factoryTotal ?? pending + running),
            history: .known(history ?? PilotHistory(now: Date(timeIntervalSince1970: 0), runs: [])))
    }
}
