public import ArgumentParser
public import AuthProfiles

struct TargetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "target", abstract: "Manage targets (remote clusters reached over SSH with a tenant's profile).",
        subcommands: [Add.self, Trust.self, Check.self, List.self, Show.self, Remove.self])
}

extension TargetBatchSystem: ExpressibleByArgument {}
