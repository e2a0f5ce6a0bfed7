import Agent
import ArgumentParser
import AuthProfiles

extension TargetCommand {
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check",
            abstract: "Connect and log in with the target's profile, and find the batch commands and their versions.",
            discussion: "Exits 1 when a step fails (unknown host key, login refused, batch commands missing).")

        @OptionGroup var options: StoreOptions
        @Argument(help: "Target name.") var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let checker = TargetChecker(resolver: options.resolver(), logger: options.logger)
            try CheckOutput.print(try await checker.check(target: name), json: json)
        }
    }
}
