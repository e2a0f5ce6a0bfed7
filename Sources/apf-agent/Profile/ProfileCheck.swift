import Agent
import ArgumentParser
import AuthProfiles
import SSHSubmit

extension ProfileCommand {
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check", abstract: "Exercise a credential for real (and renew an X.509 proxy below minlife).",
            discussion: """
                x509: renews when less than minlife is left (unless --no-renew), then checks chain and lifetime. \
                ssh: decrypts the key; with --target, logs in to that target. ec2: a signed DescribeRegions. \
                openstack: a Keystone v3 token. Exits 1 when any step fails.
                """)

        @OptionGroup var options: StoreOptions
        @Argument(help: "Profile name.") var name: String
        @Option(help: "ssh: log in to this target with the profile.") var target: String?
        @Flag(help: "x509: do not renew, only report.") var noRenew = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let resolver = options.resolver()
            let checker = ProfileChecker(resolver: resolver, logger: options.logger)
            let report = try await checker.check(profile: name, target: target, renew: !noRenew)
            await resolver.pools.shutdown(grace: .seconds(2))
            try CheckOutput.print(report, json: json)
        }
    }
}
