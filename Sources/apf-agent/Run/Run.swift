import Agent
import ArgumentParser
import AuthProfiles
import Foundation
import Logging

/// `apf-agent run`: the daemon, in the foreground.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run the factory in the foreground (systemd-friendly; logs on stderr).",
        discussion: """
            Loads the configuration (it must be valid; see `apf-agent config check`), reconciles intents left in \
            doubt by a previous run, then runs every queue's cycle. SIGTERM or SIGINT: no new cycles, submits in \
            flight finish and are recorded, exit within --shutdown-timeout. SIGHUP: re-read the configuration and \
            apply it only if valid (otherwise keep running on the last good one and log why), and re-read the \
            queue switches (`apf-agent queue enable|disable`). A pid file next to the journal lets the other verbs \
            find the daemon.
            """)

    @Option(help: "The configuration directory (or files, comma-separated).") var config: String
    @Option(help: "Installation home: targets, profiles, known_hosts (default: $APF_HOME, else /var/lib/apf as root, else ~/.apf).")
    var home: String?
    @Option(help: "The journal file (overrides [Factory] journal; default <home>/journal.sqlite).") var journal: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default: $APF_LOG_LEVEL or info).")
    var logLevel: String?
    @Option(help: "Seconds a graceful shutdown may take before work in flight is cancelled.") var shutdownTimeout: Int = 60
    @Option(help: "Seconds before a pilot missing from the listing and from accounting is lost.") var lostGrace: Int = 600
    @Option(help: "Seconds before an intent in doubt that is not found on its target is missed.") var missedGrace: Int = 600

    func validate() throws {
        if let logLevel, Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        if shutdownTimeout < 1 { throw ValidationError("--shutdown-timeout must be at least 1 second") }
        if lostGrace < 0 || missedGrace < 0 { throw ValidationError("--lost-grace and --missed-grace must not be negative") }
    }

    func run() async throws {
        var logger = Logger(label: "apf-agent")
        let env = ProcessInfo.processInfo.environment["APF_LOG_LEVEL"]
        logger.logLevel = Logger.Level(rawValue: logLevel ?? env ?? "info") ?? .info
        var options = FactoryOptions()
        options.lostGrace = .seconds(lostGrace)
        options.missedGrace = .seconds(missedGrace)
        let settings = DaemonSettings(
            configPaths: config.split(separator: ",").map(String.init), home: APFHome.resolve(explicit: home),
            journalPath: journal, options: options, shutdownTimeout: .seconds(shutdownTimeout))
        let daemon: AgentDaemon
        do {
            daemon = try await AgentDaemon.make(settings, logger: logger)
        } catch {
            CLIOutput.error(error.code == .invalidConfig ? "the configuration is not valid:\n\(error.message)" : error.description)
            throw ExitCode(error.code == .invalidConfig ? 2 : 1)
        }
        do {
            try await daemon.run()
        } catch let e as FactoryError {
            CLIOutput.error(e.description)
            throw ExitCode(1)
        }
    }
}
