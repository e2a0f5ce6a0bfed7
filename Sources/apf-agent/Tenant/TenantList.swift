import ArgumentParser
import AuthProfiles

extension TenantCommand {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List tenants.")

        @OptionGroup var options: StoreOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let store = options.store
            let tenants = try store.tenants()
            if json { return try CLIOutput.json(tenants) }
            let profiles = try store.profiles()
            let targets = try store.targets()
            CLIOutput.table(["TENANT", "PROFILES", "TARGETS", "DESCRIPTION"], tenants.map { t in
                [t.name, String(profiles.filter { $0.tenant == t.name }.count),
                 String(targets.filter { $0.tenant == t.name }.count), t.description ?? ""]
            })
        }
    }
}
