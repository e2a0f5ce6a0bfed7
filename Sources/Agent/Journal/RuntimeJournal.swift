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

/// What the forward-only rule (`AgentStore.move`) changes in a pilot row, whatever the row's date type.
protocol PilotTimes {
    associatedtype Stamp
    var state: PilotState { get set }
    var startedAt: Stamp? { get set }
    var endedAt: Stamp? { get set }
    var updatedAt: Stamp { get set }
}

extension PilotRecord: PilotTimes {}

/// A pilot row with its dates kept as the journal's text: the loop rewrites rows without parsing and reformatting
/// the dates it does not change.
struct RawPilotRow: PilotTimes {
    var id: String
    var queue: String
    var target: String
    var state: PilotState
    var batchID: String?
    var nativeState: String?
    var exitCode: Int?
    var reason: String?
    var submittedAt: String?
    var startedAt: String?
    var endedAt: String?
    var updatedAt: String
    var attempts: Int
    var cancelRequestedAt: String?
    var retryAt: String?
}

/// Dates as GRDB stores them ("yyyy-MM-dd HH:mm:ss.SSS", UTC) without a DateFormatter: the loop writes many.
enum JournalDate {
    static func text(_ d: Date?) -> String? {
        guard let d else { return nil }
        // Rounded to the nearest millisecond from the reference date, as GRDB's DateFormatter does.
        let totalMs = Int((d.timeIntervalSinceReferenceDate * 1000).rounded()) + 978_307_200_000
        let secs = totalMs >= 0 ? totalMs / 1000 : (totalMs - 999) / 1000
        let ms = totalMs - secs * 1000
        let (year, month, day, rem) = civil(secs)
        var b = [UInt8](repeating: 0, count: 23)
        func put(_ v: Int, _ at: Int, _ width: Int) {
            var v = v
            for i in stride(from: at + width - 1, through: at, by: -1) {
                b[i] = UInt8(48 + v % 10)
                v /= 10
            }
        }
        put(year, 0, 4); b[4] = 45; put(month, 5, 2); b[7] = 45; put(day, 8, 2); b[10] = 32
        put(rem / 3600, 11, 2); b[13] = 58; put(rem % 3600 / 60, 14, 2); b[16] = 58; put(rem % 60, 17, 2); b[19] = 46
        put(ms, 20, 3)
        return String(decoding: b, as: UTF8.self)
    }

    /// Year, month, day and seconds into the day of a Unix time (UTC; Howard Hinnant's days-from-civil inverse).
    static func civil(_ secs: Int) -> (year: Int, month: Int, day: Int, secondOfDay: Int) {
        let days = secs >= 0 ? secs / 86_400 : (secs - 86_399) / 86_400
        let rem = secs - days * 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day, rem)
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

    /// What a status poll needs of each pilot of a target that has not ended (no dates decoded).
    public struct PolledPilot: Sendable, Hashable {
        public var id: String
        public var queue: String
        public var state: PilotState
        public var batchID: String?
        public var cancelRequested: Bool
        public var waitingForRetry: Bool
    }

    public func polledPilots(onTarget target: String) throws(StoreError) -> [PolledPilot] {
        try read { db in try Self.polledPilots(db, onTarget: target) }
    }

    static func polledPilots(_ db: Database, onTarget target: String) throws -> [PolledPilot] {
            try Row.fetchAll(
                db.cachedStatement(
                    sql: """
                        SELECT id, queue, state, batchID, cancelRequestedAt IS NOT NULL, retryAt IS NOT NULL FROM pilot
                        WHERE target = ? AND state IN \(Self.liveStates)
                        """),
                arguments: [target]
            ).map { r in
                PolledPilot(id: r[0], queue: r[1], state: PilotState(rawValue: r[2]) ?? .pending, batchID: r[3],
                            cancelRequested: r[4], waitingForRetry: r[5])
            }
    }

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
        try read { db in try Self.counts(db, column: column, value: value) }
    }

    /// Counts inside a transaction the caller holds (`column` is `queue`, `tenant` or `target`).
    static func counts(_ db: Database, column: String, value: String) throws -> PilotCounts {
        // Rows counted here rather than grouped by SQLite: a queue has a handful of live pilots, and GROUP BY on two
        // keys would sort them in a temporary b-tree.
        let cursor = try Row.fetchCursor(
            db.cachedStatement(
                sql: "SELECT state, cancelRequestedAt IS NOT NULL FROM pilot WHERE \(column) = ? AND state IN \(liveStates)"),
            arguments: [value])
        var c = PilotCounts()
        while let r = try cursor.next() {
            let leaving: Bool = r[1]
            switch PilotState(rawValue: r[0]) {
            case .submitting?:
                c.created += 1
                if leaving { c.leavingQueued += 1 }
            case .pending?:
                c.queued += 1
                if leaving { c.leavingQueued += 1 }
            case .held?:
                c.queued += 1
                c.held += 1
                if leaving { c.leavingQueued += 1 }
            case .running?, .exiting?: c.running += 1
            default: continue
            }
            if leaving { c.leaving += 1 }
        }
        return c
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
        return try read { db in try Self.dueRetries(db, queue: queue, now: now, limit: limit) }
    }

    static func dueRetries(_ db: Database, queue: String, now: Date, limit: Int) throws -> [LivePilot] {
        try Row.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT \(liveColumns) FROM pilot WHERE queue = ? AND state = 'submitting'
                    AND retryAt IS NOT NULL AND retryAt <= ? AND cancelRequestedAt IS NULL ORDER BY createdAt, id LIMIT ?
                    """), arguments: [queue, JournalDate.text(now), limit]
        ).map(live)
    }

    /// Finished pilots of `queue` started at or after `since` (the Throttle guard), inside a transaction.
    static func recentRuns(_ db: Database, queue: String, since: Date) throws -> [PilotHistory.Run] {
        try Row.fetchAll(
            db.cachedStatement(
                sql: "SELECT startedAt, endedAt FROM pilot WHERE queue = ? AND startedAt >= ? AND endedAt IS NOT NULL"),
            arguments: [queue, since]
        ).map { r in
            let s: Date = r[0]
            let e: Date = r[1]
            return PilotHistory.Run(startedAt: s, wallSeconds: e.timeIntervalSince(s))
        }
    }

    /// Runs `body` in one write transaction (the loop's decision: counts, chain, cycle row and intents together).
    func transaction<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try writer.write(body)
        } catch let e as StoreError {
            throw e
        } catch let e as DatabaseError where e.resultCode == .SQLITE_CONSTRAINT {
            throw StoreError(.duplicate, "\(e.message ?? "constraint failed")")
        } catch {
            throw StoreError(.database, "\(error)")
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
        try write { db in try Self.insertCycle(db, cycle, intents: intents, at: time) }
    }

    static func insertCycle(_ db: Database, _ cycle: QueueCycleRecord, intents: [PilotIntent], at time: Date) throws
        -> QueueCycleRecord
    {
            var c = cycle
            try db.cachedStatement(
                sql: """
                    INSERT INTO queueCycle (queue, tenant, startedAt, inputs, trace, decision, count, message)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    """
            ).execute(arguments: [c.queue, c.tenant, JournalDate.text(c.startedAt), c.inputs, c.trace, c.decision, c.count, c.message])
            c.id = db.lastInsertedRowID
            for i in intents {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO pilot (id, tenant, queue, target, state, createdAt, updatedAt, attempts)
                        VALUES (?, ?, ?, ?, 'submitting', ?, ?, 1)
                        """
                ).execute(arguments: [i.id, i.tenant, i.queue, i.target, JournalDate.text(time), JournalDate.text(time)])
            }
            if let first = intents.first {
                try Self.event(db, at: time, kind: "intent", queue: first.queue, target: first.target, pilotID: nil,
                               message: "intent to submit \(intents.count) pilot\(intents.count == 1 ? "" : "s")")
            }
            return c
    }

    /// Counts one more cycle on the row `id` (a repeat of its decision); false if the row is gone.
    static func repeatCycle(_ db: Database, id: Int64, at time: Date) throws -> Bool {
        try db.cachedStatement(sql: "UPDATE queueCycle SET repeats = repeats + 1, lastAt = ? WHERE id = ?")
            .execute(arguments: [JournalDate.text(time), id])
        return db.changesCount == 1
    }

    /// Appends an event row (a cached statement: the loop writes many).
    static func event(_ db: Database, at time: Date, level: String = "info", kind: String, queue: String?, target: String?,
                      pilotID: String?, message: String) throws {
        try db.cachedStatement(
            sql: "INSERT INTO event (at, level, kind, queue, target, pilotID, message) VALUES (?, ?, ?, ?, ?, ?, ?)"
        ).execute(arguments: [JournalDate.text(time), level, kind, queue, target, pilotID, message])
    }

    /// A pilot row read with a cached statement, dates as text.
    static func fetchRaw(_ db: Database, _ id: String) throws -> RawPilotRow? {
        guard let r = try Row.fetchOne(
            db.cachedStatement(sql: """
                SELECT id, queue, target, state, batchID, nativeState, exitCode, reason, submittedAt, startedAt, endedAt,
                updatedAt, attempts, cancelRequestedAt, retryAt FROM pilot WHERE id = ?
                """), arguments: [id])
        else { return nil }
        return RawPilotRow(
            id: r[0], queue: r[1], target: r[2], state: PilotState(rawValue: r[3]) ?? .pending, batchID: r[4], nativeState: r[5],
            exitCode: r[6], reason: r[7], submittedAt: r[8], startedAt: r[9], endedAt: r[10], updatedAt: r[11], attempts: r[12],
            cancelRequestedAt: r[13], retryAt: r[14])
    }

    static func saveRaw(_ db: Database, _ p: RawPilotRow) throws {
        try db.cachedStatement(
            sql: """
                UPDATE pilot SET state = ?, batchID = ?, nativeState = ?, exitCode = ?, reason = ?, submittedAt = ?,
                startedAt = ?, endedAt = ?, updatedAt = ?, attempts = ?, cancelRequestedAt = ?, retryAt = ? WHERE id = ?
                """
        ).execute(arguments: [
            p.state.rawValue, p.batchID, p.nativeState, p.exitCode, p.reason, p.submittedAt, p.startedAt, p.endedAt,
            p.updatedAt, p.attempts, p.cancelRequestedAt, p.retryAt, p.id,
        ])
    }

    /// Applies `changes` in one transaction (forward-only, as `transition`); returns the pilots whose state changed,
    /// with their new state.
    @discardableResult
    public func apply(_ changes: [PilotChange], at time: Date) throws(StoreError) -> [(id: String, state: PilotState)] {
        guard !changes.isEmpty else { return [] }
        return try write { db in try Self.apply(db, changes, at: time) }
    }

    /// `apply` inside a transaction the caller holds.
    static func apply(_ db: Database, _ changes: [PilotChange], at date: Date) throws -> [(id: String, state: PilotState)] {
            guard let time = JournalDate.text(date) else { return [] }
            var changed: [(id: String, state: PilotState)] = []
            for change in changes {
                let id: String
                switch change {
                case .accepted(let i, _), .observed(let i, _, _, _, _), .rejected(let i, _), .inDoubt(let i, _),
                    .retryLater(let i, _, _), .attempt(let i), .missed(let i, _), .dropped(let i, _):
                    id = i
                }
                guard var row = try Self.fetchRaw(db, id) else { continue }
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
                    row.retryAt = JournalDate.text(at)
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
                try Self.saveRaw(db, row)
                if let message {
                    try Self.event(db, at: date, level: level, kind: kind, queue: row.queue, target: row.target, pilotID: id,
                                   message: message)
                }
                if row.state != before { changed.append((id, row.state)) }
            }
            return changed
    }

    // MARK: - The loop's fast paths

    /// A state change of a pilot whose current state the caller has just read (a status poll): written with one
    /// guarded UPDATE, without reading the row again. If the row changed in between, nothing is written (the next
    /// poll sees it again).
    public struct KnownTransition: Sendable, Hashable {
        public var id: String
        public var queue: String
        public var target: String
        public var from: PilotState
        public var to: PilotState
        public var nativeState: String?
        public var exitCode: Int?
        public var reason: String?
    }

    /// Applies known transitions (forward-only, as `transition`); returns the pilots whose state changed.
    static func applyKnown(_ db: Database, _ list: [KnownTransition], at date: Date) throws -> [(id: String, state: PilotState)] {
        guard !list.isEmpty, let time = JournalDate.text(date) else { return [] }
        var changed: [(id: String, state: PilotState)] = []
        for t in list {
            guard let step = step(from: t.from, to: t.to) else { continue }
            try db.cachedStatement(
                sql: """
                    UPDATE pilot SET state = ?1, startedAt = CASE WHEN ?2 THEN COALESCE(startedAt, ?3) ELSE startedAt END,
                    endedAt = CASE WHEN ?4 THEN COALESCE(endedAt, ?3) ELSE endedAt END,
                    nativeState = COALESCE(?5, nativeState), exitCode = COALESCE(?6, exitCode), reason = COALESCE(?7, reason),
                    updatedAt = ?3 WHERE id = ?8 AND state = ?9
                    """
            ).execute(arguments: [t.to.rawValue, step.starts, time, step.ends, t.nativeState, t.exitCode, t.reason, t.id,
                                  t.from.rawValue])
            guard db.changesCount == 1 else { continue }
            let via = step.synthesized.isEmpty ? "" : " (synthesized: \(step.synthesized.map(\.rawValue).joined(separator: ", ")))"
            try event(db, at: date, kind: "state", queue: t.queue, target: t.target, pilotID: t.id,
                      message: "\(t.from.rawValue) → \(t.to.rawValue)\(via)")
            changed.append((t.id, t.to))
        }
        return changed
    }

    /// Records batch IDs returned by a submit (the intents were `submitting`; they become `pending`).
    static func applyAccepted(_ db: Database, _ list: [(id: String, batchID: String)], queue: String, target: String,
                              at date: Date) throws {
        guard let time = JournalDate.text(date) else { return }
        for (id, batchID) in list {
            try db.cachedStatement(
                sql: """
                    UPDATE pilot SET batchID = ?1, submittedAt = COALESCE(submittedAt, ?2), retryAt = NULL,
                    state = CASE WHEN state = 'submitting' THEN 'pending' ELSE state END, updatedAt = ?2
                    WHERE id = ?3 AND (batchID IS NULL OR batchID = ?1)
                    """
            ).execute(arguments: [batchID, time, id])
            guard db.changesCount == 1 else { continue }
            try event(db, at: date, kind: "submitted", queue: queue, target: target, pilotID: id, message: "batch ID \(batchID)")
        }
    }

    /// Picks and marks the pilots a retire takes, in one transaction: intents waiting for a retry are dropped
    /// (never submitted), then not-yet-running pilots (`pending`, `held`), then — with `includeRunning` — running
    /// ones, newest or oldest first, none already being cancelled. Returns how many intents were dropped and the
    /// pilots whose cancel was recorded (to be sent now and re-issued until they end).
    static func retire(_ db: Database, queue: String, limit: Int, order: RetirePolicy.Order, includeRunning: Bool,
                       at date: Date) throws -> (dropped: Int, cancelled: [(id: String, batchID: String?)]) {
        guard limit > 0, let time = JournalDate.text(date) else { return (0, []) }
        let waiting = try String.fetchAll(
            db.cachedStatement(sql: """
                SELECT id FROM pilot WHERE queue = ? AND state = 'submitting' AND retryAt IS NOT NULL
                ORDER BY createdAt DESC, id DESC LIMIT ?
                """), arguments: [queue, limit])
        if !waiting.isEmpty {
            _ = try apply(db, waiting.map { .dropped(id: $0, reason: "retired before it was submitted") }, at: date)
        }
        var budget = limit - waiting.count
        var picked: [(id: String, batchID: String?)] = []
        let direction = order == .newest ? "DESC" : "ASC"
        for states in includeRunning ? ["'pending','held'", "'running'"] : ["'pending','held'"] where budget > 0 {
            let rows = try Row.fetchAll(
                db.cachedStatement(sql: """
                    SELECT id, batchID FROM pilot WHERE queue = ? AND state IN (\(states)) AND cancelRequestedAt IS NULL
                    ORDER BY createdAt \(direction), id \(direction) LIMIT ?
                    """), arguments: [queue, budget])
            for r in rows { picked.append((r[0], r[1])) }
            budget -= rows.count
        }
        for p in picked {
            try db.cachedStatement(sql: "UPDATE pilot SET cancelRequestedAt = ?, updatedAt = ? WHERE id = ?")
                .execute(arguments: [time, time, p.id])
        }
        if !picked.isEmpty {
            try event(db, at: date, kind: "cancel-requested", queue: queue, target: nil, pilotID: nil,
                      message: "cancel requested for \(picked.count) pilot\(picked.count == 1 ? "" : "s")")
        }
        return (waiting.count, picked)
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
