@testable import AuthProfiles
import Foundation
import Glibc
import Testing

/// The built `apf-agent` binary run as a subprocess against a temporary installation. One case at a time: each
/// spawns several processes, and 29 in parallel would load the 2-core machine for the timing-sensitive suites.
@Suite(.serialized)
struct CLIBadInputTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var args: [String]
        var stdin: String = ""
        /// Substrings the single error line must contain: the problem and the fix.
        var expect: [String]
        var testDescription: String { name }
    }

    /// Proxies and keys the cases refer to: made once, written into each case's home.
    struct Material: Sendable {
        let proxy: String
        let expired: String
        let encryptedKey: String
        let plainKey: String

        static let shared: Material = {
            let pki = TestPKI.shared
            let (enc, _) = SSHPrivateKey.generateEd25519(comment: "x", passphrase: Secret("the right one"), rounds: 2)
            let (plain, _) = SSHPrivateKey.generateEd25519(comment: "y", passphrase: nil)
            // The expired proxy was made 3 hours ago with a 2-hour lifetime: it expired an hour ago.
            return Material(proxy: try! pki.proxy(lifetime: 3600),
                            expired: try! pki.proxy(lifetime: 7200, now: Date().addingTimeInterval(-3 * 3600)),
                            encryptedKey: enc.withBytes { String(decoding: $0, as: UTF8.self) },
                            plainKey: plain.withBytes { String(decoding: $0, as: UTF8.self) })
        }()
    }

    static func prepare(_ home: TempDir) throws {
        let pki = TestPKI.shared
        let m = Material.shared
        try home.write("garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
        try home.write("truncated.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n")
        try home.write("proxy.pem", m.proxy)
        try home.write("expired.pem", m.expired)
        try home.write("open-proxy.pem", m.proxy, mode: 0o644)
        try home.write("enc_key", m.encryptedKey)
        try home.write("open_key", m.plainKey, mode: 0o644)
        try home.write("pub_only", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ2yypedWL03a/SWGPYM4gghdatpJCkKxmpkI+kCFZZ1 x\n")
        try home.write("usercert.pem", try pki.userCertPEM, mode: 0o644)
        try home.write("userkey.pem", pki.userKeyPEM)
        try home.write("usercert+key.pem", try pki.userCertPEM + pki.userKeyPEM)
    }

    static let cases: [Case] = [
        Case(name: "malformed PEM", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "x509", "--proxy-file", "H/garbage.pem"],
             expect: ["[auth.malformed-pem]", "not valid base64", "Fix"]),
        Case(name: "truncated PEM", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "x509", "--proxy-file", "H/truncated.pem"],
             expect: ["[auth.malformed-pem]", "no END line", "Fix"]),
        Case(name: "public key given as private key", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "ssh", "--key-file", "H/pub_only"],
             expect: ["[auth.malformed-key]", "Fix: give the private key file"]),
        Case(name: "wrong passphrase", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "ssh", "--key-file", "H/enc_key", "--passphrase-stdin"],
             stdin: "the wrong one\n", expect: ["[auth.wrong-passphrase]", "Fix: give the passphrase"]),
        Case(name: "encrypted key without passphrase", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "ssh", "--key-file", "H/enc_key"],
             expect: ["[auth.wrong-passphrase]", "--passphrase-stdin"]),
        Case(name: "key file with open permissions", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "ssh", "--key-file", "H/open_key"],
             expect: ["[auth.permissions]", "0644", "Fix: chmod 600"]),
        Case(name: "proxy file with open permissions", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "x509", "--proxy-file", "H/open-proxy.pem"],
             expect: ["[auth.permissions]", "Fix: chmod 600"]),
        Case(name: "already-expired proxy", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "x509", "--proxy-file", "H/expired.pem"],
             expect: ["[auth.expired]", "EXPIRED at", "(1h ago)", "Fix"]),
        Case(name: "unknown kind", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "kerberos"],
             expect: ["'kerberos' is invalid for '--kind <kind>'", "'x509', 'ssh', 'ec2' or 'openstack'"]),
        Case(name: "duplicate profile name", args: ["profile", "add", "taken", "--tenant", "cms", "--kind", "ssh", "--generate"],
             expect: ["[auth.duplicate]", "tenant 'atlas'", "Choose another name"]),
        Case(name: "duplicate tenant", args: ["tenant", "add", "atlas"], expect: ["[auth.duplicate]", "choose another name"]),
        Case(name: "cross-tenant reference", args: ["target", "add", "t", "--tenant", "cms", "--host", "h", "--user", "u", "--batch", "slurm", "--profile", "taken"],
             expect: ["[auth.cross-tenant]", "tenant 'cms'", "tenant 'atlas'", "Fix: use a profile of tenant 'cms'"]),
        Case(name: "missing secret on stdin (ec2)", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "ec2", "--access-key-id", "AKIAEXAMPLE", "--region", "us-east-1", "--secret-stdin"],
             expect: ["[auth.missing-secret]", "Fix: pipe it"]),
        Case(name: "missing secret on stdin (openstack)", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "openstack", "--auth-url", "https://k.example.org/v3", "--application-credential-id", "abc", "--secret-stdin"],
             expect: ["[auth.missing-secret]", "Fix: pipe it"]),
        Case(name: "secret not on stdin", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "ec2", "--access-key-id", "AKIAEXAMPLE", "--region", "us-east-1"],
             expect: ["needs --secret-stdin", "never from arguments"]),
        Case(name: "empty passphrase on stdin", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "ssh", "--generate", "--passphrase-stdin"],
             expect: ["[auth.missing-secret]", "Fix: pipe the passphrase"]),
        Case(name: "unknown tenant", args: ["profile", "add", "x", "--tenant", "nobody", "--kind", "ssh", "--generate"],
             expect: ["[auth.not-found]", "Fix: apf-agent tenant add nobody"]),
        Case(name: "bad name", args: ["tenant", "add", "../etc"], expect: ["[auth.bad-name]", "letters, digits"]),
        Case(name: "option of another kind", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "ssh", "--generate", "--proxy-file", "H/proxy.pem"],
             expect: ["--proxy-file does not apply to --kind ssh"]),
        Case(name: "native renewal without cert", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "x509", "--proxy-file", "H/proxy.pem", "--renew", "native"],
             expect: ["[auth.bad-value]", "Fix: add the profile with --cert and --key"]),
        Case(name: "renew command as a shell string", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "x509", "--cert", "H/usercert.pem", "--key", "H/userkey.pem", "--renew", "command:voms-proxy-init -out {out}"],
             expect: ["[auth.bad-value]", "JSON array", "never a shell string"]),
        Case(name: "bad duration", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "x509", "--cert", "H/usercert.pem", "--key", "H/userkey.pem", "--minlife", "soon"],
             expect: ["[auth.bad-value]", "e.g. 6h"]),
        Case(name: "user certificate given as proxy", args: ["profile", "add", "x", "--tenant", "atlas", "--kind", "x509", "--proxy-file", "H/usercert+key.pem"],
             expect: ["[auth.bad-value]", "is not a proxy", "Fix: for a user certificate use --cert and --key"]),
        Case(name: "port out of range", args: ["target", "add", "t", "--tenant", "atlas", "--host", "h", "--port", "70000", "--user", "u", "--batch", "slurm", "--profile", "taken"],
             expect: ["[auth.bad-value]", "1-65535"]),
        Case(name: "unknown jump target", args: ["target", "add", "t", "--tenant", "atlas", "--host", "h", "--user", "u", "--batch", "slurm", "--profile", "taken", "--jump", "nowhere"],
             expect: ["[auth.not-found]", "no target 'nowhere'"]),
        Case(name: "remove a profile in use", args: ["profile", "remove", "used"], expect: ["[auth.in-use]", "used by target(s) gw", "Fix"]),
        Case(name: "remove a tenant that owns things", args: ["tenant", "remove", "atlas"], expect: ["[auth.in-use]", "Fix: remove them first"]),
        Case(name: "trust a local target", args: ["target", "trust", "loc", "--yes"], expect: ["is local"]),
        Case(name: "unknown profile", args: ["profile", "show", "ghost"], expect: ["[auth.not-found]", "apf-agent profile list"]),
    ]

    @Test(arguments: cases)
    func badInputExitsTwoWithOneMessageAndLeavesTheStoreUnchanged(_ c: Case) async throws {
        let home = try TempDir("apf-bad")
        defer { home.remove() }
        try Self.prepare(home)
        func cli(_ args: [String], stdin: String = "") async throws -> Run { try await CLI.run(args, home: home.path, stdin: stdin) }
        for setup in [["tenant", "add", "atlas"], ["tenant", "add", "cms"],
                      ["profile", "add", "taken", "--tenant", "atlas", "--kind", "ssh", "--generate"],
                      ["profile", "add", "used", "--tenant", "atlas", "--kind", "ssh", "--generate"],
                      ["target", "add", "gw", "--tenant", "atlas", "--host", "gw", "--user", "u", "--batch", "slurm", "--profile", "used"],
                      ["target", "add", "loc", "--tenant", "atlas", "--batch", "local"]] {
            let r = try await cli(setup)
            #expect(r.status == 0, "setup \(setup): \(r.output)")
        }
        let before = snapshot(home.file("store"))
        let args = c.args.map { $0.replacingOccurrences(of: "H/", with: home.path + "/") }
        let r = try await cli(args, stdin: c.stdin)
        #expect(r.status == 2, "\(c.name): exit \(r.status): \(r.output)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(c.name): one message expected, got: \(r.stderr)")
        #expect(r.stderr.hasPrefix("apf-agent: error: "))
        for s in c.expect { #expect(r.stderr.contains(s), "\(c.name): '\(s)' missing in: \(r.stderr)") }
        #expect(r.stdout.isEmpty, "\(c.name): \(r.stdout)")
        #expect(snapshot(home.file("store")) == before, "\(c.name) changed the store")
    }
}

/// A canary secret planted as SSH passphrase, EC2 secret, session token and OpenStack secret must appear in no
/// output (text, --json, errors, trace logs), no store file but its own secret file, and no child environment.
struct CanaryTests {
    @Test(.timeLimit(.minutes(2))) func canarySecretAppearsNowhere() async throws {
        let canary = "CANARY-\(UUID().uuidString)"
        let home = try TempDir("apf-canary")
        defer { home.remove() }
        let fake = try FakeKeystoneV3(credentialID: "cred-1", secret: canary)
        defer { fake.stop() }
        var outputs: [(String, Run)] = []
        func cli(_ args: String..., stdin: String = "") async throws -> Run {
            let r = try await CLI.run(args + ["--log-level", "trace"], home: home.path, stdin: stdin)
            outputs.append((args.joined(separator: " "), r))
            return r
        }
        let pki = TestPKI.shared
        try home.write("usercert.pem", try pki.userCertPEM, mode: 0o644)
        try home.write("userkey.pem", pki.userKeyPEM)
        try home.write("token", canary + "\n")
        // A renewal command that records its environment and arguments, then fails.
        let envDump = home.file("renew-env.txt")
        let script = try home.write("renew.sh", "#!/bin/sh\nenv > '\(envDump)'\necho \"$@\" >> '\(envDump)'\nexit 3\n",
                                    mode: 0o700)
        #expect(try await cli("tenant", "add", "atlas").status == 0)
        #expect(try await cli("profile", "add", "ssh1", "--tenant", "atlas", "--kind", "ssh", "--generate",
                        "--passphrase-stdin", stdin: canary).status == 0)
        #expect(try await cli("profile", "add", "ec2", "--tenant", "atlas", "--kind", "ec2", "--access-key-id",
                        "AKIAIOSFODNN7EXAMPLE", "--region", "us-east-1", "--endpoint", "http://127.0.0.1:9/",
                        "--session-token-file", home.file("token"), "--secret-stdin", stdin: canary + "\n").status == 0)
        #expect(try await cli("profile", "add", "os", "--tenant", "atlas", "--kind", "openstack", "--auth-url", fake.authURL,
                        "--application-credential-id", "cred-1", "--secret-stdin", stdin: canary).status == 0)
        #expect(try await cli("profile", "add", "os-bad", "--tenant", "atlas", "--kind", "openstack", "--auth-url",
                        fake.authURL, "--application-credential-id", "cred-1", "--secret-stdin",
                        stdin: canary + "-wrong").status == 0)
        let renew = String(decoding: try JSONSerialization.data(withJSONObject: [script, "{out}", "{hours}"]),
                           as: UTF8.self)
        #expect(try await cli("profile", "add", "x509", "--tenant", "atlas", "--kind", "x509", "--cert",
                        home.file("usercert.pem"), "--key", home.file("userkey.pem"), "--renew", "command:" + renew)
            .status == 0)
        #expect(try await cli("target", "add", "t1", "--tenant", "atlas", "--host", "127.0.0.1", "--port", "9", "--user",
                        "u", "--batch", "slurm", "--profile", "ssh1").status == 0)
        for json in [false, true] {
            let j = json ? ["--json"] : []
            func verb(_ a: [String]) async throws {
                let r = try await CLI.run(a + j + ["--log-level", "trace"], home: home.path)
                outputs.append((a.joined(separator: " "), r))
            }
            try await verb(["tenant", "list"])
            try await verb(["profile", "list"])
            try await verb(["target", "list"])
            try await verb(["target", "show", "t1"])
            for p in ["ssh1", "ec2", "os", "os-bad", "x509"] {
                try await verb(["profile", "show", p])
                try await verb(["profile", "check", p])
            }
            try await verb(["profile", "check", "ssh1", "--target", "t1"])
            try await verb(["target", "check", "t1"])
            try await verb(["target", "trust", "t1"])
        }
        // Error paths with the canary on stdin.
        _ = try await cli("profile", "add", "ssh1", "--tenant", "atlas", "--kind", "ssh", "--generate", "--passphrase-stdin",
                    stdin: canary)
        _ = try await cli("profile", "add", "ec2", "--tenant", "atlas", "--kind", "ec2", "--access-key-id", "AKIA0000",
                    "--region", "us-east-1", "--secret-stdin", stdin: canary)
        _ = try await cli("profile", "add", "imp", "--tenant", "atlas", "--kind", "ssh", "--key-file",
                    home.file("store/profiles/ssh1/id"), "--passphrase-stdin", stdin: canary + "x")

        #expect(outputs.contains { $0.1.status == 1 }, "some checks must fail (error paths covered)")
        #expect(outputs.contains { $0.1.stderr.contains(" trace ") || $0.1.stderr.contains(" debug ") || $0.1.stderr.contains(" info ") },
                "logging was on")
        for (what, r) in outputs {
            #expect(!r.stdout.contains(canary) && !r.stderr.contains(canary), "canary leaked by `\(what)`")
        }
        // Store files: only the secret files hold it (positive control: it was really planted there).
        let secretFiles: Set = ["profiles/ssh1/passphrase", "profiles/ec2/secret", "profiles/ec2/session-token",
                                "profiles/os/secret", "profiles/os-bad/secret"]
        var planted = 0
        let store = home.file("store")
        for rel in FileManager.default.enumerator(atPath: store)!.compactMap({ $0 as? String }) {
            guard let data = FileManager.default.contents(atPath: store + "/" + rel) else { continue }
            let text = String(decoding: data, as: UTF8.self)
            if secretFiles.contains(rel) {
                #expect(text.hasPrefix(canary), "\(rel)")
                #expect(mode(of: store + "/" + rel) == 0o600)
                planted += 1
            } else {
                #expect(!text.contains(canary), "canary in \(rel)")
            }
        }
        #expect(planted == secretFiles.count)
        // The renewal command ran with a minimal environment and placeholders only.
        let dumped = try String(contentsOfFile: envDump, encoding: .utf8)
        #expect(dumped.contains("PATH=") && !dumped.contains(canary))
        #expect(!dumped.contains("APF_HOME="), "only the passed-through variables reach the command")
    }
}
