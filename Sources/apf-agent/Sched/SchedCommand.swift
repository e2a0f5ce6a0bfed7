import ArgumentParser

struct SchedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sched", abstract: "Work with scheduler chains (schedplugin).", subcommands: [Simulate.self])
}
