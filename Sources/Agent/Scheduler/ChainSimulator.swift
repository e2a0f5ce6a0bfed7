/// APF's `apf-simulate-scheds`: run one queue's real chain on given inputs. Works on a file that holds only the
/// queue's `schedplugin` and `sched.*` keys: only problems of the chain itself stop it.
public enum ChainSimulator {
    public struct Run: Sendable {
        public var queue: QueueConfig
        public var decision: ChainDecision
        public var facts: CycleFacts
    }

    /// Picks `queue` (or the only queue) of `config` and decides on `facts`.
    public static func run(_ config: AgentConfig, queue name: String?, facts: CycleFacts) throws(ConfigError) -> Run {
        let queue: QueueConfig
        if let name {
            guard let q = config.queue(named: name) else {
                let names = config.queues.map(\.name)
                throw ConfigError([
                    ConfigDiagnostic(
                        .error, .missingKey, at: config.files.first.map { ConfigLocation(file: $0.path, line: 0) }
                            ?? ConfigLocation(file: "-", line: 0),
                        "no queue [\(name)] in the configuration", choices: names,
                        suggestion: EditDistance.nearest(name, in: names))
                ] + config.errors)
            }
            queue = q
        } else {
            guard config.queues.count == 1, let q = config.queues.first else {
                throw ConfigError([
                    ConfigDiagnostic(
                        .error, .missingKey, at: config.files.first.map { ConfigLocation(file: $0.path, line: 0) }
                            ?? ConfigLocation(file: "-", line: 0),
                        config.queues.isEmpty
                            ? "the configuration has no queue section"
                            : "the configuration has \(config.queues.count) queues; choose one with --queue",
                        choices: config.queues.map(\.name))
                ] + config.errors)
            }
            queue = q
        }
        guard let chain = queue.chain else {
            throw ConfigError(chainErrors(config, queue: queue.name))
        }
        return Run(queue: queue, decision: chain.decide(facts), facts: facts)
    }

    /// Errors that concern the chain of `queue`: its `schedplugin` and `sched.*` keys, and unreadable files.
    public static func chainErrors(_ config: AgentConfig, queue: String) -> [ConfigDiagnostic] {
        config.errors.filter { d in
            let sectionOK = d.section == nil || d.section == queue || d.section == "DEFAULT"
            let keyOK = d.key.map { $0 == "schedplugin" || $0.hasPrefix("sched.") } ?? true
            return sectionOK && keyOK && d.code != .chainBlocks
        }
    }

    /// `{"steps":[{"plugin":…,"out":N,"msg":…}],"final":N}` (`out`/`final` null when the chain blocked).
    public static func json(_ run: Run) -> JSONValue {
        .object([
            (
                "steps",
                .array(
                    run.decision.steps.map { s in
                        .object([
                            ("plugin", .string(s.plugin)), ("out", s.output.map { .int($0) } ?? .null),
                            ("msg", .string(s.message)),
                        ])
                    })
            ),
            ("final", run.decision.final.map { .int($0) } ?? .null),
        ])
    }

    /// The report of APF's tool: inputs, then per plugin its configuration and output, then the final number.
    public static func text(_ run: Run) -> String {
        var lines = ["inputs:"]
        let f = run.facts
        lines.append("   activated :  \(f.wms.value.map { String($0.ready) } ?? "unknown")")
        lines.append("   pending   :  \(f.batch.value.map { String($0.pending) } ?? "unknown")")
        lines.append("   running   :  \(f.batch.value.map { String($0.running) } ?? "unknown")")
        lines.append("   status    :  \(f.site.value?.rawValue ?? "unknown")")
        for step in run.decision.steps {
            lines.append("")
            lines.append("sched plugin \(step.plugin)")
            lines.append("   configuration:")
            let prefix = "sched.\(step.plugin.lowercased())."
            for p in run.queue.schedParameters where p.key.hasPrefix(prefix) {
                lines.append("      \(p.key) = \(p.value) ")
            }
            if let out = step.output {
                lines.append("   output \(out) ")
            } else {
                lines.append("   blocked: \(step.blockedBy.joined(separator: "; "))")
            }
            lines.append("   trace: \(step.message)")
        }
        lines.append("")
        if let final = run.decision.final {
            lines.append("Final output \(final)")
        } else {
            lines.append("Final output: blocked (no pilots are submitted or retired while information is missing)")
        }
        return lines.joined(separator: "\n")
    }
}
