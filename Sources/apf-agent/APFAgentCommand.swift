import Agent
import ArgumentParser
import AuthProfiles
import Foundation
import Glibc
import Logging
import SSHSubmit

@main
struct APFAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apf-agent",
        abstract: "A multi-tenant pilot factory that keeps pilots running on remote clusters over SSH.",
        version: APFAgent.version,
        subcommands: [TenantCommand.self, ProfileCommand.self, TargetCommand.self, ConfigCommand.self, SchedCommand.self,
                      QueueCommand.self, RunCommand.self, StatusCommand.self, SSHCommand.self])

    /// Runs the command and maps errors to exit codes: 2 for bad input (usage errors, invalid files or names,
    /// duplicates, cross-tenant references), 1 for failures (a check that failed, an unreachable host).
    static func main() async {
        umask(0o077)
        // The daemon logs structured logfmt lines (one event per line, values as keys); the other verbs keep
        // swift-log's plain stream format for their occasional diagnostics.
        if CommandLine.arguments.dropFirst().first == "run" {
            LoggingSystem.bootstrap { LogfmtHandler(label: $0) }
        } else {
            LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as AuthError {
            CLIOutput.error(error.description)
            Glibc.exit(error.isBadInput ? 2 : 1)
        } catch let error as SSHError {
            CLIOutput.error(error.description)
            Glibc.exit(1)
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                // One line: the problem and what to give instead (`--help` shows the full usage).
                CLIOutput.error(message(for: error) + " (see --help)")
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}
