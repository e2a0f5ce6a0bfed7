@testable import Agent
@testable import AuthProfiles
import Foundation
import SSHSubmit
import Testing
import TestSupport

/// EC2 against the testbed's real moto server (SigV4 enforced, IAM user apf-test with an inline ec2:* policy).
@Suite(.enabled(if: Testbed.enabled))
struct EC2MotoTests {
    struct Moto {
        let url: String
        let region: String
        let keyID: String
        let secret: String

        init() throws {
            let tb = try Testbed.load()
            url = try tb["APF_TB_MOTO_URL"]
            region = try tb["APF_TB_MOTO_REGION"]
            let lines = try String(contentsOfFile: try tb["APF_TB_MOTO_CREDENTIALS"], encoding: .utf8)
                .split(separator: "\n").map(String.init)
            guard lines.count >= 2 else { throw TestFailure("moto credentials file incomplete") }
            keyID = lines[0]
            secret = lines[1]
        }
    }

    @Test(.timeLimit(.minutes(1))) func ec2ProfilePassesCheckAndAWrongSecretFailsClearly() async throws {
        let moto = try Moto()
        let home = try TempDir("apf-ec2")
        defer { home.remove() }
        func cli(_ args: String..., stdin: String? = nil) async throws -> Run { try await CLI.run(args, home: home.path, stdin: stdin) }
        _ = try await cli("tenant", "add", "atlas")
        for (name, secret) in [("good", moto.secret), ("bad", moto.secret + "x")] {
            let r = try await cli("profile", "add", name, "--tenant", "atlas", "--kind", "ec2", "--access-key-id", moto.keyID,
                            "--secret-stdin", "--region", moto.region, "--endpoint", moto.url + "/", stdin: secret + "\n")
            #expect(r.status == 0, "\(r.output)")
        }
        let good = try await cli("profile", "check", "good", "--json")
        #expect(good.status == 0, "\(good.output)")
        let report = try JSONDecoder.iso.decode(CheckReport.self, from: Data(good.stdout.utf8))
        #expect(report.ok && (report.ec2Regions ?? []).contains(moto.region))
        let bad = try await cli("profile", "check", "bad")
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("rejected the credential (AuthFailure: AWS was not able to validate the provided "
                                    + "access credentials)"), "\(bad.output)")
        #expect(bad.stdout.contains("Fix: check the access key id and secret"))
        #expect(!bad.output.contains(moto.secret))
    }

    @Test(.timeLimit(.minutes(1))) func anUnknownKeyIsRejectedAndGoodSignaturesAreAccepted() async throws {
        let moto = try Moto()
        let client = try EC2Client(settings: EC2Settings(accessKeyID: "AKIAUNKNOWNKEY000000", region: moto.region,
                                                         endpoint: moto.url),
                                   secret: Secret(moto.secret), sessionToken: nil)
        await #expect(throws: AuthError.self) { _ = try await client.describeRegions() }
        let ok = try EC2Client(settings: EC2Settings(accessKeyID: moto.keyID, region: moto.region, endpoint: moto.url),
                               secret: Secret(moto.secret), sessionToken: nil)
        #expect(try await ok.describeRegions().count > 10)
    }

    /// Our SigV4 against botocore's (AWS's own Python implementation) for a request with a port and a body.
    @Test func signatureEqualsBotocore() async throws {
        let python = try Testbed.load()["APF_TB_MOTO_PYTHON"]
        let date = Date(timeIntervalSince1970: 1_735_689_600)  // 2025-01-01T00:00:00Z
        let url = try #require(URL(string: "http://127.0.0.1:5000/"))
        let body = "Action=DescribeRegions&Version=2016-11-15"
        let ours = SigV4.sign(.init(method: "POST", url: url,
                                    headers: ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"],
                                    body: Array(body.utf8)),
                              credentials: .init(accessKeyID: "AKIDEXAMPLE", secretAccessKey: Secret("s3cr3t/+="),
                                                 sessionToken: Secret("tok")),
                              region: "eu-west-1", service: "ec2", date: date)
        let script = """
            import botocore.auth as A, datetime
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials
            A.get_current_datetime = lambda *a, **k: datetime.datetime(2025, 1, 1, 0, 0, 0)
            r = AWSRequest(method="POST", url="http://127.0.0.1:5000/", data="\(body)",
                           headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
            A.SigV4Auth(Credentials("AKIDEXAMPLE", "s3cr3t/+=", "tok"), "ec2", "eu-west-1").add_auth(r)
            print(r.headers["Authorization"])
            """
        let r = try await Run.ok([python, "-c", script])
        #expect(ours["Authorization"] == r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

/// OpenStack application credentials against a FAKE Keystone v3 (see FakeKeystoneV3: no Keystone v3 can run here).
struct OpenStackFakeKeystoneTests {
    @Test(.timeLimit(.minutes(1))) func applicationCredentialCheckAgainstFakeKeystoneV3() async throws {
        let fake = try FakeKeystoneV3(credentialID: "aa4541d9-0bc0-44f5-b02d-a9d922df7cbd", secret: "app-cred-secret")
        defer { fake.stop() }
        let home = try TempDir("apf-os")
        defer { home.remove() }
        func cli(_ args: String..., stdin: String? = nil) async throws -> Run { try await CLI.run(args, home: home.path, stdin: stdin) }
        _ = try await cli("tenant", "add", "atlas")
        for (name, secret, region) in [("os", "app-cred-secret", "RegionOne"), ("os-bad", "wrong", "RegionOne"),
                                       ("os-region", "app-cred-secret", "RegionTwo")] {
            let r = try await cli("profile", "add", name, "--tenant", "atlas", "--kind", "openstack", "--auth-url",
                            fake.authURL, "--application-credential-id", fake.credentialID, "--region", region,
                            "--project", "apf-project", "--secret-stdin", stdin: secret)
            #expect(r.status == 0, "\(r.output)")
        }
        let ok = try await cli("profile", "check", "os", "--json")
        #expect(ok.status == 0, "\(ok.output)")
        let report = try JSONDecoder.iso.decode(CheckReport.self, from: Data(ok.stdout.utf8))
        #expect(report.keystone?.project == "apf-project" && report.keystone?.services["compute"] == ["RegionOne"])
        #expect(!ok.stdout.contains("gAAAAABfake-token"), "the token is never shown")
        let bad = try await cli("profile", "check", "os-bad")
        #expect(bad.status == 1 && bad.stdout.contains("refused application credential") && bad.stdout.contains("HTTP 401"))
        let region = try await cli("profile", "check", "os-region")
        #expect(region.status == 1 && region.stdout.contains("no public compute endpoint in region RegionTwo"))
        // The request went to /v3/auth/tokens with the application_credential method.
        #expect(fake.requests.allSatisfy { $0.hasPrefix("POST /v3/auth/tokens HTTP/1.1") })
        #expect(fake.requests.count == 3)
    }

    @Test func aNonV3EndpointIsNamedAsSuch() async throws {
        let fake = try FakeKeystoneV3(credentialID: "id", secret: "s")
        defer { fake.stop() }
        let client = try KeystoneClient(settings: OpenStackSettings(authURL: "http://127.0.0.1:\(fake.port)/identity/v2.0",
                                                                    applicationCredentialID: "id"), secret: Secret("s"))
        do {
            _ = try await client.authenticate()
            Issue.record("a 404 endpoint was accepted")
        } catch {
            #expect(error.code == .cloudResponse && error.message.contains("Keystone v3"))
        }
    }
}
