@testable import Agent
@testable import AuthProfiles
import Foundation
import Glibc
import SSHSubmit
import Testing
import TestSupport

/// Installs a public key for the testbed user `apftest` (appending to authorized_keys, atomically, owner and
/// mode kept) and removes it again. `tb up` rewrites that file, so `ensure()` puts the line back when it vanished.
struct AuthorizedKey {
    let line: String
    let path: String

    init(_ line: String, user: String = "apftest") throws {
        self.line = line.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let pw = getpwnam(user) else { throw TestFailure("no user \(user)") }
        path = String(cString: pw.pointee.pw_dir) + "/.ssh/authorized_keys"
        try ensure()
    }

    func ensure() throws {
        let current = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        if current.split(separator: "\n").contains(where: { $0 == line }) { return }
        try replace(with: current + (current.isEmpty || current.hasSuffix("\n") ? "" : "\n") + line + "\n")
    }

    func remove() {
        guard let current = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        let kept = current.split(separator: "\n").filter { $0 != line }.joined(separator: "\n")
        try? replace(with: kept.isEmpty ? "" : kept + "\n")
    }

    private func replace(with text: String) throws {
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: path),
              let uid = (attrs[.ownerAccountID] as? NSNumber)?.uint32Value,
              let gid = (attrs[.groupOwnerAccountID] as? NSNumber)?.uint32Value
        else { throw TestFailure("no \(path): run `testbed/tb up`") }
        let temp = path + ".apf-test-\(getpid())"
        try Data(text.utf8).write(to: URL(fileURLWithPath: temp))
        chmod(temp, 0o600)
        chown(temp, uid, gid)
        guard rename(temp, path) == 0 else { throw TestFailure("rename \(temp): \(errno)") }
    }
}

/// Other tests (and `tb up`) rewrite authorized_keys while these tests run: a login refused for that reason is
/// retried after putting the test's key back. Anything else fails at once.
func retryingLogin(_ key: AuthorizedKey?, _ body: () async throws -> Run) async throws -> Run {
    var r = try await body()
    for _ in 0..<4 where r.status != 0 && r.output.contains("ssh.auth-failed") {
        try key?.ensure()
        try await Task.sleep(for: .milliseconds(300))
        r = try await body()
    }
    return r
}

func retryingLogin<T>(_ key: AuthorizedKey?, _ body: () async throws -> T) async throws -> T {
    for _ in 0..<4 {
        // A refused login makes the pool back off (0.5 s, doubling) before it dials again.
        do { return try await body() } catch let e as SSHError where e.code == .authFailed || e.code == .backingOff {
            try key?.ensure()
            try await Task.sleep(for: .milliseconds(1300))
        }
    }
    return try await body()
}

extension Testbed {
    var sshPort: String { env["APF_TB_SSH_PORT"] ?? "2222" }
    func hostKeyFingerprint(_ host: String, type: String = "ed25519") async throws -> String {
        let r = try await Run.ok(["/usr/bin/ssh-keygen", "-lf", "\(try self["APF_TB_HOSTKEYS_DIR"])/\(host)/ssh_host_\(type)_key.pub"])
        return String(r.stdout.split(separator: " ")[1])
    }
    func hostKeyLine(_ host: String, pattern: String) throws -> String {
        let pub = try String(contentsOfFile: "\(try self["APF_TB_HOSTKEYS_DIR"])/\(host)/ssh_host_ed25519_key.pub",
                             encoding: .utf8)
        return pattern + " " + pub.split(separator: " ").prefix(2).joined(separator: " ")
    }
}

@Suite(.enabled(if: Testbed.enabled), .serialized)
struct SSHIntegrationTests {
    @Test(.timeLimit(.minutes(2))) func generatedProfileAuthenticatesToTheTestSshd() async throws {
        let tb = try Testbed.load()
        let home = try TempDir("apf-ssh")
        defer { home.remove() }
        func cli(_ args: String..., stdin: String? = nil) async throws -> Run { try await CLI.run(args, home: home.path, stdin: stdin) }
        #expect(try await cli("tenant", "add", "atlas").status == 0)
        let add = try await cli("profile", "add", "gen", "--tenant", "atlas", "--kind", "ssh", "--generate",
                          "--passphrase-stdin", "--json", stdin: "a passphrase with spaces\n")
        #expect(add.status == 0, "\(add.output)")
        let view = try JSONSerialization.jsonObject(with: Data(add.stdout.utf8)) as? [String: Any]
        let ssh = try #require((view?["profile"] as? [String: Any])?["ssh"] as? [String: Any])
        let publicKey = try #require(ssh["publicKey"] as? String)
        #expect(ssh["encrypted"] as? Bool == true && ssh["keyType"] as? String == "ssh-ed25519")
        #expect(try await cli("target", "add", "main", "--tenant", "atlas", "--host", "127.0.0.1", "--port", tb.sshPort,
                        "--user", "apftest", "--batch", "slurm", "--profile", "gen").status == 0)
        let fp = try await tb.hostKeyFingerprint("main")
        let trust = try await cli("target", "trust", "main", "--fingerprint", fp)
        #expect(trust.status == 0, "\(trust.output)")

        // Control: not yet authorized, so the login is refused (and says so).
        let refused = try await cli("profile", "check", "gen", "--target", "main")
        #expect(refused.status == 1 && refused.stdout.contains("ssh.auth-failed"), "\(refused.output)")

        let installed = try AuthorizedKey(publicKey)
        defer { installed.remove() }
        let ok = try await retryingLogin(installed) { try await cli("profile", "check", "gen", "--target", "main") }
        #expect(ok.status == 0, "\(ok.output)")
        #expect(ok.stdout.contains("ok   authenticate: logged in to apftest@127.0.0.1:\(tb.sshPort)"))

        // The same through the library: the reusable resolver gives a pool that runs commands as apftest.
        let store = ProfileStore(home: home.file("store"))
        let pools = SSHPools(logger: .silent)
        let pool = try TargetResolver(store: store, pools: pools).pool(target: "main", tenant: "atlas")
        let who = try await retryingLogin(installed) { try await pool.exec("id", "-un") }
        #expect(who.stdoutText == "apftest\n")
        await pools.shutdown(grace: .seconds(1))
    }

    @Test(.timeLimit(.minutes(2))) func canaryPassphraseNeverReachesRemoteCommandsOrLogs() async throws {
        let tb = try Testbed.load()
        let canary = "CANARY-\(UUID().uuidString)"
        let home = try TempDir("apf-canary-remote")
        defer { home.remove() }
        var outputs: [Run] = []
        func cli(_ args: String..., stdin: String? = nil) async throws -> Run {
            let r = try await CLI.run(args + ["--log-level", "trace"], home: home.path, stdin: stdin)
            outputs.append(r)
            return r
        }
        _ = try await cli("tenant", "add", "atlas")
        let add = try await cli("profile", "add", "c", "--tenant", "atlas", "--kind", "ssh", "--generate", "--passphrase-stdin",
                          "--json", stdin: canary)
        let view = try JSONSerialization.jsonObject(with: Data(add.stdout.utf8)) as? [String: Any]
        let publicKey = try #require(((view?["profile"] as? [String: Any])?["ssh"] as? [String: Any])?["publicKey"] as? String)
        _ = try await cli("target", "add", "main", "--tenant", "atlas", "--host", "127.0.0.1", "--port", tb.sshPort, "--user",
                    "apftest", "--batch", "slurm", "--profile", "c")
        _ = try await cli("target", "trust", "main", "--fingerprint", try await tb.hostKeyFingerprint("main"))
        let installed = try AuthorizedKey(publicKey)
        defer { installed.remove() }
        #expect(try await retryingLogin(installed) { try await cli("profile", "check", "c", "--target", "main") }.status == 0)
        _ = try await retryingLogin(installed) { try await cli("target", "check", "main", "--json") }
        // The environment and command line that remote commands actually get.
        let pools = SSHPools(logger: .silent)
        let pool = try TargetResolver(store: ProfileStore(home: home.file("store")), pools: pools).pool(target: "main")
        let env = try await retryingLogin(installed) { try await pool.exec("sh", "-c", "env; cat /proc/$$/cmdline") }
        await pools.shutdown(grace: .seconds(1))
        #expect(env.succeeded && env.stdoutText.contains("USER=apftest"))
        #expect(!env.stdoutText.contains(canary) && !env.stderrText.contains(canary))
        for r in outputs { #expect(!r.output.contains(canary), "\(r.output.prefix(300))") }
        let sshdLog = try tb["APF_TB_DIR"] + "/log/main.sshd.log"
        if let log = try? String(contentsOfFile: sshdLog, encoding: .utf8) { #expect(!log.contains(canary)) }
    }

    @Test(.timeLimit(.minutes(2))) func keyFilesInteroperateWithOpenSSH() async throws {
        let tb = try Testbed.load()
        let dir = try TempDir("apf-keys")
        defer { dir.remove() }
        // Ours → OpenSSH: ssh-keygen decrypts our bcrypt/aes256-ctr key and derives the same public key.
        let (key, pub) = SSHPrivateKey.generateEd25519(comment: "ours", passphrase: Secret("interop pass"))
        let ours = try dir.write("ours", key.withBytes { String(decoding: $0, as: UTF8.self) })
        let derived = try await Run.ok(["/usr/bin/ssh-keygen", "-y", "-P", "interop pass", "-f", ours]).stdout
        #expect(derived.hasPrefix(pub.authorizedKeysLine(comment: nil)))
        #expect(try await Run.run(["/usr/bin/ssh-keygen", "-y", "-P", "wrong", "-f", ours]).status != 0)
        // OpenSSH → ours: every testbed key type, fingerprints equal to ssh-keygen -lf.
        let pass = Secret(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: try tb["APF_TB_KEY_PASSPHRASE_FILE"]))))
        for (variable, passphrase) in [("APF_TB_KEY_ED25519", nil), ("APF_TB_KEY_ECDSA", nil), ("APF_TB_KEY_ECDSA_PEM", nil),
                                       ("APF_TB_KEY_RSA", nil), ("APF_TB_KEY_ED25519_PASS", pass)] as [(String, Secret?)] {
            let path = try tb[variable]
            let built = try ProfileBuilder.sshImport(name: "k", tenant: "t", keyFile: path, passphrase: passphrase)
            let expected = try await Run.ok(["/usr/bin/ssh-keygen", "-lf", path + ".pub"]).stdout.split(separator: " ")[1]
            #expect(built.profile.ssh?.fingerprint == String(expected), "\(variable)")
            #expect(built.profile.ssh?.encrypted == (passphrase != nil), "\(variable)")
        }
        // ssh-keygen's own encrypted ed25519 key with a wrong passphrase is refused as bad input.
        let passKey = try tb["APF_TB_KEY_ED25519_PASS"]
        do throws(AuthError) {
            _ = try ProfileBuilder.sshImport(name: "k", tenant: "t", keyFile: passKey, passphrase: Secret("not it"))
            Issue.record("wrong passphrase accepted")
        } catch {
            #expect(error.code == .wrongPassphrase && error.isBadInput)
        }
    }

    @Test(.timeLimit(.minutes(2))) func importedPassphraseKeyLogsInThroughAJumpTarget() async throws {
        let tb = try Testbed.load()
        let home = try TempDir("apf-jump")
        defer { home.remove() }
        func cli(_ args: String..., stdin: String? = nil) async throws -> Run { try await CLI.run(args, home: home.path, stdin: stdin) }
        _ = try await cli("tenant", "add", "atlas")
        let pass = try String(contentsOfFile: try tb["APF_TB_KEY_PASSPHRASE_FILE"], encoding: .utf8)
        #expect(try await cli("profile", "add", "tbkey", "--tenant", "atlas", "--kind", "ssh", "--key-file",
                        try tb["APF_TB_KEY_ED25519_PASS"], "--passphrase-stdin", stdin: pass).status == 0)
        let h1 = try tb["APF_TB_NETNS_ADDR_apfh1"]
        #expect(try await cli("target", "add", "gw", "--tenant", "atlas", "--host", h1, "--user", "apftest", "--batch",
                        "slurm", "--profile", "tbkey").status == 0)
        // The namespace's own loopback sshd, reachable only by tunnelling through apfh1.
        #expect(try await cli("target", "add", "inner", "--tenant", "atlas", "--host", "127.0.0.1", "--port", "22",
                        "--user", "apftest", "--batch", "slurm", "--profile", "tbkey", "--jump", "gw").status == 0)
        let fp = try await tb.hostKeyFingerprint("apfh1")
        // Through the jump host before the jump host is trusted: refused, nothing written.
        let early = try await cli("target", "trust", "inner", "--yes")
        #expect(early.status == 1 && early.stderr.contains("host-key-unknown"), "\(early.output)")
        #expect(!FileManager.default.fileExists(atPath: home.file("store/known_hosts")))
        #expect(try await cli("target", "trust", "gw", "--fingerprint", fp).status == 0)
        let inner = try await retryingLogin(nil) { try await cli("target", "trust", "inner", "--fingerprint", fp, "--json") }
        #expect(inner.status == 0, "\(inner.output)")
        let kh = try String(contentsOfFile: home.file("store/known_hosts"), encoding: .utf8)
        #expect(kh.split(separator: "\n").map(String.init)
            == [try tb.hostKeyLine("apfh1", pattern: h1), try tb.hostKeyLine("apfh1", pattern: "127.0.0.1")])
        let check = try await retryingLogin(nil) { try await cli("target", "check", "inner", "--json") }
        let report = try JSONDecoder.iso.decode(CheckReport.self, from: Data(check.stdout.utf8))
        #expect(report.steps.first { $0.name == "login" }?.detail.hasSuffix("remote host name apfh1") == true,
                "\(check.output)")
        #expect(report.steps.first { $0.name == "profile" }?.detail.contains("via jump target 'gw'") == true)
    }

    @Test(.timeLimit(.minutes(2))) func trustWritesOnlyConfirmedKeysAndRefusesChangedOnes() async throws {
        let tb = try Testbed.load()
        let home = try TempDir("apf-trust")
        defer { home.remove() }
        func cli(_ args: String...) async throws -> Run { try await CLI.run(args, home: home.path) }
        _ = try await cli("tenant", "add", "atlas")
        _ = try await cli("profile", "add", "tbkey", "--tenant", "atlas", "--kind", "ssh", "--key-file", try tb["APF_TB_KEY_ED25519"])
        _ = try await cli("target", "add", "main", "--tenant", "atlas", "--host", "127.0.0.1", "--port", tb.sshPort,
                    "--user", "apftest", "--batch", "slurm", "--profile", "tbkey")
        let kh = home.file("store/known_hosts")
        let fp = try await tb.hostKeyFingerprint("main")
        let shown = try await cli("target", "trust", "main")
        #expect(shown.status == 0 && shown.stdout.contains(fp) && shown.stdout.contains("not trusted yet"))
        #expect(!FileManager.default.fileExists(atPath: kh))
        let wrong = try await cli("target", "trust", "main", "--fingerprint", try await tb.hostKeyFingerprint("jump"))
        #expect(wrong.status == 1 && wrong.stderr.contains("fingerprint-mismatch"))
        #expect(!FileManager.default.fileExists(atPath: kh))
        #expect(try await cli("target", "trust", "main", "--yes").status == 0)
        let line = try tb.hostKeyLine("main", pattern: "[127.0.0.1]:\(tb.sshPort)")
        #expect(try String(contentsOfFile: kh, encoding: .utf8) == line + "\n")
        #expect(mode(of: kh) == 0o600)
        #expect(try await cli("target", "trust", "main", "--yes").stdout.contains("already trusted"))
        // Pretend the site re-keyed: another key pinned for the host is refused unless replaced explicitly.
        let other = try tb.hostKeyLine("jump", pattern: "[127.0.0.1]:\(tb.sshPort)")
        try Data((other + "\n").utf8).write(to: URL(fileURLWithPath: kh))
        let check = try await cli("target", "check", "main")
        #expect(check.status == 1 && check.stdout.contains("HOST KEY CHANGED"), "\(check.output)")
        let refused = try await cli("target", "trust", "main", "--yes")
        #expect(refused.status == 1 && refused.stderr.contains("--replace --fingerprint \(fp)"))
        #expect(try String(contentsOfFile: kh, encoding: .utf8) == other + "\n")
        #expect(try await cli("target", "trust", "main", "--replace", "--fingerprint", fp).status == 0)
        #expect(try String(contentsOfFile: kh, encoding: .utf8) == line + "\n")
        let after = try await retryingLogin(nil) { try await cli("target", "check", "main") }
        #expect(after.stdout.contains("ok   login"), "\(after.output)")
    }

    @Test(.timeLimit(.minutes(2))) func targetCheckFindsTheBatchCommandsOpenSSHFinds() async throws {
        let tb = try Testbed.load()
        let home = try TempDir("apf-tcheck")
        defer { home.remove() }
        let store = ProfileStore(home: home.file("store"))
        try store.addTenant(Tenant(name: "atlas"))
        let b = try ProfileBuilder.sshImport(name: "tbkey", tenant: "atlas", keyFile: try tb["APF_TB_KEY_ED25519"],
                                             passphrase: nil)
        try store.addProfile(b.profile, files: b.files)
        try store.addTarget(Target(name: "main", tenant: "atlas", host: "127.0.0.1", port: Int(tb.sshPort)!,
                                   user: "apftest", batch: .slurm, profile: "tbkey"))
        try SecureFile.writeAtomic(store.knownHostsPath, Array(try String(contentsOfFile: try tb["APF_TB_KNOWN_HOSTS"],
                                                                         encoding: .utf8).utf8))
        let checker = TargetChecker(resolver: TargetResolver(store: store, pools: SSHPools(logger: .silent)), logger: .silent)
        var report = try await checker.check(target: "main")
        for _ in 0..<4 where report.steps.contains(where: { $0.detail.contains("ssh.auth-failed") }) {
            try await Task.sleep(for: .milliseconds(300))
            report = try await checker.check(target: "main")
        }
        // Ground truth from the OpenSSH client over the same account.
        let ssh = try await Run.run(["/usr/bin/ssh", "-F", try tb["APF_TB_SSH_CONFIG"], "apf-main", "command", "-v"]
                                  + TargetChecker.probed)
        let truth = Set(ssh.stdout.split(separator: "\n").map { ($0 as NSString).lastPathComponent })
        let batch = try #require(report.batch)
        #expect(Set(batch.found.keys) == truth)
        let needed: Set = ["sbatch", "squeue", "scancel"]
        #expect(report.ok == needed.isSubset(of: truth), "\(report.steps)")
        #expect(Set(batch.missing) == needed.subtracting(truth))
        if truth.contains("sbatch") {
            let v = try await Run.ok(["/usr/bin/ssh", "-F", try tb["APF_TB_SSH_CONFIG"], "apf-main", "sbatch", "--version"])
            #expect(batch.versions["slurm"] == v.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }
}

extension JSONDecoder {
    static let iso: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }()
}
