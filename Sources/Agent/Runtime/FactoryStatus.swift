public import Foundation

/// What `apf-agent status` shows: per queue apfmon's columns (created, pending, running, exiting, done and fault in
/// the last hour, last message), per target its health ("backing off: <reason>, next try <time>").
public struct FactoryStatus: Sendable, Codable {
    public struct Queue: Sendable, Codable {
        public var name: String
        public var tenant: String?
        public var target: String?
        /// `enabled`, `disabled`, or `not started` (a configuration or planning problem).
        public var state: String
        public var created: Int
        public var pending: Int
        public var held: Int
        public var running: Int
        public var exiting: Int
        public var done1h: Int
        public var fault1h: Int
        public var lastMessage: String?
        public var lastMessageAt: Date?
    }

    public struct TargetHealth: Sendable, Codable {
        public var name: String
        /// `ok` or `backing-off`.
        public var state: String
        public var reason: String?
        public var failures: Int
        public var nextTry: Date?
        public var accounting: String?
        public var lastPoll: Date?
        /// `ok`, or `backing off: <reason>, next try <time>`.
        public var message: String
    }

    public var generatedAt: Date
    public var queues: [Queue]
    public var targets: [TargetHealth]
    /// The daemon's facts from the journal (`pid`, `started-at`, `config.last-error`, …).
    public var factory: [String: String]

    /// Builds the status from the journal (what the daemon recorded) and the configuration (which queues exist,
    /// their tenant, target and switch).
    public static func read(journal: AgentStore, config: AgentConfig?, problems: [String: String] = [:],
                            controls: [String: Bool]? = nil, targetNames: Set<String>? = nil, now: Date) throws(StoreError)
        -> FactoryStatus
    {
        let rows = Dictionary(uniqueKeysWithValues: try journal.statusRows(now: now).map { ($0.queue, $0) })
        let stored = try journal.queueControls().mapValues(\.enabled)
        let controls = controls ?? stored
        var names: [String] = config?.queues.map(\.name) ?? []
        for n in rows.keys.sorted() where !names.contains(n) { names.append(n) }
        var queues: [Queue] = []
        for name in names {
            let row = rows[name]
            let q = config?.queue(named: name)
            var target: String?
            switch q?.submit {
            case .ssh(let ref)?: target = ref.name
            case .local(let batch)?: target = q?.localTarget ?? "local:\(batch)"
            case nil: target = nil
            }
            let state: String
            if let p = problems[name] {
                state = "not started"
                _ = p
            } else if let q {
                if !q.isUsable {
                    state = "not started"
                } else {
                    state = (controls[name] ?? q.enabled) && (config?.factory.enableQueues ?? true) ? "enabled" : "disabled"
                }
            } else {
                state = "not configured"
            }
            var message = row?.lastMessage
            if let p = problems[name] { message = "not started: \(p)" }
            queues.append(Queue(
                name: name, tenant: q?.tenant, target: target, state: state, created: row?.created ?? 0,
                pending: row?.pending ?? 0, held: row?.held ?? 0, running: row?.running ?? 0, exiting: row?.exiting ?? 0,
                done1h: row?.done1h ?? 0, fault1h: row?.fault1h ?? 0, lastMessage: message, lastMessageAt: row?.lastMessageAt))
        }
        var targets: [TargetHealth] = []
        for h in try journal.targetHealth() where targetNames?.contains(h.target) ?? true {
            let message: String
            if h.state == "ok" {
                message = "ok"
            } else {
                message = "backing off: \(h.reason ?? "?"), next try \(h.nextTryAt.map(StatusFormat.time) ?? "?")"
            }
            targets.append(TargetHealth(name: h.target, state: h.state, reason: h.reason, failures: h.failures,
                                        nextTry: h.nextTryAt, accounting: h.accounting, lastPoll: h.lastPollAt, message: message))
        }
        return FactoryStatus(generatedAt: now, queues: queues, targets: targets, factory: try journal.factoryState())
    }

    /// The human table.
    public func text() -> String {
        func age(_ d: Date?) -> String {
            guard let d else { return "" }
            let s = max(0, Int(generatedAt.timeIntervalSince(d)))
            return s < 120 ? "\(s) s ago" : s < 7200 ? "\(s / 60) min ago" : "\(s / 3600) h ago"
        }
        let header = ["QUEUE", "TENANT", "TARGET", "STATE", "CREATED", "PENDING", "RUNNING", "EXITING", "DONE(1h)",
                      "FAULT(1h)", "LAST MESSAGE"]
        var rows: [[String]] = []
        for q in queues {
            let pending = q.held > 0 ? "\(q.pending) (\(q.held) held)" : "\(q.pending)"
            let last = q.lastMessage.map { m in (q.lastMessageAt.map { age($0) + ": " } ?? "") + m } ?? ""
            rows.append([q.name, q.tenant ?? "-", q.target ?? "-", q.state, "\(q.created)", pending, "\(q.running)",
                         "\(q.exiting)", "\(q.done1h)", "\(q.fault1h)", last])
        }
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func render(_ r: [String]) -> String {
            r.enumerated().map { i, c in i == r.count - 1 ? c : c.padding(toLength: widths[i] + 2, withPad: " ", startingAt: 0) }
                .joined()
        }
        var lines = [render(header)] + rows.map(render)
        if !targets.isEmpty {
            lines.append("")
            lines.append("targets:")
            for t in targets {
                var details: [String] = []
                if let p = t.lastPoll { details.append("last poll \(age(p))") }
                if let a = t.accounting, a != "not queried" { details.append("accounting \(a)") }
                if t.failures > 0 { details.append("\(t.failures) failure\(t.failures == 1 ? "" : "s")") }
                lines.append("  \(t.name): \(t.message)" + (details.isEmpty ? "" : " (\(details.joined(separator: "; ")))"))
            }
        }
        if let pid = factory["pid"], !pid.isEmpty {
            lines.append("")
            var d = "daemon: pid \(pid)"
            if let s = factory["started-at"] { d += ", started \(s)" }
            lines.append(d)
        }
        if let e = factory["config.last-error"], !e.isEmpty {
            lines.append("last configuration reload refused (running on the previous one): \(e)")
        }
        return lines.joined(separator: "\n")
    }
}
