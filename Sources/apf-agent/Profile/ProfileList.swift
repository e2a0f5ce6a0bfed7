import ArgumentParser
import AuthProfiles

extension ProfileCommand {
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List auth profiles.")

        @OptionGroup var options: StoreOptions
        @Option(help: "Only this tenant's profiles.") var tenant: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            var profiles = try options.store.profiles()
            if let tenant { profiles = profiles.filter { $0.tenant == tenant } }
            if json { return try CLIOutput.json(profiles) }
            CLIOutput.table(["PROFILE", "TENANT", "KIND", "DETAIL"], profiles.map { p in
                [p.name, p.tenant, p.kind.rawValue, Self.detail(p)]
            })
        }

        static func detail(_ p: Profile) -> String {
            if let s = p.ssh { return "\(s.keyType) \(s.fingerprint)\(s.encrypted ? " (encrypted)" : "")" }
            if let x = p.x509 {
                return "\(x.source.rawValue), renew \(x.renew.method.rawValue), minlife "
                    + DurationText.format(seconds: x.minlife)
            }
            if let e = p.ec2 { return "\(e.accessKeyID) \(e.region) \(e.endpointURL)" }
            if let o = p.openstack { return "\(o.applicationCredentialID) \(o.authURL)" }
            return ""
        }
    }
}
