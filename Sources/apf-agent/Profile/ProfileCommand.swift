public import ArgumentParser

struct ProfileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile", abstract: "Manage auth profiles (X.509 proxies, SSH key pairs, EC2 and OpenStack keys).",
        subcommands: [Add.self, List.self, Show.self, Check.self, Remove.self])
}

extension ProfileKind: ExpressibleByArgument {}

public import AuthProfiles
