import ArgumentParser

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Check APF configuration files (autopyfactory.conf, queues.conf, auth.conf, ...).",
        subcommands: [Check.self])
}
