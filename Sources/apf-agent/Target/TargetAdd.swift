import ArgumentParser
import AuthProfiles

extension TargetCommand {
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add", abstract: "Add a target: a login node, its batch system and the profile to log in with.",
            discussion: "Then pin its host key with `apf-agent target trust NAME` and test it with `target check`.")

        @OptionGroup var options: StoreOptions
        @Argument(help: "Target name, unique in the installation.") var name: String
        @Option(help: "Owning tenant.") var tenant: String
        @Option(help: "Login node host name or address.") var host: String?
        @Option(help: "SSH port.") var port: Int = 22
        @Option(help: "Remote user.") var user: String?
        @Option(help: "Batch system: slurm, pbs, sge, condor or local.") var batch: TargetBatchSystem
        @Option(help: "An ssh profile of the same tenant.") var profile: String?
        @Option(help: "Default partition or queue.") var partition: String?
        @Option(help: "Default account or project.") var account: String?
        @Option(help: "Another target of the same tenant to jump through.") var jump: String?
        @Option(help: "Limit: pilots on this target.") var maxPilots: Int?
        @Option(help: "Limit: queued (not yet running) pilots.") var maxQueued: Int?
        @Option(help: "Limit: submissions per cycle.") var maxSubmitPerCycle: Int?

        func validate() throws {
            for (option, value) in [("--max-pilots", maxPilots), ("--max-queued", maxQueued),
                                    ("--max-submit-per-cycle", maxSubmitPerCycle)] {
                if let value, value < 0 { throw ValidationError("\(option) must be 0 or more") }
            }
        }

        func run() async throws {
            let target = Target(
                name: name, tenant: tenant, host: host, port: port, user: user, batch: batch, partition: partition,
                account: account, profile: profile, jump: jump,
                limits: TargetLimits(maxPilots: maxPilots, maxQueued: maxQueued, maxSubmitPerCycle: maxSubmitPerCycle))
            try options.store.addTarget(target)
            CLIOutput.line("added target \(name) (\(target.address), \(batch.rawValue), tenant \(tenant))")
            if host != nil { CLIOutput.line("next: apf-agent target trust \(name)") }
        }
    }
}
