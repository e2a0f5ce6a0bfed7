/// What `apf-agent config check` prints.
public enum ConfigReport {
    /// `{"queues":[{"name","enabled","wmsstatus","batchstatus","sched":[…],"submit"}],"errors":[…],"warnings":[…]}`:
    /// every queue parsed, even those with errors; plugin names as configured, the chain in order.
    public static func json(_ config: AgentConfig) -> JSONValue {
        .object([
            (
                "queues",
                .array(
                    config.queues.map { q in
                        .object([
                            ("name", .string(q.name)),
                            ("enabled", .bool(q.enabled)),
                            ("wmsstatus", JSONValue(q.wmsStatusPlugin)),
                            ("batchstatus", JSONValue(q.batchStatusPlugin)),
                            ("sched", .array(q.schedPlugins.map { .string($0) })),
                            ("submit", JSONValue(q.submitPlugin)),
                        ])
                    })
            ),
            ("errors", .array(config.errors.map(json))),
            ("warnings", .array(config.warnings.map(json))),
        ])
    }

    /// One diagnostic as an object; absent fields are left out.
    public static func json(_ d: ConfigDiagnostic) -> JSONValue {
        var fields: [(String, JSONValue)] = [
            ("file", .string(d.file)), ("line", .int(d.line)), ("code", .string(d.code.id)),
        ]
        if let s = d.section { fields.append(("section", .string(s))) }
        if let k = d.key { fields.append(("key", .string(k))) }
        if let v = d.value { fields.append(("value", .string(v))) }
        fields.append(("message", .string(d.message)))
        if let c = d.choices { fields.append(("choices", .array(c.map { .string($0) }))) }
        if let s = d.suggestion { fields.append(("suggestion", .string(s))) }
        return .object(fields)
    }

    /// A table of queues, then errors and warnings with file:line, then a one-line verdict.
    public static func text(_ config: AgentConfig) -> String {
        var lines: [String] = []
        if !config.files.isEmpty {
            lines.append("read: " + config.files.map { "\($0.path) (\($0.kind.rawValue))" }.joined(separator: ", "))
        }
        if !config.queues.isEmpty {
            let rows = config.queues.map { q -> [String] in
                [
                    q.name, q.enabled ? "yes" : "no", q.wmsStatusPlugin ?? "-", q.batchStatusPlugin ?? "-",
                    q.submitPlugin ?? "-", q.schedPlugins.joined(separator: ","),
                    q.isUsable ? "ok" : "\(q.errorCount) error\(q.errorCount == 1 ? "" : "s")",
                ]
            }
            let header = ["QUEUE", "ENABLED", "WMS", "BATCH", "SUBMIT", "CHAIN", "STATE"]
            let widths = header.indices.map { i in ([header[i]] + rows.map { $0[i] }).map(\.count).max() ?? 0 }
            func fmt(_ r: [String]) -> String {
                r.indices.map { i in i == r.count - 1 ? r[i] : r[i].padding(widths[i]) }.joined(separator: "  ")
            }
            lines.append(fmt(header))
            lines += rows.map(fmt)
        }
        let errors = config.errors
        let warnings = config.warnings
        if !errors.isEmpty {
            lines.append("")
            lines.append("errors:")
            lines += errors.map { "  \($0)" }
        }
        if !warnings.isEmpty {
            lines.append("")
            lines.append("warnings:")
            lines += warnings.map { "  \($0)" }
        }
        let bad = config.queues.filter { !$0.isUsable }.count
        lines.append("")
        lines.append(
            "\(config.queues.count) queue\(config.queues.count == 1 ? "" : "s")"
                + (bad > 0 ? " (\(bad) with errors)" : "")
                + ", \(errors.count) error\(errors.count == 1 ? "" : "s"), \(warnings.count) warning\(warnings.count == 1 ? "" : "s"): "
                + (config.isValid ? "valid" : "INVALID"))
        return lines.joined(separator: "\n")
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
