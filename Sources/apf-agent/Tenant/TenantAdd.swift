import ArgumentParser
import AuthProfiles

extension TenantCommand {
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "add", abstract: "Add a tenant.")

        @OptionGroup var options: StoreOptions
        @Argument(help: "Tenant name (letters, digits, '.', '_', '-').") var name: String
        @Option(help: "A description.") var description: String?

        func run() async throws {
            try options.store.addTenant(Tenant(name: name, description: description))
            CLIOutput.line("added tenant \(name)")
        }
    }
}
