import ArgumentParser
import AuthProfiles

extension TenantCommand {
    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove", abstract: "Remove a tenant that owns no profiles or targets.")

        @OptionGroup var options: StoreOptions
        @Argument(help: "Tenant name.") var name: String

        func run() async throws {
            try options.store.removeTenant(name)
            CLIOutput.line("removed tenant \(name)")
        }
    }
}
