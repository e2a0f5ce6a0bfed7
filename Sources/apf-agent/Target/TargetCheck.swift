import Agent
import ArgumentParser
import AuthProfiles
import SSHSubmit

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
            let resolver = options.resolver()
            let report = try await TargetChecker(resolver: resolver, logger: options.logger).check(target: name)
            await resolver.pools.shutdown(grace: .seconds(2))
            try CheckOutput.print(report, json: json)
        }
    }
}
