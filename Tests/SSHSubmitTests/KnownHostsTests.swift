import Crypto
import Foundation
@testable import SSHSubmit
import Testing

struct KnownHostsTests {
    let keyA: [UInt8] = Array("key-a-blob".utf8)
    let keyB: [UInt8] = Array("key-b-blob".utf8)
    var a64: String { Data(keyA).base64EncodedString() }
    var b64: String { Data(keyB).base64EncodedString() }

    @Test func plainPortAndTypes() {
        let kh = KnownHosts(text: """
            # comment
            [127.0.0.1]:2222 ssh-ed25519 \(a64)
            [127.0.0.1]:2222 ecdsa-sha2-nistp256 \(b64)
            example.org,192.0.2.1 ssh-ed25519 \(b64)
            """)
        #expect(kh.verify(host: "127.0.0.1", port: 2222, keyType: "ssh-ed25519", key: keyA) == .trusted(line: 2))
        #expect(kh.knownKeyTypes(host: "127.0.0.1", port: 2222) == ["ssh-ed25519", "ecdsa-sha2-nistp256"])
        #expect(kh.verify(host: "192.0.2.1", port: 22, keyType: "ssh-ed25519", key: keyB) == .trusted(line: 4))
        #expect(kh.verify(host: "EXAMPLE.org", port: 22, keyType: "ssh-ed25519", key: keyB) == .trusted(line: 4))
        // Stricter than libssh2: a line without a port is port 22 only.
        #expect(kh.verify(host: "example.org", port: 2222, keyType: "ssh-ed25519", key: keyB) == .unknown)
        #expect(kh.verify(host: "127.0.0.1", port: 22, keyType: "ssh-ed25519", key: keyA) == .unknown)
    }

    @Test func changedKeyIsNotTrusted() {
        let kh = KnownHosts(text: "[h]:2222 ssh-ed25519 \(a64)\n")
        #expect(kh.verify(host: "h", port: 2222, keyType: "ssh-ed25519", key: keyB)
                    == .changed(knownTypes: ["ssh-ed25519"], lines: [1]))
        // A key of another type than the pinned one is also a change, never a new trust.
        #expect(kh.verify(host: "h", port: 2222, keyType: "ecdsa-sha2-nistp256", key: keyB)
                    == .changed(knownTypes: ["ssh-ed25519"], lines: [1]))
    }

    @Test func hashedEntriesMatch() {
        let salt = Data((0..<20).map { UInt8($0) })
        let name = "[127.0.0.1]:2222"
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(name.utf8), using: SymmetricKey(data: salt))
        let field = "|1|\(salt.base64EncodedString())|\(Data(mac).base64EncodedString())"
        let kh = KnownHosts(text: "\(field) ssh-ed25519 \(a64)")
        #expect(kh.verify(host: "127.0.0.1", port: 2222, keyType: "ssh-ed25519", key: keyA) == .trusted(line: 1))
        #expect(kh.verify(host: "127.0.0.1", port: 2223, keyType: "ssh-ed25519", key: keyA) == .unknown)
    }

    @Test func wildcardsAndNegation() {
        let kh = KnownHosts(text: "*.cluster.org,!bad.cluster.org ssh-ed25519 \(a64)")
        #expect(kh.verify(host: "login1.cluster.org", port: 22, keyType: "ssh-ed25519", key: keyA) == .trusted(line: 1))
        #expect(kh.verify(host: "bad.cluster.org", port: 22, keyType: "ssh-ed25519", key: keyA) == .unknown)
        #expect(KnownHosts.glob("log?n*", "login1"))
        #expect(!KnownHosts.glob("log?n", "login1"))
    }

    @Test func revokedAndCertAuthority() {
        let kh = KnownHosts(text: """
            @cert-authority *.org ssh-ed25519 \(b64)
            @revoked * ssh-ed25519 \(a64)
            h ssh-ed25519 \(a64)
            """)
        #expect(kh.verify(host: "h", port: 22, keyType: "ssh-ed25519", key: keyA) == .revoked(line: 2))
        // A CA line is not a host key: it neither trusts nor counts as pinned.
        #expect(kh.verify(host: "x.org", port: 22, keyType: "ssh-ed25519", key: keyB) == .unknown)
    }

    @Test func fingerprintIsOpenSSHStyle() {
        // SHA256 of "key-a-blob", base64 without padding.
        let expected = "SHA256:" + Data(SHA256.hash(data: keyA)).base64EncodedString().replacingOccurrences(of: "=", with: "")
        #expect(KnownHosts.fingerprint(keyA) == expected)
        #expect(!KnownHosts.fingerprint(keyA).hasSuffix("="))
    }
}
