import ArgumentParser
import AuthProfiles

extension TargetCommand {
    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove", abstract: "Remove a target (refused while another target jumps through it).")

        @OptionGroup var options: StoreOptions
        @Argument(help: "Target name.") var name: String

        func run() async throws {
            try options.store.removeTarget(name)
            CLIOutput.line("removed target \(name)")
        }
    }
}
