import ArgumentParser

struct SSHCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssh", abstract: "Talk to an SSH host through the agent's own transport (libssh2, pooled).",
        subcommands: [Exec.self])
}
