import Agent
import ArgumentParser
import AuthProfiles
import Foundation
import Logging

/// Where the CLI verbs find a factory: its configuration (for queue names and settings) and its journal (what the
/// daemon recorded). The daemon is found through the pid file next to the journal.
struct DaemonOptions: ParsableArguments {
    @Option(help: "The configuration directory (or files, comma-separated) the daemon runs with.")
    var config: String?

    @Option(help: "The journal file (default: [Factory] journal of --config, else <home>/journal.sqlite).")
    var journal: String?

    @Option(help: "Installation home (default: $APF_HOME, else /var/lib/apf as root, else ~/.apf).")
    var home: String?

    var homePath: String { APFHome.resolve(explicit: home) }

    var configPaths: [String] { config.map { $0.split(separator: ",").map(String.init) } ?? [] }

    /// The loaded configuration, if --config was given.
    func loadConfig() -> AgentConfig? {
        configPaths.isEmpty ? nil : ConfigLoader().load(paths: configPaths)
    }

    func journalPath(_ config: AgentConfig?) -> String {
        if let journal { return journal }
        if let config { return AgentDaemon.journalPath(config: config, home: homePath) }
        return homePath + "/journal.sqlite"
    }

    /// Opens an existing journal (never creates one: a wrong path is an error, not an empty factory).
    func openJournal(_ config: AgentConfig?) throws -> (AgentStore, String) {
        let path = journalPath(config)
        guard FileManager.default.fileExists(atPath: path) else {
            throw ValidationError("no journal at \(path): give the daemon's --config (its [Factory] journal) or --journal")
        }
        do {
            return (try AgentStore.open(path: path), path)
        } catch {
            throw ValidationError("cannot open the journal \(path): \(error.message)")
        }
    }
}
