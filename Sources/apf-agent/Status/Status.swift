import Agent
import ArgumentParser
import Foundation

/// `apf-agent status`: per queue apfmon's columns, per target its health, from the journal.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show queues (created, pending, running, exiting, done/fault in the last hour, last message) and target health.",
        discussion: """
            Reads the journal the daemon writes (found through --config, or --journal). Pending includes held \
            pilots (shown apart). A target that failed shows "backing off: <reason>, next try <time>".
            """)

    @OptionGroup var daemon: DaemonOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let config = daemon.loadConfig()
        let (journal, path) = try daemon.openJournal(config)
        var status = try FactoryStatus.read(journal: journal, config: config, now: Date())
        // The journal's pid is what the daemon wrote; the pid file tells whether it still runs.
        status.factory["pid"] = PIDFile(journalPath: path).runningPID().map(String.init) ?? ""
        if json { return try CLIOutput.json(status) }
        CLIOutput.line(status.text())
        if status.factory["pid"]?.isEmpty != false { CLIOutput.line("\ndaemon: not running (journal \(path))") }
    }
}
