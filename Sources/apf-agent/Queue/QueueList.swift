import Agent
import ArgumentParser
import Foundation

extension QueueCommand {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the configured queues.")

        @OptionGroup var options: DaemonOptions
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if options.config == nil { throw ValidationError("give the configuration with --config") }
        }

        struct Row: Encodable {
            var name: String
            var tenant: String
            var state: String
            var wmsstatus: String?
            var submit: String?
            var target: String?
            var sched: [String]
            var interval: Int
        }

        func run() async throws {
            guard let config = options.loadConfig() else { return }
            let controls = (try? options.openJournal(config).0.queueControls().mapValues(\.enabled)) ?? [:]
            let rows = config.queues.map { q -> Row in
                let state: String
                if !q.isUsable {
                    state = "invalid"
                } else {
                    state = (controls[q.name] ?? q.enabled) && config.factory.enableQueues ? "enabled" : "disabled"
                }
                var target: String?
                switch q.submit {
                case .ssh(let ref)?: target = ref.name
                case .local(let b)?: target = q.localTarget ?? "local:\(b)"
                case nil: target = nil
                }
                return Row(name: q.name, tenant: q.tenant, state: state, wmsstatus: q.wmsStatusPlugin, submit: q.submitPlugin,
                           target: target, sched: q.schedPlugins, interval: q.cycleInterval)
            }
            if json { return try CLIOutput.json(rows) }
            CLIOutput.table(["QUEUE", "TENANT", "STATE", "WMS", "SUBMIT", "TARGET", "EVERY", "CHAIN"], rows.map { r in
                [r.name, r.tenant, r.state, r.wmsstatus ?? "-", r.submit ?? "-", r.target ?? "-", "\(r.interval) s",
                 r.sched.joined(separator: ", ")]
            })
        }
    }
}
