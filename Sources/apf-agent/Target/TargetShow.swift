import ArgumentParser
import AuthProfiles
import SSHSubmit

extension TargetCommand {
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Show a target.")

        @OptionGroup var options: StoreOptions
        @Argument(help: "Target name.") var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let store = options.store
            let t = try store.target(name)
            if json { return try CLIOutput.json(t) }
            var pinned = "-"
            if let host = t.host, let kh = try? KnownHosts.load(path: store.knownHostsPath) {
                let types = kh.knownKeyTypes(host: host, port: t.port)
                pinned = types.isEmpty ? "not trusted yet (apf-agent target trust \(name))" : types.joined(separator: ", ")
            }
            CLIOutput.keyValues([
                ("target", t.name), ("tenant", t.tenant), ("address", t.address), ("batch", t.batch.rawValue),
                ("profile", t.profile), ("jump", t.jump), ("partition", t.partition), ("account", t.account),
                ("max pilots", t.limits.maxPilots.map(String.init)), ("max queued", t.limits.maxQueued.map(String.init)),
                ("max submit/cycle", t.limits.maxSubmitPerCycle.map(String.init)),
                ("host key", t.host == nil ? nil : pinned), ("created", CLIOutput.date(t.created)),
            ])
        }
    }
}
