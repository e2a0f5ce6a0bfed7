import ArgumentParser
import AuthProfiles

extension ProfileCommand {
    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove", abstract: "Remove a profile and its secret files.",
            discussion: "Refused while a target uses the profile, unless --force (the targets then have no profile).")

        @OptionGroup var options: StoreOptions
        @Argument(help: "Profile name.") var name: String
        @Flag(help: "Remove even while targets use it.") var force = false

        func run() async throws {
            let left = try options.store.removeProfile(name, force: force)
            CLIOutput.line("removed profile \(name)")
            if !left.isEmpty {
                CLIOutput.line("targets now without their profile: \(left.joined(separator: ", "))")
            }
        }
    }
}
