public import Foundation
public import GRDB

extension PilotState: DatabaseValueConvertible {}

/// An error of the journal, with a stable code.
public struct StoreError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let id: String
        public init(_ id: String) { self.id = id }
        public var description: String { id }

        public static let openFailed = Code("store.open-failed")
        public static let schemaTooNew = Code("store.schema-too-new")
        public static let migrationFailed = Code("store.migration-failed")
        public static let database = Code("store.database")
        public static let duplicate = Code("store.duplicate")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "[\(code.id)] \(message)" }
    public static func == (a: Self, b: Self) -> Bool { a.code == b.code }
}

/// The journal: pilots (with their intent recorded before every submit), queue cycles and events, in SQLite.
///
/// A `DatabasePool` (WAL, busy timeout) in the daemon and the CLI, an in-memory `DatabaseQueue` in tests.
/// Migrations are append-only and never edited once released; a journal written by a newer apf-agent (with
/// migrations this binary does not know) is refused.
public struct AgentStore: Sendable {
    public let writer: any DatabaseWriter

    /// Opens (creating if needed) the journal at `path`.
    public static func open(path: String) throws(StoreError) -> AgentStore {
        var config = Configuration()
        config.busyMode = .timeout(5)
        config.label = "apf-agent.journal"
        // An 8 MB page cache instead of SQLite's 2 MB: the loop's index inserts (cycles and events by queue) touch pages
        // all over their indexes.
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA cache_size = -8192") }
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: config)
        } catch {
            throw StoreError(.openFailed, "cannot open the journal at \(path): \(error)")
        }
        return try AgentStore(pool)
    }

    /// An empty in-memory journal (tests, simulations).
    public static func inMemory() throws(StoreError) -> AgentStore {
        do {
            return try AgentStore(DatabaseQueue())
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError(.openFailed, "cannot create an in-memory journal: \(error)")
        }
    }

    public init(_ writer: any DatabaseWriter) throws(StoreError) {
        self.writer = writer
        let migrator = Self.migrator
        let known = Set(migrator.migrations)
        do {
            let applied = try writer.read { db in try migrator.appliedIdentifiers(db) }
            let unknown = applied.subtracting(known)
            if !unknown.isEmpty {
                throw StoreError(
                    .schemaTooNew,
                    "the journal was written by a newer apf-agent (unknown migrations: \(unknown.sorted().joined(separator: ", "))); run that version or a newer one"
                )
            }
            try migrator.migrate(writer)
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError(.migrationFailed, "cannot prepare the journal schema: \(error)")
        }
    }

    /// The schema. Append new migrations; never edit a released one.
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("0001-journal") { db in
            try db.create(table: "pilot") { t in
                t.primaryKey("id", .text)
                t.column("tenant", .text).notNull()
                t.column("queue", .text).notNull()
                t.column("target", .text).notNull()
                t.column("state", .text).notNull()
                t.column("batchID", .text)
                t.column("nativeState", .text)
                t.column("exitCode", .integer)
                t.column("reason", .text)
                t.column("createdAt", .datetime).notNull()
                t.column("submittedAt", .datetime)
                t.column("startedAt", .datetime)
                t.column("endedAt", .datetime)
                t.column("updatedAt", .datetime).notNull()
                t.column("attempts", .integer).notNull().defaults(to: 0)
                t.column("cancelRequestedAt", .datetime)
            }
            try db.create(index: "pilot_queue_state", on: "pilot", columns: ["queue", "state"])
            try db.create(index: "pilot_target_state", on: "pilot", columns: ["target", "state"])
            try db.create(index: "pilot_state", on: "pilot", columns: ["state"])
            try db.create(index: "pilot_target_batchID", on: "pilot", columns: ["target", "batchID"])
            try db.create(table: "queueCycle") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("queue", .text).notNull()
                t.column("tenant", .text).notNull()
                t.column("startedAt", .datetime).notNull()
                t.column("inputs", .text).notNull()
                t.column("trace", .text).notNull()
                t.column("decision", .text).notNull()
                t.column("count", .integer).notNull()
                t.column("message", .text)
            }
            try db.create(index: "queueCycle_queue_startedAt", on: "queueCycle", columns: ["queue", "startedAt"])
            try db.create(table: "event") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("at", .datetime).notNull()
                t.column("level", .text).notNull()
                t.column("kind", .text).notNull()
                t.column("queue", .text)
                t.column("target", .text)
                t.column("pilotID", .text)
                t.column("message", .text).notNull()
            }
            try db.create(index: "event_queue_at", on: "event", columns: ["queue", "at"])
            try db.create(index: "event_pilotID", on: "event", columns: ["pilotID"])
        }
        // The agent runtime (issue 7): transient submit failures wait for a retry; queue enable/disable overrides
        // written by the CLI; target health, so `apf-agent status` can show a target backing off.
        m.registerMigration("0002-runtime") { db in
            try db.alter(table: "pilot") { t in t.add(column: "retryAt", .datetime) }
            try db.create(table: "queueControl") { t in
                t.primaryKey("queue", .text)
                t.column("enabled", .boolean).notNull()
                t.column("updatedAt", .datetime).notNull()
                t.column("note", .text)
            }
            try db.create(table: "targetHealth") { t in
                t.primaryKey("target", .text)
                t.column("state", .text).notNull()
                t.column("reason", .text)
                t.column("failures", .integer).notNull().defaults(to: 0)
                t.column("nextTryAt", .datetime)
                t.column("accounting", .text)
                t.column("lastPollAt", .datetime)
                t.column("updatedAt", .datetime).notNull()
            }
            try db.create(table: "factoryState") { t in
                t.primaryKey("key", .text)
                t.column("value", .text).notNull()
                t.column("updatedAt", .datetime).notNull()
            }
        }
        // A cycle that decides exactly what the previous one of its queue decided is counted on that row.
        m.registerMigration("0003-cycle-repeats") { db in
            try db.alter(table: "queueCycle") { t in
                t.add(column: "repeats", .integer).notNull().defaults(to: 1)
                t.add(column: "lastAt", .datetime)
            }
        }
        return m
    }

    /// The migrations this binary knows, in order.
    public static var schemaVersions: [String] { migrator.migrations }

    func write<T>(_ body: @Sendable (Database) throws -> T) throws(StoreError) -> T {
        try transaction(body)
    }

    func read<T>(_ body: @Sendable (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try writer.read(body)
        } catch {
            throw StoreError(.database, "\(error)")
        }
    }

    // MARK: - Submitting

    /// Records the intent to submit these pilots (state `submitting`), committed before any remote call.
    @discardableResult
    public func recordIntents(_ intents: [PilotIntent], at time: Date) throws(StoreError) -> [PilotRecord] {
        try write { db in
            var rows: [PilotRecord] = []
            for i in intents {
                let row = PilotRecord(
                    id: i.id, tenant: i.tenant, queue: i.queue, target: i.target, state: .submitting, batchID: nil,
                    nativeState: nil, exitCode: nil, reason: nil, createdAt: time, submittedAt: nil, startedAt: nil,
                    endedAt: nil, updatedAt: time, attempts: 1, cancelRequestedAt: nil)
                try row.insert(db)
                rows.append(row)
            }
            if let first = intents.first {
                var e = EventRecord(
                    at: time, kind: "intent", queue: first.queue, target: first.target,
                    message: "intent to submit \(intents.count) pilot\(intents.count == 1 ? "" : "s")")
                try e.insert(db)
            }
            return rows
        }
    }

    /// Records the batch ID the target returned; the pilot becomes `pending` if it was still `submitting`.
    @discardableResult
    public func recordSubmitted(_ id: String, batchID: String, at time: Date) throws(StoreError) -> TransitionResult {
        try write { db in
            guard var row = try PilotRecord.fetchOne(db, key: id) else { return .notFound }
            row.batchID = batchID
            row.submittedAt = row.submittedAt ?? time
            let result = Self.move(&row, to: .pending, at: time)
            try row.update(db)
            var e = EventRecord(
                at: time, kind: "submitted", queue: row.queue, target: row.target, pilotID: id,
                message: "batch ID \(batchID)")
            try e.insert(db)
            return result
        }
    }

    /// The outcome of a submit that did not return a batch ID: `rejected` ends the pilot (`failed`); `unknown`
    /// keeps it `submitting` (in doubt) until reconciliation finds it on the target or marks it `missed`.
    public enum SubmitFailure: Sendable, Hashable {
        case rejected(String)
        case unknown(String)
    }

    public func recordSubmitFailed(_ id: String, _ failure: SubmitFailure, at time: Date) throws(StoreError) {
        try write { db in
            guard var row = try PilotRecord.fetchOne(db, key: id) else { return }
            let message: String
            switch failure {
            case .rejected(let why):
                row.reason = why
                _ = Self.move(&row, to: .failed, at: time)
                message = "rejected: \(why)"
            case .unknown(let why):
                row.reason = why
                row.updatedAt = time
                message = "outcome unknown: \(why)"
            }
            try row.update(db)
            var e = EventRecord(
                at: time, level: "warning", kind: "submit-failed", queue: row.queue, target: row.target, pilotID: id,
                message: message)
            try e.insert(db)
        }
    }

    /// Counts one more submit attempt for an intent still `submitting` (after reconciliation showed the previous
    /// attempt never reached the target). Returns false if the pilot is not in doubt any more.
    @discardableResult
    public func recordAttempt(_ id: String, at time: Date) throws(StoreError) -> Bool {
        try write { db in
            guard var row = try PilotRecord.fetchOne(db, key: id), row.state == .submitting else { return false }
            row.attempts += 1
            row.updatedAt = time
            try row.update(db)
            var e = EventRecord(
                at: time, kind: "attempt", queue: row.queue, target: row.target, pilotID: id,
                message: "submit attempt \(row.attempts)")
            try e.insert(db)
            return true
        }
    }

    // MARK: - State changes

    /// Moves a pilot forward to `state` (ignored if that would go backwards or leave a terminal state; `lost` may
    /// still become another ending when accounting finds the job later). Skipped states are recorded as synthesized.
    @discardableResult
    public func transition(
        _ id: String, to state: PilotState, nativeState: String? = nil, exitCode: Int? = nil, reason: String? = nil,
        at time: Date
    ) throws(StoreError) -> TransitionResult {
        try write { db in
            guard var row = try PilotRecord.fetchOne(db, key: id) else { return .notFound }
            let result = Self.move(&row, to: state, at: time)
            if case .applied = result {
                row.nativeState = nativeState ?? row.nativeState
                row.exitCode = exitCode ?? row.exitCode
                row.reason = reason ?? row.reason
                try row.update(db)
            } else if case .unchanged = result, nativeState != nil, nativeState != row.nativeState {
                row.nativeState = nativeState
                row.updatedAt = time
                try row.update(db)
            }
            if case .applied(let from, let synthesized) = result {
                let via = synthesized.isEmpty ? "" : " (synthesized: \(synthesized.map(\.rawValue).joined(separator: ", ")))"
                var e = EventRecord(
                    at: time, kind: "state", queue: row.queue, target: row.target, pilotID: id,
                    message: "\(from.rawValue) → \(state.rawValue)\(via)")
                try e.insert(db)
            }
            return result
        }
    }

    /// The pilot with this batch ID on this target.
    public func pilot(batchID: String, target: String) throws(StoreError) -> PilotRecord? {
        try read { db in
            try PilotRecord.filter(Column("target") == target && Column("batchID") == batchID).fetchOne(db)
        }
    }

    public func pilot(_ id: String) throws(StoreError) -> PilotRecord? {
        try read { db in try PilotRecord.fetchOne(db, key: id) }
    }

    /// Applies the forward-only rule to `row` in memory.
    static func move<Row: PilotTimes>(_ row: inout Row, to next: PilotState, at time: Row.Stamp) -> TransitionResult {
        let current = row.state
        if current == next { return .unchanged }
        guard let step = Self.step(from: current, to: next) else {
            return current.isTerminal ? .ignoredTerminal(current: current) : .ignoredBackward(current: current)
        }
        if step.starts, row.startedAt == nil { row.startedAt = time }
        if step.ends { row.endedAt = row.endedAt ?? time }
        row.state = next
        row.updatedAt = time
        return .applied(from: current, synthesized: step.synthesized)
    }

    /// The forward-only rule: nil when `current → next` is not allowed (backwards, or out of a terminal state other
    /// than `lost`); otherwise the skipped states and whether the move starts (sets `startedAt` if unset) or ends
    /// the pilot.
    static func step(from current: PilotState, to next: PilotState) -> (synthesized: [PilotState], starts: Bool, ends: Bool)? {
        if current == next { return nil }
        if current.isTerminal {
            guard current == .lost, next.isTerminal else { return nil }
        } else if next.rank < current.rank {
            return nil
        }
        let synthesized = current.skipped(to: next)
        let starts = next.rank >= PilotState.running.rank && (next == .running || synthesized.contains(.running))
        return (synthesized, starts, next.isTerminal)
    }

    // MARK: - Cancelling

    /// Records the wish to cancel (level-triggered: re-issued each cycle until a terminal state is seen).
    /// Returns how many pilots were newly marked.
    @discardableResult
    public func requestCancel(_ ids: [String], at time: Date) throws(StoreError) -> Int {
        guard !ids.isEmpty else { return 0 }
        return try write { db in
            let terminal = PilotState.allCases.filter(\.isTerminal).map(\.rawValue)
            let n = try PilotRecord.filter(ids.contains(Column("id")))
                .filter(Column("cancelRequestedAt") == nil)
                .filter(!terminal.contains(Column("state")))
                .updateAll(db, Column("cancelRequestedAt").set(to: time), Column("updatedAt").set(to: time))
            if n > 0 {
                var e = EventRecord(at: time, kind: "cancel-requested", message: "cancel requested for \(n) pilot\(n == 1 ? "" : "s")")
                try e.insert(db)
            }
            return n
        }
    }

    /// Pilots whose cancel was requested and that have not ended: cancel them again.
    public func pendingCancels(target: String? = nil) throws(StoreError) -> [PilotRecord] {
        try read { db in
            let terminal = PilotState.allCases.filter(\.isTerminal).map(\.rawValue)
            var q = PilotRecord.filter(Column("cancelRequestedAt") != nil).filter(!terminal.contains(Column("state")))
            if let target { q = q.filter(Column("target") == target) }
            return try q.order(Column("cancelRequestedAt")).fetchAll(db)
        }
    }

    /// Pilots to retire for a negative decision: not started (pending, held), not already being cancelled,
    /// newest or oldest first; with `includeRunning`, running ones follow.
    public func retireCandidates(
        queue: String, limit: Int, order: RetirePolicy.Order, includeRunning: Bool = false
    ) throws(StoreError) -> [PilotRecord] {
        guard limit > 0 else { return [] }
        return try read { db in
            let time = Column("createdAt")
            func fetch(_ states: [PilotState], _ n: Int) throws -> [PilotRecord] {
                try PilotRecord.filter(Column("queue") == queue)
                    .filter(states.map(\.rawValue).contains(Column("state")))
                    .filter(Column("cancelRequestedAt") == nil)
                    .order(order == .newest ? time.desc : time.asc, order == .newest ? Column("id").desc : Column("id").asc)
                    .limit(n).fetchAll(db)
            }
            var out = try fetch([.pending, .held], limit)
            if includeRunning, out.count < limit { out += try fetch([.running], limit - out.count) }
            return out
        }
    }

    /// Pilots of `queue` queued (pending, held) since before `now − seconds`, not being cancelled: the idle
    /// pilots to cancel when demand is gone (roadmap 2.5), oldest first.
    public func idlePilots(queue: String, longerThan seconds: Int, now: Date) throws(StoreError) -> [PilotRecord] {
        try read { db in
            let limit = now.addingTimeInterval(-Double(seconds))
            return try PilotRecord.filter(Column("queue") == queue)
                .filter([PilotState.pending.rawValue, PilotState.held.rawValue].contains(Column("state")))
                .filter(Column("cancelRequestedAt") == nil)
                .filter(Column("createdAt") < limit)
                .order(Column("createdAt").asc).fetchAll(db)
        }
    }

    // MARK: - Reading for the loop and `status`

    /// Intents with no batch ID yet: after a crash, each is looked up on its target by client ID (queue, then
    /// accounting) before anything is resubmitted.
    public func inDoubt(target: String? = nil) throws(StoreError) -> [PilotRecord] {
        try read { db in
            var q = PilotRecord.filter(Column("state") == PilotState.submitting.rawValue)
            if let target { q = q.filter(Column("target") == target) }
            return try q.order(Column("createdAt"), Column("id")).fetchAll(db)
        }
    }

    /// Pilots of a target that have not ended, for status reconciliation.
    public func livePilots(target: String) throws(StoreError) -> [PilotRecord] {
        try read { db in
            let terminal = PilotState.allCases.filter(\.isTerminal).map(\.rawValue)
            return try PilotRecord.filter(Column("target") == target).filter(!terminal.contains(Column("state")))
                .fetchAll(db)
        }
    }

    /// The queue's batch counts as the journal knows them (pending includes held and intents in flight).
    public func batchCounts(queue: String) throws(StoreError) -> BatchQueueCounts {
        try read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT state, COUNT(*) AS n FROM pilot WHERE queue = ? AND state IN ('submitting','pending','held','running','exiting') GROUP BY state",
                arguments: [queue])
            var c = BatchQueueCounts(pending: 0, running: 0)
            for r in rows {
                let n: Int = r["n"]
                switch PilotState(rawValue: r["state"]) {
                case .submitting?, .pending?: c.pending += n
                case .held?:
                    c.pending += n
                    c.held += n
                case .running?, .exiting?: c.running += n
                default: break
                }
            }
            return c
        }
    }

    /// Finished pilots of `queue` that started at or after `since`, for the Throttle guard.
    public func recentRuns(queue: String, since: Date) throws(StoreError) -> [PilotHistory.Run] {
        try read { db in
            try PilotRecord.filter(Column("queue") == queue).filter(Column("startedAt") >= since)
                .filter(Column("endedAt") != nil).fetchAll(db)
                .compactMap { r in
                    guard let s = r.startedAt, let e = r.endedAt else { return nil }
                    return PilotHistory.Run(startedAt: s, wallSeconds: e.timeIntervalSince(s))
                }
        }
    }

    /// Per queue: created, pending, running, exiting, done and fault in the last hour, last message (apfmon's
    /// columns), sorted by queue name. Queues with cycles but no pilots are listed too.
    public func statusRows(now: Date) throws(StoreError) -> [QueueStatusRow] {
        try read { db in
            let hourAgo = now.addingTimeInterval(-3600)
            let done = PilotState.allCases.filter(\.isDone).map { "'\($0.rawValue)'" }.joined(separator: ",")
            let fault = PilotState.allCases.filter(\.isFault).map { "'\($0.rawValue)'" }.joined(separator: ",")
            let sql = """
                SELECT queue,
                  SUM(state = 'submitting') AS created,
                  SUM(state IN ('pending','held')) AS pending,
                  SUM(state = 'held') AS held,
                  SUM(state = 'running') AS running,
                  SUM(state = 'exiting') AS exiting,
                  SUM(state IN (\(done)) AND endedAt >= ?) AS done1h,
                  SUM(state IN (\(fault)) AND endedAt >= ?) AS fault1h
                FROM pilot GROUP BY queue
                """
            var rows: [String: QueueStatusRow] = [:]
            for r in try Row.fetchAll(db, sql: sql, arguments: [hourAgo, hourAgo]) {
                let q: String = r["queue"]
                rows[q] = QueueStatusRow(
                    queue: q, created: r["created"], pending: r["pending"], held: r["held"], running: r["running"],
                    exiting: r["exiting"], done1h: r["done1h"], fault1h: r["fault1h"], lastMessage: nil,
                    lastMessageAt: nil)
            }
            let last = try QueueCycleRecord.fetchAll(
                db,
                sql: """
                    SELECT c.* FROM queueCycle c
                    JOIN (SELECT queue, MAX(id) AS id FROM queueCycle GROUP BY queue) m ON c.id = m.id
                    """)
            for c in last {
                var row =
                    rows[c.queue]
                    ?? QueueStatusRow(
                        queue: c.queue, created: 0, pending: 0, held: 0, running: 0, exiting: 0, done1h: 0, fault1h: 0)
                row.lastMessage = c.decision == "blocked" ? "blocked: \(c.message ?? "")" : c.trace
                row.lastMessageAt = c.lastSeenAt
                rows[c.queue] = row
            }
            return rows.values.sorted { $0.queue < $1.queue }
        }
    }

    // MARK: - Cycles and events

    @discardableResult
    public func recordCycle(_ cycle: QueueCycleRecord) throws(StoreError) -> QueueCycleRecord {
        try write { db in
            var c = cycle
            try c.insert(db)
            return c
        }
    }

    public func recentCycles(queue: String, limit: Int = 10) throws(StoreError) -> [QueueCycleRecord] {
        try read { db in
            try QueueCycleRecord.filter(Column("queue") == queue).order(Column("id").desc).limit(limit).fetchAll(db)
        }
    }

    @discardableResult
    public func recordEvent(_ event: EventRecord) throws(StoreError) -> EventRecord {
        try write { db in
            var e = event
            try e.insert(db)
            return e
        }
    }

    public func events(pilotID: String) throws(StoreError) -> [EventRecord] {
        try read { db in try EventRecord.filter(Column("pilotID") == pilotID).order(Column("id")).fetchAll(db) }
    }

    public func events(queue: String, limit: Int = 50) throws(StoreError) -> [EventRecord] {
        try read { db in
            try EventRecord.filter(Column("queue") == queue).order(Column("id").desc).limit(limit).fetchAll(db)
        }
    }
}

extension QueueStatusRow {
    init(queue: String, created: Int, pending: Int, held: Int, running: Int, exiting: Int, done1h: Int, fault1h: Int) {
        self.init(
            queue: queue, created: created, pending: pending, held: held, running: running, exiting: exiting,
            done1h: done1h, fault1h: fault1h, lastMessage: nil, lastMessageAt: nil)
    }
}
