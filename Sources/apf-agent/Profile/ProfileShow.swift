import Agent
import ArgumentParser
import AuthProfiles

extension ProfileCommand {
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "Show a profile's public details (never its secrets).")

        @OptionGroup var options: StoreOptions
        @Argument(help: "Profile name.") var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let view = try ProfileView.load(name, store: options.store)
            if json { return try CLIOutput.json(view) }
            let p = view.profile
            var pairs: [(String, String?)] = [
                ("profile", p.name), ("tenant", p.tenant), ("kind", p.kind.rawValue),
                ("created", CLIOutput.date(p.created)), ("updated", p.updated.map(CLIOutput.date)),
                ("used by", view.usedBy.isEmpty ? "-" : view.usedBy.joined(separator: ", ")),
            ]
            if let s = p.ssh {
                pairs += [("key", "\(s.keyType), \(s.format) format, \(s.generated ? "generated" : "imported"), "
                               + (s.encrypted ? "encrypted (passphrase stored)" : "not encrypted")),
                          ("fingerprint", s.fingerprint), ("public key", s.publicKey)]
            }
            if let x = p.x509 {
                var renew = x.renew.method.rawValue
                if let argv = x.renew.command { renew += ": " + argv.joined(separator: " ") }
                pairs += [("source", x.source.rawValue), ("minlife", DurationText.format(seconds: x.minlife)),
                          ("lifetime", DurationText.format(seconds: x.lifetime)), ("renew", renew),
                          ("ca dir", x.caDirectory), ("proxy", view.proxyProblem)]
            }
            if let e = p.ec2 {
                pairs += [("access key", e.accessKeyID), ("region", e.region), ("endpoint", e.endpointURL),
                          ("session token", e.hasSessionToken ? "yes (stored)" : "no"), ("secret", "stored (0600)")]
            }
            if let o = p.openstack {
                pairs += [("auth url", o.authURL), ("credential", o.applicationCredentialID), ("project", o.project),
                          ("region", o.region), ("interface", o.interface), ("secret", "stored (0600)")]
            }
            CLIOutput.keyValues(pairs)
            if let proxy = view.proxy { X509Text.print(proxy, indent: "") }
        }
    }
}
