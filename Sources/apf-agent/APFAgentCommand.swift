import Agent
import ArgumentParser

@main
struct APFAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apf-agent",
        abstract: "A multi-tenant pilot factory that keeps pilots running on remote clusters over SSH.",
        version: APFAgent.version,
        subcommands: [ConfigCommand.self, SchedCommand.self, SSHCommand.self])
}
