import Agent
import ArgumentParser
import Foundation

extension ConfigCommand {
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Validate a configuration directory or single APF files.",
            discussion: """
                A directory is read like /etc/autopyfactory: autopyfactory.conf (or factory.conf), queues.conf, \
                queues.d/*.conf, auth.conf and monitor.conf (paths named in [Factory] are followed). Single files \
                are recognised by their sections and names. Every queue that could be parsed is listed, with every \
                error and warning (file:line, key, value, valid choices). Exit status 0 when valid, 2 otherwise.
                """)

        @Argument(help: "Configuration directories or files.") var paths: [String]
        @Flag(help: "Print {\"queues\":[…],\"errors\":[…],\"warnings\":[…]} as JSON.") var json = false

        func validate() throws {
            if paths.isEmpty { throw ValidationError("Give a configuration directory or at least one file.") }
        }

        func run() async throws {
            let config = ConfigLoader().load(paths: paths)
            if json {
                print(ConfigReport.json(config).rendered())
            } else {
                print(ConfigReport.text(config))
            }
            if !config.isValid { throw ExitCode(2) }
        }
    }
}
