import Foundation
@testable import SSHSubmit
import Testing
import TestSupport

/// HostKeyScan against the testbed's real sshds: the key it reports is the one on the server's disk.
@Suite(.enabled(if: Testbed.enabled))
struct HostKeyScanTests {
    func fingerprint(_ host: String, _ type: String, _ tb: Testbed) throws -> String {
        let out = try Testbed.run(["/usr/bin/ssh-keygen", "-lf", "\(try tb["APF_TB_HOSTKEYS_DIR"])/\(host)/ssh_host_\(type)_key.pub"])
        return String(out.split(separator: " ")[1])
    }

    @Test(.timeLimit(.minutes(1))) func scanReturnsTheServersKeyWithoutAuthenticating() async throws {
        let tb = try Testbed.load()
        let main = tb.main
        let ed = try await HostKeyScan.scan(host: main.host, port: main.port)
        #expect(ed.keyType == "ssh-ed25519")
        #expect(ed.fingerprint == (try fingerprint("main", "ed25519", tb)))
        #expect(ed.knownHostsLine(host: main.host, port: main.port).hasPrefix("[127.0.0.1]:\(main.port) ssh-ed25519 AAAA"))
        let ec = try await HostKeyScan.scan(host: main.host, port: main.port, keyTypes: ["ecdsa-sha2-nistp256"])
        let ecFingerprint = try fingerprint("main", "ecdsa", tb)
        #expect(ec.keyType == "ecdsa-sha2-nistp256" && ec.fingerprint == ecFingerprint)
        // The scanned line is exactly what KnownHosts then trusts.
        let kh = KnownHosts(text: ed.knownHostsLine(host: main.host, port: main.port))
        #expect(kh.verify(host: main.host, port: main.port, keyType: ed.keyType, key: ed.key) == .trusted(line: 1))
    }

    @Test(.timeLimit(.minutes(1))) func scanThroughAJumpHostAndErrors() async throws {
        let tb = try Testbed.load()
        let gw = try await SSHConnection.connect(to: try tb.netns("apfh1"), identity: try tb.identity(),
                                                 knownHosts: try KnownHosts.load(path: try tb.knownHosts), logger: .silent)
        // The namespace's own loopback sshd has apfh1's host keys.
        let inner = try await HostKeyScan.scan(host: "127.0.0.1", port: 22, via: gw)
        #expect(inner.fingerprint == (try fingerprint("apfh1", "ed25519", tb)))
        await gw.close(grace: .seconds(1))
        await #expect(throws: SSHError.self) { _ = try await HostKeyScan.scan(host: "127.0.0.1", port: 1) }
        await #expect(throws: SSHError.self) {
            _ = try await HostKeyScan.scan(host: "127.0.0.1", port: tb.main.port, keyTypes: ["ssh-foo"])
        }
    }
}
