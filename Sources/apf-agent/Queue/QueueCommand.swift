import Agent
import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "queue", abstract: "List, inspect, enable and disable queues.",
        subcommands: [List.self, Show.self, Enable.self, Disable.self])
}

extension QueueCommand {
    /// Shared by `enable` and `disable`: records the switch in the journal (it persists across restarts and
    /// overrides the file's `enabled`) and tells a running daemon with SIGHUP.
    static func setSwitch(_ options: DaemonOptions, queue: String, enabled: Bool, note: String?) throws {
        let config = options.loadConfig()
        if let config, config.queue(named: queue) == nil {
            throw ValidationError("no queue [\(queue)] in the configuration; queues: \(config.queues.map(\.name).joined(separator: ", "))")
        }
        let (journal, path) = try options.openJournal(config)
        try journal.setQueueControl(queue, enabled: enabled, note: note, at: Date())
        let word = enabled ? "enabled" : "disabled"
        let pid = PIDFile(journalPath: path)
        if let running = pid.runningPID(), pid.signal(SIGHUP) {
            CLIOutput.line("queue \(queue) \(word); the running daemon (pid \(running)) was told (SIGHUP)")
        } else {
            CLIOutput.line("queue \(queue) \(word); no daemon runs on \(path): it applies at the next start")
        }
    }
}
