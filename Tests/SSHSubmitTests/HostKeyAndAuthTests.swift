import AuthProfiles
import Foundation
import Logging
import SSHSubmit
import Testing
import TestSupport

/// Host-key pinning and public-key authentication against the real sshd.
@Suite(.enabled(if: Testbed.enabled, "needs the testbed (APF_INTEGRATION=1, make test)"))
struct HostKeyAndAuthTests {
    let tb: Testbed
    init() throws { tb = try Testbed.load() }

    private func hostKey(_ host: String, _ type: String) throws -> (type: String, blob: String) {
        let text = try String(contentsOfFile: "\(try tb["APF_TB_HOSTKEYS_DIR"])/\(host)/ssh_host_\(type)_key.pub", encoding: .utf8)
        let f = text.split(separator: " ")
        return (String(f[0]), String(f[1]))
    }

    /// A command that would leave a marker file; used to prove nothing ran.
    private func markerCommand() -> (RemoteCommand, String) {
        let path = "/tmp/apf-hostkey-marker-\(UUID().uuidString)"
        return (RemoteCommand(["touch", path]), path)
    }

    private func connect(_ endpoint: SSHEndpoint, knownHosts: KnownHosts, key: String = "APF_TB_KEY_ED25519",
                         passphrase: Bool = false) async throws -> SSHConnection {
        try await SSHConnection.connect(to: endpoint, identity: try tb.identity(key, passphrase: passphrase),
                                        knownHosts: knownHosts, logger: .silent)
    }

    @Test(.timeLimit(.minutes(1))) func unknownHostIsRefusedShowingTheFingerprint() async throws {
        let (cmd, marker) = markerCommand()
        let pool = SSHPool(endpoint: tb.main, identity: try tb.identity(), knownHosts: KnownHosts(text: ""), logger: .silent)
        do {
            _ = try await pool.exec(cmd)
            Issue.record("an unknown host must be refused")
        } catch {
            #expect(error.code == .hostKeyUnknown)
            #expect(!error.isRetryable)
            // The fingerprint shown is OpenSSH's own for the key the server presents.
            let pub = "\(try tb["APF_TB_HOSTKEYS_DIR"])/main/ssh_host_ed25519_key.pub"
            let fp = try Testbed.run(["/usr/bin/ssh-keygen", "-l", "-E", "sha256", "-f", pub]).split(separator: " ")[1]
            #expect(error.message.contains(String(fp)), "\(error.message)")
            #expect(error.message.contains("apf-agent target trust"))
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
        // Still refused on the next try (no auto-accept, not even after a failure).
        await #expect(throws: SSHError(.hostKeyUnknown, "", retryable: false)) {
            try await connect(tb.main, knownHosts: KnownHosts(text: ""))
        }
    }

    @Test(.timeLimit(.minutes(1))) func changedHostKeyIsAlwaysRefused() async throws {
        let (cmd, marker) = markerCommand()
        // Pin the jump host's Ed25519 key for the main host: as if the main host's key had changed.
        let other = try hostKey("jump", "ed25519")
        let kh = KnownHosts(text: "[127.0.0.1]:\(tb.main.port) \(other.type) \(other.blob)\n")
        let pool = SSHPool(endpoint: tb.main, identity: try tb.identity(), knownHosts: kh, logger: .silent)
        for _ in 0..<2 {
            do {
                _ = try await pool.exec(cmd)
                Issue.record("a changed host key must be refused")
            } catch {
                #expect(error.code == .hostKeyChanged || error.code == .backingOff)
                #expect(!error.isRetryable)
            }
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test(.timeLimit(.minutes(1))) func revokedKeyIsRefused() async throws {
        let main = try hostKey("main", "ed25519")
        let kh = KnownHosts(text: """
            @revoked * \(main.type) \(main.blob)
            [127.0.0.1]:\(tb.main.port) \(main.type) \(main.blob)
            """)
        await #expect(throws: SSHError(.hostKeyRevoked, "", retryable: false)) {
            try await connect(tb.main, knownHosts: kh)
        }
    }

    /// libssh2 1.10 prefers ECDSA; a file pinning only Ed25519 must still match (the preference follows the file).
    @Test(.timeLimit(.minutes(1)), arguments: ["ed25519", "ecdsa"])
    func hostKeyPreferenceFollowsThePinnedType(type: String) async throws {
        let key = try hostKey("main", type)
        let kh = KnownHosts(text: "[127.0.0.1]:\(tb.main.port) \(key.type) \(key.blob)\n")
        let c = try await connect(tb.main, knownHosts: kh)
        #expect(try await c.exec("echo", "ok").stdoutText == "ok\n")
        await c.close()
    }

    @Test(.timeLimit(.minutes(1))) func hashedKnownHostsWork() async throws {
        let kh = try KnownHosts.load(path: try tb["APF_TB_KNOWN_HOSTS_HASHED"])
        #expect(kh.entries.allSatisfy { $0.hosts.hasPrefix("|1|") })
        let c = try await connect(tb.main, knownHosts: kh)
        #expect(try await c.exec("echo", "ok").stdoutText == "ok\n")
        await c.close()
    }

    @Test(.timeLimit(.minutes(1))) func portlessLineDoesNotMatchAnotherPort() async throws {
        let key = try hostKey("main", "ed25519")
        let kh = KnownHosts(text: "127.0.0.1 \(key.type) \(key.blob)\n")
        await #expect(throws: SSHError(.hostKeyUnknown, "", retryable: false)) {
            try await connect(tb.main, knownHosts: kh)
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: [
        ("APF_TB_KEY_ED25519", false), ("APF_TB_KEY_ECDSA", false), ("APF_TB_KEY_ECDSA_PEM", false),
        ("APF_TB_KEY_ED25519_PASS", true),
    ])
    func keyTypesAuthenticate(key: String, passphrase: Bool) async throws {
        let c = try await connect(tb.main, knownHosts: try KnownHosts.load(path: try tb.knownHosts), key: key,
                                  passphrase: passphrase)
        #expect(try await c.exec("whoami").stdoutText == "\(tb.user)\n")
        await c.close()
    }

    @Test(.timeLimit(.minutes(1))) func wrongPassphraseIsAKeyError() async throws {
        var identity = try tb.identity("APF_TB_KEY_ED25519_PASS")
        identity.passphrase = .init("not the passphrase")
        await #expect(throws: SSHError(.keyInvalid, "", retryable: false)) {
            try await SSHConnection.connect(to: tb.main, identity: identity,
                                            knownHosts: try KnownHosts.load(path: try tb.knownHosts), logger: .silent)
        }
    }

    @Test(.timeLimit(.minutes(1))) func unauthorizedKeyFailsAuthentication() async throws {
        do {
            _ = try await connect(tb.main, knownHosts: try KnownHosts.load(path: try tb.knownHosts), key: "APF_TB_KEY_UNAUTHORIZED")
            Issue.record("an unauthorized key must not log in")
        } catch let error as SSHError {
            #expect(error.code == .authFailed)
            #expect(!error.message.contains("RSA"))
        }
    }

    /// Debian 12's libssh2 1.10 signs RSA only with ssh-rsa (SHA-1): stock OpenSSH 9.2 refuses it (clear error), a
    /// server with `PubkeyAcceptedAlgorithms +ssh-rsa` (the testbed's jump sshd) accepts it. See docs/ssh.md.
    @Test(.timeLimit(.minutes(1))) func rsaKeysNeedSHA1OnTheServer() async throws {
        let kh = try KnownHosts.load(path: try tb.knownHosts)
        do {
            _ = try await connect(tb.main, knownHosts: kh, key: "APF_TB_KEY_RSA")
            Issue.record("stock OpenSSH 9.2 should refuse ssh-rsa signatures")
        } catch let error as SSHError {
            #expect(error.code == .authFailed)
            #expect(error.message.contains("RSA/SHA-1 refused"))
            #expect(error.libssh2Code == -18)
        }
        let c = try await connect(tb.jump, knownHosts: kh, key: "APF_TB_KEY_RSA")
        #expect(try await c.exec("whoami").stdoutText == "\(tb.user)\n")
        await c.close()
    }

    @Test(.timeLimit(.minutes(1))) func ipv6Loopback() async throws {
        guard let port = tb.env["APF_TB_SSH_PORT_V6"] else {
            Issue.record("the testbed did not bring up sshd on ::1 (no IPv6 on this machine?)")
            return
        }
        let endpoint = SSHEndpoint(host: "::1", port: Int(port)!, user: tb.user)
        let c = try await connect(endpoint, knownHosts: try KnownHosts.load(path: try tb.knownHosts))
        #expect(try await c.exec("sh", "-c", "echo $SSH_CONNECTION").stdoutText.hasPrefix("::1 "))
        await c.close()
    }
}
