public import Foundation
public import GRDB

/// A pilot row: written with its client ID **before** the submit, updated as the batch system reports.
public struct PilotRecord: Sendable, Hashable, Codable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "pilot"

    /// Client-side ID (a ULID), carried into the batch job so it can be found without the batch ID.
    public var id: String
    public var tenant: String
    public var queue: String
    public var target: String
    public var state: PilotState
    public var batchID: String?
    /// The batch system's own state word (`PENDING`, `qw`, `R`, ...), as last reported.
    public var nativeState: String?
    public var exitCode: Int?
    public var reason: String?
    public var createdAt: Date
    public var submittedAt: Date?
    public var startedAt: Date?
    public var endedAt: Date?
    public var updatedAt: Date
    /// Submit attempts made for this intent.
    public var attempts: Int
    /// Set when apf-agent decided to cancel; cancels are re-issued until a terminal state is seen.
    public var cancelRequestedAt: Date?
    /// A `submitting` intent whose last attempt certainly did not queue it (a transient rejection): submit it again
    /// (same client ID) after this time. Nil for an intent in doubt.
    public var retryAt: Date? = nil
}

/// What to submit: one row per pilot, minted before any remote call.
public struct PilotIntent: Sendable, Hashable {
    public var id: String
    public var tenant: String
    public var queue: String
    public var target: String

    public init(id: String, tenant: String, queue: String, target: String) {
        self.id = id
        self.tenant = tenant
        self.queue = queue
        self.target = target
    }
}

/// One queue cycle: its inputs, the chain's trace and the decision.
public struct QueueCycleRecord: Sendable, Hashable, Codable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "queueCycle"

    public var id: Int64?
    public var queue: String
    public var tenant: String
    public var startedAt: Date
    /// The facts the chain read, as JSON (`{"wms":{"ready":…}, "batch":{…}, "site":…, ...}`).
    public var inputs: String
    /// APF's trace string.
    public var trace: String
    /// submit, retire, nothing or blocked.
    public var decision: String
    /// Pilots to submit (> 0) or retire (< 0); 0 when nothing or blocked.
    public var count: Int
    /// Why it blocked, or what was done.
    public var message: String?
    /// How many consecutive cycles decided exactly this (same decision and trace, no pilots submitted); the row is
    /// counted up instead of repeated (0003).
    public var repeats: Int = 1
    /// When the last of those cycles ran (nil: only `startedAt`).
    public var lastAt: Date? = nil

    /// When this decision was last made.
    public var lastSeenAt: Date { lastAt ?? startedAt }

    public init(
        queue: String, tenant: String, startedAt: Date, inputs: String, trace: String, decision: String, count: Int,
        message: String?
    ) {
        self.queue = queue
        self.tenant = tenant
        self.startedAt = startedAt
        self.inputs = inputs
        self.trace = trace
        self.decision = decision
        self.count = count
        self.message = message
    }

    /// A record of `decision` for `queue` at `time`, with the facts rendered as JSON.
    public init(queue: String, tenant: String, at time: Date, facts: CycleFacts, decision: ChainDecision) {
        let outcome: (String, Int, String?) =
            switch decision.outcome {
            case .submit(let n): ("submit", n, nil)
            case .retire(let n): ("retire", -n, nil)
            case .nothing: ("nothing", 0, nil)
            case .blocked(let plugin, let reasons): ("blocked", 0, "\(plugin): " + reasons.joined(separator: "; "))
            }
        self.init(
            queue: queue, tenant: tenant, startedAt: time, inputs: Self.json(facts).rendered(), trace: decision.trace,
            decision: outcome.0, count: outcome.1, message: outcome.2)
    }

    mutating public func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    static func json(_ f: CycleFacts) -> JSONValue {
        func fact<T>(_ x: Fact<T>, _ body: (T) -> JSONValue) -> JSONValue {
            switch x {
            case .known(let v): body(v)
            case .missing(let r): .object([("missing", .string(r))])
            }
        }
        return .object([
            (
                "wms",
                fact(f.wms) {
                    .object([
                        ("ready", .int($0.ready)), ("notready", .int($0.notready)), ("running", .int($0.running)),
                        ("done", .int($0.done)), ("failed", .int($0.failed)),
                    ])
                }
            ),
            ("site", fact(f.site) { .string($0.rawValue) }),
            (
                "batch",
                fact(f.batch) {
                    .object([
                        ("pending", .int($0.pending)), ("running", .int($0.running)), ("held", .int($0.held)),
                        ("retiring", .int($0.retiring)),
                    ])
                }
            ),
            ("factoryTotal", fact(f.factoryTotal) { .int($0) }),
            ("recentRuns", fact(f.history) { .int($0.runs.count) }),
        ])
    }
}

/// A journal event: a state change, a submit, a cancel, an error — for `status`, logs and post-mortems.
public struct EventRecord: Sendable, Hashable, Codable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "event"

    public var id: Int64?
    public var at: Date
    /// info, warning, error.
    public var level: String
    /// A stable word: intent, submitted, submit-failed, state, cancel-requested, ...
    public var kind: String
    public var queue: String?
    public var target: String?
    public var pilotID: String?
    public var message: String

    public init(
        at: Date, level: String = "info", kind: String, queue: String? = nil, target: String? = nil,
        pilotID: String? = nil, message: String
    ) {
        self.at = at
        self.level = level
        self.kind = kind
        self.queue = queue
        self.target = target
        self.pilotID = pilotID
        self.message = message
    }

    mutating public func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

/// The apfmon columns of `apf-agent status` for one queue.
public struct QueueStatusRow: Sendable, Hashable {
    public var queue: String
    /// Intents without a batch ID yet (submitting).
    public var created: Int
    /// Queued, including held.
    public var pending: Int
    public var held: Int
    public var running: Int
    public var exiting: Int
    /// Ended well / badly within the last hour.
    public var done1h: Int
    public var fault1h: Int
    /// The last cycle's trace or reason, and when.
    public var lastMessage: String?
    public var lastMessageAt: Date?
}
