public import Foundation
public import GRDB

/// A pilot as the loop reads it: the columns it decides on, without the rest of the row.
public struct LivePilot: Sendable, Hashable {
    public var id: String
    public var tenant: String
    public var queue: String
    public var target: String
    public var state: PilotState
    public var batchID: String?
    public var createdAt: Date
    public var updatedAt: Date
    public var cancelRequestedAt: Date?
    public var retryAt: Date?
    public var attempts: Int
}

/// One change the loop records about a pilot. Several are written in one transaction (`AgentStore.apply`).
public enum PilotChange: Sendable, Hashable {
    /// The target accepted the pilot and returned its batch ID (the pilot becomes `pending` if it was `submitting`).
    case accepted(id: String, batchID: String)
    /// A state seen on the target (forward-only; details recorded).
    case observed(id: String, state: PilotState, nativeState: String?, exitCode: Int?, reason: String?)
    /// The target refused the pilot for good: `failed`.
    case rejected(id: String, reason: String)
    /// The submit's outcome is unknown: the intent stays `submitting` (in doubt) until it is found or missed.
    case inDoubt(id: String, reason: String)
    /// Certainly not queued, but it may work later: the intent waits for a retry with the same client ID.
    case retryLater(id: String, reason: String, at: Date)
    /// A new attempt of a waiting intent begins (committed before the remote call).
    case attempt(id: String)
    /// An intent in doubt that was not found on its target within the grace period.
    case missed(id: String, reason: String)
    /// An intent that was never submitted and is not wanted any more (a retire took it): `cancelled`.
    case dropped(id: String, reason: String)
}

/// Pilot counts of one queue, tenant or target, as the loop and its limits read them.
public struct PilotCounts: Sendable, Hashable {
    /// `submitting` (intents: in doubt, in flight or waiting for a retry).
    public var created = 0
    /// `pending` + `held`.
    public var queued = 0
    public var held = 0
    /// `running` + `exiting`.
    public var running = 0
    /// Of the above, pilots being cancelled: not counted as capacity by the chain.
    public var leaving = 0
    public var leavingQueued = 0

    public init() {}

    /// Everything that has not ended.
    public var live: Int { created + queued + running }
    /// What the chain sees: pilots being cancelled are on their way out, so they do not count as capacity.
    public var forChain: BatchQueueCounts {
        BatchQueueCounts(
            pending: created + queued - leavingQueued, running: running - (leaving - leavingQueued), held: held)
    }
}

/// A target's health as the daemon last recorded it (for `apf-agent status`).
public struct TargetHealthRecord: Sendable, Hashable, Codable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "targetHealth"
    public var target: String
    /// `ok` or `backing-off`.
    public var state: String
    public var reason: String?
    public var failures: Int
    public var nextTryAt: Date?
    public var accounting: String?
    public var lastPollAt: Date?
    public var updatedAt: Date

    public init(target: String, state: String, reason: String?, failures: Int, nextTryAt: Date?, accounting: String?,
                lastPollAt: Date?, updatedAt: Date) {
        self.target = target
        self.state = state
        self.reason = reason
        self.failures = failures
        self.nextTryAt = nextTryAt
        self.accounting = accounting
        self.lastPollAt = lastPollAt
        self.updatedAt = updatedAt
    }
}

/// A queue switched on or off by `apf-agent queue enable|disable`; it overrides the file's `enabled`.
public struct QueueControlRecord: Sendable, Hashable, Codable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "queueControl"
    public var queue: String
    public var enabled: Bool
    public var updatedAt: Date
    public var note: String?

    public init(queue: String, enabled: Bool, updatedAt: Date, note: String?) {
        self.queue = queue
        self.enabled = enabled
        self.updatedAt = updatedAt
        self.note = note
    }
}

extension AgentStore {
    static let liveStates = "('submitting','pending','held','running','exiting')"

    private static func live(_ row: Row) -> LivePilot {
        LivePilot(
            id: row[0], tenant: row[1], queue: row[2], target: row[3],
            state: PilotState(rawValue: row[4]) ?? .pending, batchID: row[5], createdAt: row[6], updatedAt: row[7],
            cancelRequestedAt: row[8], retryAt: row[9], attempts: row[10])
    }

    private static let liveColumns =
        "id, tenant, queue, target, state, batchID, createdAt, updatedAt, cancelRequestedAt, retryAt, attempts"

    // MARK: - Reading

    /// Pilots of `target` that have not ended (one light row each).
    public func livePilots(onTarget target: String) throws(StoreError) -> [LivePilot] {
        try read { db in
            try Row.fetchAll(
                db.cachedStatement(
                    sql: "SELECT \(Self.liveColumns) FROM pilot WHERE target = ? AND state IN \(Self.liveStates)"),
                arguments: [target]
            ).map(Self.live)
        }
    }

    /// Pilots of `queue` that have not ended.
    public func livePilots(queue: String) throws(StoreError) -> [LivePilot] {
        try read { db in
            try Row.fetchAll(
                db.cachedStatement(
                    sql: "SELECT \(Self.liveColumns) FROM pilot WHERE queue = ? AND state IN \(Self.liveStates)"),
                arguments: [queue]
            ).map(Self.live)
        }
    }

    /// Every intent whose outcome is unknown (state `submitting`, not waiting for a retry), oldest first.
    public func intentsInDoubt(target: String? = nil) throws(StoreError) -> [LivePilot] {
        try read { db in
            var sql = "SELECT \(Self.liveColumns) FROM pilot WHERE state = 'submitting' AND retryAt IS NULL"
            var args: StatementArguments = []
            if let target {
                sql += " AND target = ?"
                args = [target]
            }
            return try Row.fetchAll(db, sql: sql + " ORDER BY createdAt, id", arguments: args).map(Self.live)
        }
    }

    /// Counts of the pilots of one queue, tenant or target that have not ended.
    public func counts(queue: String) throws(StoreError) -> PilotCounts { try counts(column: "queue", value: queue) }
    public func counts(tenant: String) throws(StoreError) -> PilotCounts { try counts(column: "tenant", value: tenant) }
    public func counts(target: String) throws(StoreError) -> PilotCounts { try counts(column: "target", value: target) }

    private func counts(column: String, value: String) throws(StoreError) -> PilotCounts {
        try read { db in
            let rows = try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT state, cancelRequestedAt IS NOT NULL, COUNT(*) FROM pilot
                        WHERE \(column) = ? AND state IN \(Self.liveStates) GROUP BY 1, 2
                        """), arguments: [value])
            var c = PilotCounts()
            for r in rows {
                let n: Int = r[2]
                let leaving: Bool = r[1]
                switch PilotState(rawValue: r[0]) {
                case .submitting?: c.created += n
                case .pending?: c.queued += n
                case .held?:
                    c.queued += n
                    c.held += n
                case .running?, .exiting?: c.running += n
                default: continue
                }
                if leaving {
                    c.leaving += n
                    if r[0] as String != PilotState.running.rawValue, r[0] as String != PilotState.exiting.rawValue {
                        c.leavingQueued += n
                    }
                }
            }
            return c
        }
    }

    /// The newest client ID with this tag prefix (`apf-…`), to seed the minter after a restart.
    public func newestPilotID(prefix: String) throws(StoreError) -> String? {
        try read { db in
            try String.fetchOne(
                db, sql: "SELECT id FROM pilot WHERE id >= ? AND id < ? ORDER BY id DESC LIMIT 1",
                arguments: [prefix, prefix + "\u{7f}"])
        }
    }

    /// Intents of `queue` waiting for a retry that is due, oldest first.
    public func dueRetries(queue: String, now: Date, limit: Int) throws(StoreError) -> [LivePilot] {
        guard limit > 0 else { return [] }
        return try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT \(Self.liveColumns) FROM pilot WHERE queue = ? AND state = 'submitting'
                    AND retryAt IS NOT NULL AND retryAt <= ? AND cancelRequestedAt IS NULL ORDER BY createdAt, id LIMIT ?
                    """, arguments: [queue, now, limit]
            ).map(Self.live)
        }
    }

    /// Intents of `queue` waiting for a retry (never submitted): the cheapest pilots to retire, newest first.
    public func waitingIntents(queue: String, limit: Int) throws(StoreError) -> [LivePilot] {
        guard limit > 0 else { return [] }
        return try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT \(Self.liveColumns) FROM pilot WHERE queue = ? AND state = 'submitting'
                    AND retryAt IS NOT NULL ORDER BY createdAt DESC, id DESC LIMIT ?
                    """, arguments: [queue, limit]
            ).map(Self.live)
        }
    }

    // MARK: - Writing

    /// Records intents and the cycle that decided them in one transaction, committed before anything is submitted.
    @discardableResult
    public func recordCycle(_ cycle: QueueCycleRecord, intents: [PilotIntent], at time: Date) throws(StoreError)
        -> QueueCycleRecord
    {
        try write { db in
            var c = cycle
            try c.insert(db)
            for i in intents {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO pilot (id, tenant, queue, target, state, createdAt, updatedAt, attempts)
                        VALUES (?, ?, ?, ?, 'submitting', ?, ?, 1)
                        """
                ).execute(arguments: [i.id, i.tenant, i.queue, i.target, time, time])
            }
            if let first = intents.first {
                var e = EventRecord(
                    at: time, kind: "intent", queue: first.queue, target: first.target,
                    message: "intent to submit \(intents.count) pilot\(intents.count == 1 ? "" : "s")")
                try e.insert(db)
            }
            return c
        }
    }

    /// Applies `changes` in one transaction (forward-only, as `transition`); returns the pilots whose state changed,
    /// with their new state.
    @discardableResult
    public func apply(_ changes: [PilotChange], at time: Date) throws(StoreError) -> [(id: String, state: PilotState)] {
        guard !changes.isEmpty else { return [] }
        return try write { db in
            var changed: [(id: String, state: PilotState)] = []
            for change in changes {
                let id: String
                switch change {
                case .accepted(let i, _), .observed(let i, _, _, _, _), .rejected(let i, _), .inDoubt(let i, _),
                    .retryLater(let i, _, _), .attempt(let i), .missed(let i, _), .dropped(let i, _):
                    id = i
                }
                guard var row = try PilotRecord.fetchOne(db, key: id) else { continue }
                let before = row.state
                var kind = "state"
                var level = "info"
                var message: String?
                switch change {
                case .accepted(_, let batchID):
                    if row.batchID == nil || row.batchID == batchID {
                        row.batchID = batchID
                        row.submittedAt = row.submittedAt ?? time
                        row.retryAt = nil
                        _ = Self.move(&row, to: .pending, at: time)
                        kind = "submitted"
                        message = "batch ID \(batchID)"
                    }
                case .observed(_, let state, let native, let exit, let reason):
                    if state == row.state, native == nil || native == row.nativeState { continue }
                    let r = Self.move(&row, to: state, at: time)
                    if case .applied(let from, let synth) = r {
                        let via = synth.isEmpty ? "" : " (synthesized: \(synth.map(\.rawValue).joined(separator: ", ")))"
                        message = "\(from.rawValue) → \(state.rawValue)\(via)"
                    }
                    row.nativeState = native ?? row.nativeState
                    row.exitCode = exit ?? row.exitCode
                    if message != nil { row.reason = reason ?? row.reason }
                case .rejected(_, let why):
                    guard row.state == .submitting else { continue }
                    row.reason = why
                    row.retryAt = nil
                    _ = Self.move(&row, to: .failed, at: time)
                    kind = "submit-failed"
                    level = "warning"
                    message = "rejected: \(why)"
                case .inDoubt(_, let why):
                    guard row.state == .submitting else { continue }
                    row.reason = why
                    row.retryAt = nil
                    row.updatedAt = time
                    kind = "submit-failed"
                    level = "warning"
                    message = "outcome unknown: \(why)"
                case .retryLater(_, let why, let at):
                    guard row.state == .submitting else { continue }
                    row.reason = why
                    row.retryAt = at
                    row.updatedAt = time
                    kind = "submit-failed"
                    level = "warning"
                    message = "not queued, retry after \(at): \(why)"
                case .attempt:
                    guard row.state == .submitting else { continue }
                    row.retryAt = nil
                    row.attempts += 1
                    row.updatedAt = time
                    kind = "attempt"
                    message = "submit attempt \(row.attempts)"
                case .missed(_, let why):
                    guard row.state == .submitting else { continue }
                    row.reason = why
                    _ = Self.move(&row, to: .missed, at: time)
                    message = "submitting → missed: \(why)"
                case .dropped(_, let why):
                    guard row.state == .submitting, row.batchID == nil else { continue }
                    row.reason = why
                    row.cancelRequestedAt = row.cancelRequestedAt ?? time
                    _ = Self.move(&row, to: .cancelled, at: time)
                    message = "submitting → cancelled (never submitted): \(why)"
                }
                try row.update(db)
                if let message {
                    var e = EventRecord(
                        at: time, level: level, kind: kind, queue: row.queue, target: row.target, pilotID: id,
                        message: message)
                    try e.insert(db)
                }
                if row.state != before { changed.append((id, row.state)) }
            }
            return changed
        }
    }

    // MARK: - Queue control and target health

    public func queueControls() throws(StoreError) -> [String: QueueControlRecord] {
        try read { db in
            Dictionary(uniqueKeysWithValues: try QueueControlRecord.fetchAll(db).map { ($0.queue, $0) })
        }
    }

    public func setQueueControl(_ queue: String, enabled: Bool, note: String?, at time: Date) throws(StoreError) {
        try write { db in
            try QueueControlRecord(queue: queue, enabled: enabled, updatedAt: time, note: note).save(db)
            var e = EventRecord(
                at: time, kind: enabled ? "queue-enabled" : "queue-disabled", queue: queue,
                message: "queue \(enabled ? "enabled" : "disabled")\(note.map { ": \($0)" } ?? "")")
            try e.insert(db)
        }
    }

    public func targetHealth() throws(StoreError) -> [TargetHealthRecord] {
        try read { db in try TargetHealthRecord.order(Column("target")).fetchAll(db) }
    }

    public func saveTargetHealth(_ records: [TargetHealthRecord]) throws(StoreError) {
        guard !records.isEmpty else { return }
        try write { db in for r in records { try r.save(db) } }
    }

    /// Small key/value facts about the factory (the daemon's pid, start time, last configuration result).
    public func setFactoryState(_ values: [String: String], at time: Date) throws(StoreError) {
        try write { db in
            for (k, v) in values {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO factoryState (key, value, updatedAt) VALUES (?, ?, ?)",
                    arguments: [k, v, time])
            }
        }
    }

    public func factoryState() throws(StoreError) -> [String: String] {
        try read { db in
            var out: [String: String] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT key, value FROM factoryState") { out[r[0]] = r[1] }
            return out
        }
    }

    /// The last cycle of every queue (one query).
    public func lastCycles() throws(StoreError) -> [String: QueueCycleRecord] {
        try read { db in
            let rows = try QueueCycleRecord.fetchAll(
                db,
                sql: """
                    SELECT c.* FROM queueCycle c
                    JOIN (SELECT queue, MAX(id) AS id FROM queueCycle GROUP BY queue) m ON c.id = m.id
                    """)
            return Dictionary(rows.map { ($0.queue, $0) }, uniquingKeysWith: { a, _ in a })
        }
    }
}
