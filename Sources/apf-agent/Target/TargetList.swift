import ArgumentParser
import AuthProfiles

extension TargetCommand {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List targets.")

        @OptionGroup var options: StoreOptions
        @Option(help: "Only this tenant's targets.") var tenant: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            var targets = try options.store.targets()
            if let tenant { targets = targets.filter { $0.tenant == tenant } }
            if json { return try CLIOutput.json(targets) }
            CLIOutput.table(["TARGET", "TENANT", "ADDRESS", "BATCH", "PROFILE", "JUMP"], targets.map { t in
                [t.name, t.tenant, t.address, t.batch.rawValue, t.profile ?? "-", t.jump ?? "-"]
            })
        }
    }
}
