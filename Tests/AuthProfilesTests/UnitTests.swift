@testable import Agent
@testable import AuthProfiles
import Foundation
import Testing
import X509

/// Pure tests: no files, no network, no processes.
struct SecretAndNamesTests {
    @Test func secretNeverPrintsItself() {
        let s = Secret("canary-7f3a9")
        let wrapped = SSHIdentityLike(secret: s)
        for text in ["\(s)", String(describing: s), String(reflecting: s), "\(wrapped)", String(reflecting: wrapped)] {
            #expect(!text.contains("canary"), "leaked in: \(text)")
        }
        var dumped = ""
        dump(wrapped, to: &dumped)
        #expect(!dumped.contains("canary"))
        #expect(s.withBytes { String(decoding: $0, as: UTF8.self) } == "canary-7f3a9")
    }

    struct SSHIdentityLike { var secret: Secret }

    @Test(arguments: ["atlas", "cms-prod", "a.b_c-1", "X", String(repeating: "a", count: 64)])
    func validNames(_ name: String) throws {
        try Names.validate(name, what: "profile")
    }

    @Test(arguments: ["", "-x", ".hidden", "a/b", "a b", "../etc", "ü", String(repeating: "a", count: 65), "a\nb"])
    func invalidNamesAreBadInput(_ name: String) {
        #expect(throws: AuthError.self) { try Names.validate(name, what: "profile") }
        do { try Names.validate(name, what: "profile") } catch { #expect(error.isBadInput && error.code == .badName) }
    }

    @Test(arguments: [("6h", 21_600), ("30m", 1_800), ("1h30m", 5_400), ("2d", 172_800), ("90s", 90), ("90", 90)])
    func durations(_ text: String, _ seconds: Int) throws {
        #expect(try DurationText.parse(text, option: "--minlife") == seconds)
    }

    @Test(arguments: ["", "h", "6x", "-5m", "5m3", "1.5h"])
    func badDurations(_ text: String) {
        #expect(throws: AuthError.self) { try DurationText.parse(text, option: "--minlife") }
    }

    @Test func expiryWording() {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        #expect(DurationText.expiry(now.addingTimeInterval(3 * 3600 + 120), now: now).hasPrefix("expires in 3h 2m"))
        #expect(DurationText.expiry(now.addingTimeInterval(-7200), now: now)
            == "EXPIRED at 2023-11-14T20:13:20Z (2h ago)")
    }
}

struct SigV4Tests {
    /// AWS's published example (IAM ListUsers, 2015-08-30, AKIDEXAMPLE); botocore computes the same signature.
    @Test func matchesAWSDocumentedExample() throws {
        let url = try #require(URL(string: "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08"))
        let request = SigV4.Request(method: "GET", url: url,
                                    headers: ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"])
        let creds = SigV4.Credentials(accessKeyID: "AKIDEXAMPLE",
                                      secretAccessKey: Secret("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"))
        let headers = SigV4.sign(request, credentials: creds, region: "us-east-1", service: "iam",
                                 date: Date(timeIntervalSince1970: 1_440_938_160))
        #expect(headers["X-Amz-Date"] == "20150830T123600Z")
        #expect(headers["Authorization"] == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
            + "SignedHeaders=content-type;host;x-amz-date, "
            + "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")
        #expect(!(headers["Authorization"] ?? "").contains("wJalrXUtnFEMI"))
    }

    @Test func sessionTokenIsSignedAndPortKeptInHost() throws {
        let url = try #require(URL(string: "http://127.0.0.1:5000/"))
        let creds = SigV4.Credentials(accessKeyID: "AKID", secretAccessKey: Secret("s"), sessionToken: Secret("tok"))
        let h = SigV4.sign(.init(method: "POST", url: url, body: Array("a=b".utf8)), credentials: creds,
                           region: "us-east-1", service: "ec2", date: Date(timeIntervalSince1970: 0))
        #expect(h["Host"] == "127.0.0.1:5000")
        #expect(h["X-Amz-Security-Token"] == "tok")
        #expect(h["Authorization"]?.contains("SignedHeaders=host;x-amz-date;x-amz-security-token") == true)
    }

    @Test func ec2ResponseParsing() {
        let ok = "<DescribeRegionsResponse><regionInfo><item><regionName>us-east-1</regionName></item><item>"
            + "<regionName>eu-west-1</regionName></item></regionInfo></DescribeRegionsResponse>"
        #expect(EC2Client.elements("regionName", in: ok) == ["us-east-1", "eu-west-1"])
        let err = "<Response><Errors><Error><Code>AuthFailure</Code><Message>nope</Message></Error></Errors></Response>"
        #expect(EC2Client.element("Code", in: err) == "AuthFailure")
    }
}

struct SSHKeyFormatTests {
    @Test func generatedKeyRoundTripsAndStatesItsType() throws {
        let (key, pub) = SSHPrivateKey.generateEd25519(comment: "c1", passphrase: nil)
        let info = try SSHPrivateKey.inspect(key, passphrase: nil, source: "k")
        #expect(info.publicKey == pub && !info.encrypted && info.format == .openssh && info.comment == "c1")
        #expect(pub.keyType == "ssh-ed25519" && pub.fingerprint.hasPrefix("SHA256:") && pub.fingerprint.count == 50)
        #expect(key.withBytes { String(decoding: $0, as: UTF8.self) }.hasPrefix("-----BEGIN OPENSSH PRIVATE KEY-----\n"))
    }

    @Test func encryptedKeyNeedsTheRightPassphrase() throws {
        let (key, pub) = SSHPrivateKey.generateEd25519(comment: "c", passphrase: Secret("right horse"), rounds: 2)
        let info = try SSHPrivateKey.inspect(key, passphrase: Secret("right horse"), source: "k")
        #expect(info.encrypted && info.publicKey == pub)
        for wrong: Secret? in [Secret("wrong horse"), nil] {
            do {
                _ = try SSHPrivateKey.inspect(key, passphrase: wrong, source: "k")
                Issue.record("accepted a wrong passphrase")
            } catch {
                #expect(error.code == .wrongPassphrase && error.isBadInput)
            }
        }
    }

    @Test func garbageAndPublicKeysAreRejectedClearly() {
        for text in ["not a key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ2y apftest", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"] {
            do {
                _ = try SSHPrivateKey.inspect(Secret(text), passphrase: nil, source: "f")
                Issue.record("accepted \(text)")
            } catch {
                #expect(error.isBadInput)
                #expect(error.message.contains("Fix") || error.message.contains("damaged"))
            }
        }
    }
}

struct X509UnitTests {
    @Test func nativeProxyIsRFC3820AndChainsToItsUser() async throws {
        let pki = TestPKI.shared
        let now = Date()
        let pem = try pki.proxy(lifetime: 3600, now: now)
        let cred = try X509Credential.parse(Array(pem.utf8), source: "p", requireKey: true)
        #expect(cred.certificates.count == 2)
        let ext = try #require(cred.leaf.extensions.first { $0.oid == GridOID.proxyCertInfo })
        #expect(ext.critical)
        let s = cred.summary()
        #expect(s.proxyType == .rfc3820Impersonation)
        #expect(s.identity == "/DC=org/DC=apftest/O=People/CN=Jane Tester")
        #expect(s.subject.hasPrefix(s.identity + "/CN="))
        #expect(abs(s.notAfter.timeIntervalSince(now.addingTimeInterval(3600))) < 2)
        let chain = await X509Checker.verifyChain(cred, caDirectory: nil, now: now)
        #expect(chain.problems.isEmpty, "\(chain.problems)")
    }

    @Test func proxyNeverOutlivesItsUserCertificate() throws {
        let userExpiry = Date().addingTimeInterval(1800)
        let pki = try TestPKI(userNotAfter: userExpiry)
        let pem = try pki.proxy(lifetime: 86_400)
        let s = try X509Credential.parse(Array(pem.utf8), source: "p").summary()
        #expect(abs(s.notAfter.timeIntervalSince(userExpiry)) < 2)
    }

    @Test func tamperedProxyFailsChainCheck() async throws {
        let pki = TestPKI.shared, other = try TestPKI()
        // A proxy of one user followed by another user's certificate: the issuer name or signature cannot match.
        let mine = try X509Credential.parse(Array(try pki.proxy(lifetime: 3600).utf8), source: "p")
        let bad = X509Credential(certificates: [mine.leaf, other.user], privateKey: mine.privateKey)
        let chain = await X509Checker.verifyChain(bad, caDirectory: nil, now: Date())
        #expect(!chain.problems.isEmpty)
    }

    @Test func selectionNeverReturnsAnExpiredCredential() throws {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let expired = CredentialSelection.Candidate(name: "old", notAfter: now.addingTimeInterval(-60))
        let short = CredentialSelection.Candidate(name: "short", notAfter: now.addingTimeInterval(600))
        let long = CredentialSelection.Candidate(name: "long", notAfter: now.addingTimeInterval(7200))
        #expect(try CredentialSelection.select([expired, short, long], required: 300, now: now).name == "long")
        #expect(try CredentialSelection.select([expired, short], required: 300, now: now).name == "short")
        do {
            _ = try CredentialSelection.select([expired, short], required: 3600, now: now)
            Issue.record("selected a credential below the requirement")
        } catch {
            #expect(error.code == .noUsableCredential)
            #expect(error.message.contains("old EXPIRED at 2023-11-14T22:12:20Z (1m ago)"))
            #expect(error.message.contains("short expires in 10m"))
        }
        #expect(throws: AuthError.self) { try CredentialSelection.select([expired], required: 0, now: now) }
    }

    @Test func renewCommandPlaceholdersAreChecked() throws {
        #expect(try RenewCommand.parse(#"command:["/bin/true","-out","{out}"]"#) == ["/bin/true", "-out", "{out}"])
        #expect(throws: AuthError.self) { try RenewCommand.parse("command:voms-proxy-init -out {out}") }
        try RenewCommand.validate(["/bin/true", "{out}", "{hours}"], hasUserCertificate: false)
        #expect(throws: AuthError.self) { try RenewCommand.validate(["/bin/true", "{out}", "{vo}"], hasUserCertificate: true) }
        #expect(throws: AuthError.self) { try RenewCommand.validate(["/bin/true", "-o", "x"], hasUserCertificate: true) }
        #expect(throws: AuthError.self) { try RenewCommand.validate(["/bin/true", "{out}", "{key}"], hasUserCertificate: false) }
        #expect(RenewCommand.expand(["-out", "{out}", "-valid", "{hours}:00"], ["out": "/p", "hours": "12"])
            == ["-out", "/p", "-valid", "12:00"])
    }
}

struct ParserTests {
    /// The response document of Keystone v3 "Authenticating with an Application Credential" (API reference).
    @Test func keystoneTokenSummary() throws {
        let data = Data(FakeKeystoneV3.tokenBody(expires: "2035-01-01T00:00:00.000000Z").utf8)
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let info = KeystoneClient.tokenInfo(try #require(json["token"] as? [String: Any]), interface: "public")
        #expect(info.project == "apf-project" && info.methods == ["application_credential"])
        #expect(info.services["compute"] == ["RegionOne"])
        #expect(info.expiresAt == Date(timeIntervalSince1970: 2_051_222_400))
    }

    @Test func commandVOutput() {
        let out = "/usr/bin/sbatch\n/usr/bin/squeue\n/usr/local/bin/qstat\n"
        let found = TargetChecker.parseCommandV(out, probed: TargetChecker.probed)
        #expect(found == ["sbatch": "/usr/bin/sbatch", "squeue": "/usr/bin/squeue", "qstat": "/usr/local/bin/qstat"])
        #expect(TargetChecker.required(.slurm).allSatisfy { ["sbatch", "squeue", "scancel"].contains($0) })
    }
}
