import Agent
import ArgumentParser
import AuthProfiles
import Foundation
import SSHSubmit

extension TargetCommand {
    struct Trust: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "trust", abstract: "Fetch a target's host key and pin it in the installation's known_hosts.",
            discussion: """
                Shows the key's SHA256 fingerprint. Nothing is written unless you confirm: --fingerprint with the \
                value the site published (compared exactly), or --yes to accept what was fetched. A different key \
                already pinned for the host is refused unless --replace.
                """)

        @OptionGroup var options: StoreOptions
        @Argument(help: "Target name.") var name: String
        @Option(help: "The expected SHA256:… fingerprint; the key is pinned only if it matches.") var fingerprint: String?
        @Flag(help: "Pin the fetched key without comparing a fingerprint.") var yes = false
        @Flag(help: "Replace a different key already pinned for this host.") var replace = false
        @Option(help: "Host key type to ask for (default: ssh-ed25519, then ECDSA, then RSA).") var keyType: String?
        @Flag(help: "Print JSON.") var json = false

        struct Result: Codable {
            var target: String
            var host: String
            var keyType: String
            var fingerprint: String
            var knownHostsLine: String
            var knownHosts: String
            var written: Bool
            var outcome: String
        }

        func validate() throws {
            if let fingerprint, !fingerprint.hasPrefix("SHA256:") {
                throw ValidationError("--fingerprint must be an OpenSSH SHA256 fingerprint like SHA256:AbC… "
                                          + "(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the host)")
            }
            if replace, fingerprint == nil {
                throw ValidationError("--replace needs --fingerprint: a changed host key must be confirmed explicitly")
            }
        }

        func run() async throws {
            let resolver = options.resolver()
            let target = try resolver.store.target(name)
            guard let host = target.host else {
                throw AuthError.input(.badValue, "target '\(name)' is local; it has no host key")
            }
            let key = try await HostTrust.scan(target: name, resolver: resolver, keyTypes: keyType.map { [$0] })
            await resolver.pools.shutdown(grace: .seconds(1))
            var result = Result(target: name, host: KnownHosts.hostName(host, port: target.port), keyType: key.keyType,
                                fingerprint: key.fingerprint, knownHostsLine: key.knownHostsLine(host: host, port: target.port),
                                knownHosts: resolver.store.knownHostsPath, written: false, outcome: "shown")
            var mismatch: String?
            if let fingerprint, fingerprint != key.fingerprint {
                mismatch = "the host presents \(key.keyType) \(key.fingerprint), not \(fingerprint): nothing was written. "
                    + "Check the fingerprint with the site; a mismatch can mean an attack"
                result.outcome = "fingerprint-mismatch"
            } else if fingerprint != nil || yes {
                let pin = try HostTrust.pin(key, host: host, port: target.port,
                                            knownHostsPath: resolver.store.knownHostsPath, replace: replace)
                result.outcome = pin.rawValue
                result.written = pin != .alreadyTrusted
            }
            if json {
                try CLIOutput.json(result)
            } else {
                CLIOutput.keyValues([("target", name), ("host", result.host), ("key", key.keyType),
                                     ("fingerprint", key.fingerprint)])
                switch result.outcome {
                case "shown":
                    CLIOutput.line("not trusted yet. Compare the fingerprint with the site's, then run:")
                    CLIOutput.line("  apf-agent target trust \(name) --fingerprint \(key.fingerprint)")
                case "fingerprint-mismatch": break
                case "already-trusted": CLIOutput.line("already trusted in \(result.knownHosts)")
                default: CLIOutput.line("\(result.outcome): \(result.knownHostsLine) -> \(result.knownHosts)")
                }
            }
            if let mismatch { throw AuthError(HostTrust.mismatch, mismatch) }
        }
    }
}
