import Agent
import ArgumentParser
import AuthProfiles

extension ProfileCommand {
    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add", abstract: "Register an auth profile for a tenant.",
            discussion: """
                Secrets are never taken from arguments: passphrases and cloud secrets come from standard input \
                (--passphrase-stdin, --secret-stdin) or a file readable only by its owner.
                  ssh:       --generate | --key-file F   [--passphrase-stdin | --passphrase-file F]
                  x509:      --proxy-file F | --cert F --key F   [--minlife 2h] [--lifetime 24h] \
                [--renew none|native|command:[...]] [--ca-dir D]
                  ec2:       --access-key-id ID --secret-stdin --region R [--endpoint URL] [--session-token-file F]
                  openstack: --auth-url URL --application-credential-id ID --secret-stdin [--project P] \
                [--region R] [--interface public]
                """)

        @OptionGroup var options: StoreOptions
        @Argument(help: "Profile name, unique in the installation.") var name: String
        @Option(help: "Owning tenant.") var tenant: String
        @Option(help: "Credential kind: x509, ssh, ec2 or openstack.") var kind: ProfileKind

        // ssh
        @Flag(help: "ssh: generate a new Ed25519 key pair.") var generate = false
        @Option(help: "ssh: import this private key file (mode 0600).") var keyFile: String?
        @Flag(help: "ssh: read the key's passphrase from standard input.") var passphraseStdin = false
        @Option(help: "ssh: read the key's passphrase from this file (mode 0600).") var passphraseFile: String?
        @Option(help: "ssh: comment of a generated key.") var comment: String?

        // x509
        @Option(help: "x509: an existing proxy file (certificate, key, chain).") var proxyFile: String?
        @Option(help: "x509: user certificate (usercert.pem), for native proxy renewal.") var cert: String?
        @Option(help: "x509: user key (userkey.pem, unencrypted, mode 0600).") var key: String?
        @Option(help: "x509: renew when less than this is left (default 2h).") var minlife: String?
        @Option(help: "x509: lifetime of generated proxies (default 24h).") var lifetime: String?
        @Option(help: "x509: none, native, or command:[\"argv0\",\"arg\",…] with {out} {proxy} {cert} {key} {hours}.")
        var renew: String?
        @Option(help: "x509: trusted CA directory for chain checks (e.g. /etc/grid-security/certificates).")
        var caDir: String?

        // ec2
        @Option(help: "ec2: access key id.") var accessKeyId: String?
        @Option(help: "ec2/openstack: region.") var region: String?
        @Option(help: "ec2: endpoint URL (default https://ec2.<region>.amazonaws.com/).") var endpoint: String?
        @Option(help: "ec2: file holding a session token (mode 0600).") var sessionTokenFile: String?

        // openstack
        @Option(help: "openstack: Keystone v3 URL.") var authUrl: String?
        @Option(help: "openstack: application credential id.") var applicationCredentialId: String?
        @Option(help: "openstack: project the credential is scoped to.") var project: String?
        @Option(help: "openstack: catalog interface (public, internal, admin).") var interface: String?

        @Flag(help: "ec2/openstack: read the secret from standard input.") var secretStdin = false
        @Flag(help: "Print the new profile as JSON.") var json = false

        func validate() throws {
            func only(_ kinds: [ProfileKind], _ used: Bool, _ option: String) throws {
                if used, !kinds.contains(kind) {
                    throw ValidationError("\(option) does not apply to --kind \(kind.rawValue) (it is for "
                                              + "\(kinds.map(\.rawValue).joined(separator: "/")) profiles)")
                }
            }
            try only([.ssh], generate, "--generate")
            try only([.ssh], keyFile != nil, "--key-file")
            try only([.ssh], passphraseStdin, "--passphrase-stdin")
            try only([.ssh], passphraseFile != nil, "--passphrase-file")
            try only([.ssh], comment != nil, "--comment")
            try only([.x509], proxyFile != nil, "--proxy-file")
            try only([.x509], cert != nil, "--cert")
            try only([.x509], key != nil, "--key")
            try only([.x509], minlife != nil, "--minlife")
            try only([.x509], lifetime != nil, "--lifetime")
            try only([.x509], renew != nil, "--renew")
            try only([.x509], caDir != nil, "--ca-dir")
            try only([.ec2], accessKeyId != nil, "--access-key-id")
            try only([.ec2], endpoint != nil, "--endpoint")
            try only([.ec2], sessionTokenFile != nil, "--session-token-file")
            try only([.ec2, .openstack], region != nil, "--region")
            try only([.ec2, .openstack], secretStdin, "--secret-stdin")
            try only([.openstack], authUrl != nil, "--auth-url")
            try only([.openstack], applicationCredentialId != nil, "--application-credential-id")
            try only([.openstack], project != nil, "--project")
            try only([.openstack], interface != nil, "--interface")
            switch kind {
            case .ssh:
                if generate == (keyFile != nil) {
                    throw ValidationError("an ssh profile needs exactly one of --generate or --key-file F")
                }
                if passphraseStdin, passphraseFile != nil {
                    throw ValidationError("give the passphrase once: --passphrase-stdin or --passphrase-file")
                }
            case .x509:
                break
            case .ec2:
                guard accessKeyId != nil, region != nil else {
                    throw ValidationError("an ec2 profile needs --access-key-id ID --region R, and the secret on "
                                              + "standard input with --secret-stdin")
                }
                guard secretStdin else {
                    throw ValidationError("an ec2 profile needs --secret-stdin: the secret access key is read from "
                                              + "standard input, never from arguments")
                }
            case .openstack:
                guard authUrl != nil, applicationCredentialId != nil else {
                    throw ValidationError("an openstack profile needs --auth-url URL --application-credential-id ID, "
                                              + "and the secret on standard input with --secret-stdin")
                }
                guard secretStdin else {
                    throw ValidationError("an openstack profile needs --secret-stdin: the application credential "
                                              + "secret is read from standard input, never from arguments")
                }
            }
        }

        func run() async throws {
            let store = options.store
            _ = try store.tenant(tenant)
            let built: ProfileBuilder.Built
            switch kind {
            case .ssh:
                var passphrase: Secret?
                if passphraseStdin { passphrase = try Secret.readStandardInput(what: "passphrase") }
                if let passphraseFile { passphrase = try Secret.readFile(passphraseFile, what: "passphrase file") }
                if passphraseStdin, passphrase?.isEmpty == true {
                    throw AuthError.input(.missingSecret, "--passphrase-stdin was given but standard input is empty. "
                                              + "Fix: pipe the passphrase, e.g. `printf %s \"$PASS\" | apf-agent …`")
                }
                if generate {
                    built = try ProfileBuilder.sshGenerate(name: name, tenant: tenant, passphrase: passphrase,
                                                           comment: comment)
                } else {
                    built = try ProfileBuilder.sshImport(name: name, tenant: tenant, keyFile: keyFile!,
                                                         passphrase: passphrase)
                }
            case .x509:
                built = try await ProfileBuilder.x509(.init(
                    name: name, tenant: tenant, proxyFile: proxyFile, certFile: cert, keyFile: key, minlife: minlife,
                    lifetime: lifetime, renew: renew, caDirectory: caDir))
            case .ec2:
                let secret = try Secret.readStandardInput(what: "secret access key")
                let token = try sessionTokenFile.map { (f: String) throws(AuthError) in
                    try Secret.readFile(f, what: "session token file")
                }
                built = try ProfileBuilder.ec2(name: name, tenant: tenant, accessKeyID: accessKeyId!, secret: secret,
                                               sessionToken: token, region: region!, endpoint: endpoint)
            case .openstack:
                let secret = try Secret.readStandardInput(what: "application credential secret")
                built = try ProfileBuilder.openstack(
                    name: name, tenant: tenant, authURL: authUrl!, applicationCredentialID: applicationCredentialId!,
                    secret: secret, project: project, region: region, interface: interface)
            }
            try store.addProfile(built.profile, files: built.files)
            if json { return try CLIOutput.json(try ProfileView.load(name, store: store)) }
            CLIOutput.line("added \(kind.rawValue) profile \(name) (tenant \(tenant))")
            if let ssh = built.profile.ssh {
                CLIOutput.line("fingerprint \(ssh.fingerprint)")
                CLIOutput.line("public key (add to ~/.ssh/authorized_keys on the targets):")
                CLIOutput.line(ssh.publicKey)
            }
            if let x = built.profile.x509, x.renew.method == .command, built.files[.proxy] == nil {
                CLIOutput.line("no proxy yet: run `apf-agent profile check \(name)` to create the first one")
            }
        }
    }
}
