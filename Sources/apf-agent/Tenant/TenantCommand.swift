import ArgumentParser

struct TenantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant", abstract: "Manage tenants (owners of profiles and targets).",
        subcommands: [Add.self, List.self, Remove.self])
}
