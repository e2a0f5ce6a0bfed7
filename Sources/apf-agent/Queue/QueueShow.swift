import Agent
import ArgumentParser
import Foundation

extension QueueCommand {
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "Show a queue: settings, switch, pilot counts, last cycles and events.")

        @OptionGroup var options: DaemonOptions
        @Argument(help: "Queue name.") var queue: String
        @Option(help: "How many recent cycles to show.") var cycles: Int = 5

        func run() async throws {
            let config = options.loadConfig()
            let q = config?.queue(named: queue)
            if let config, q == nil {
                throw ValidationError("no queue [\(queue)] in the configuration; queues: \(config.queues.map(\.name).joined(separator: ", "))")
            }
            let journal = try? options.openJournal(config).0
            let control = try journal?.queueControls()[queue]
            var pairs: [(String, String?)] = [("queue", queue)]
            if let q {
                pairs += [
                    ("tenant", q.tenant), ("enabled in file", q.enabled ? "yes" : "no"),
                    ("wms status", q.wmsStatusPlugin.map { "\($0)\(q.wmsQueue.map { " (\($0))" } ?? "")" }),
                    ("chain", q.schedPlugins.joined(separator: ", ")), ("submit", q.submitPlugin),
                    ("executable", q.executable), ("every", "\(q.cycleInterval) s"),
                    ("retire", "\(q.retire.mode.rawValue), \(q.retire.order.rawValue) first"
                        + (q.retire.idleAfter.map { ", idle after \($0) s" } ?? "")),
                ]
                switch q.submit {
                case .ssh(let ref)?: pairs.append(("target", ref.name))
                case .local(let b)?: pairs.append(("target", (q.localTarget ?? "local:\(b)") + " (local mode, \(b))"))
                case nil: pairs.append(("target", "- (invalid: \(q.errorCount) error(s))"))
                }
            }
            if let control {
                pairs.append(("switch", "\(control.enabled ? "enabled" : "disabled") by `apf-agent queue` at \(StatusFormat.time(control.updatedAt))"
                    + (control.note.map { ": \($0)" } ?? "")))
            }
            if let journal {
                let c = try journal.counts(queue: queue)
                pairs.append(("pilots", "created \(c.created), pending \(c.queued) (held \(c.held)), running \(c.running), being cancelled \(c.leaving)"))
            }
            CLIOutput.keyValues(pairs)
            guard let journal else { return }
            let recent = try journal.recentCycles(queue: queue, limit: cycles)
            if !recent.isEmpty {
                CLIOutput.line("\nlast cycles:")
                for c in recent {
                    let what = c.decision == "blocked" ? "blocked: \(c.message ?? "")" : "\(c.decision) \(c.count)"
                    let times = c.repeats > 1 ? " (×\(c.repeats), last \(StatusFormat.time(c.lastSeenAt)))" : ""
                    CLIOutput.line("  \(StatusFormat.time(c.startedAt))  \(what)\(times)")
                    if !c.trace.isEmpty { CLIOutput.line("    \(c.trace)") }
                }
            }
            let events = try journal.events(queue: queue, limit: 10)
            if !events.isEmpty {
                CLIOutput.line("\nrecent events:")
                for e in events { CLIOutput.line("  \(StatusFormat.time(e.at))  \(e.kind)  \(e.pilotID.map { "\($0) " } ?? "")\(e.message)") }
            }
        }
    }
}
