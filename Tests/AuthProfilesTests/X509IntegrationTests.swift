@testable import Agent
@testable import AuthProfiles
import Foundation
import Testing
import TestSupport
import X509

/// A test CA, a user certificate and a VOMS server certificate made with the real `openssl` CLI.
struct OpenSSLPKI {
    let dir: TempDir
    let openssl: String
    var ca: String { dir.file("ca.pem") }
    var caDir: String { dir.file("certs") }
    var userCert: String { dir.file("usercert.pem") }
    var userKey: String { dir.file("userkey.pem") }
    var hostCert: String { dir.file("hostcert.pem") }
    var hostKey: String { dir.file("hostkey.pem") }

    init(testbed: Testbed) async throws {
        openssl = try testbed["APF_TB_OPENSSL"]
        dir = try TempDir("apf-pki")
        let o = openssl
        try await Run.ok([o, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.file("ca.key"), "-out", dir.file("ca.pem"),
                    "-days", "30", "-subj", "/DC=org/DC=apftest/CN=APF Test CA",
                    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        try dir.write("leaf.ext", "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n")
        for (name, subject) in [("user", "/DC=org/DC=apftest/O=People/CN=Test User"),
                                ("host", "/DC=org/DC=apftest/CN=voms.apftest.org")] {
            try await Run.ok([o, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.file("\(name)key.pem"),
                        "-out", dir.file("\(name).csr"), "-subj", subject])
            try await Run.ok([o, "x509", "-req", "-in", dir.file("\(name).csr"), "-CA", dir.file("ca.pem"),
                        "-CAkey", dir.file("ca.key"), "-CAcreateserial", "-out", dir.file("\(name)cert.pem"),
                        "-days", "10", "-extfile", dir.file("leaf.ext")])
        }
        chmod(dir.file("userkey.pem"), 0o600)
        try FileManager.default.createDirectory(atPath: dir.file("certs"), withIntermediateDirectories: true)
        let hash = try await Run.ok([o, "x509", "-hash", "-noout", "-in", dir.file("ca.pem")]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try FileManager.default.copyItem(atPath: dir.file("ca.pem"), toPath: dir.file("certs/\(hash).0"))
    }

    func verify(_ proxy: String, allowProxies: Bool = true) async throws -> Run {
        try await Run.run([openssl, "verify"] + (allowProxies ? ["-allow_proxy_certs"] : [])
                        + ["-CAfile", ca, "-untrusted", userCert, proxy])
    }

    /// voms-proxy-fake arguments that make an RFC proxy with a VOMS AC for VO testvo (a real VOMS AC encoder).
    func vomsFakeArgv(fake: String, out: String, cert: String? = nil, key: String? = nil, hours: String = "2",
                      vomsHours: String = "1", extra: [String] = []) -> [String] {
        [fake, "-certdir", caDir, "-cert", cert ?? userCert, "-key", key ?? userKey, "-hostcert", hostCert,
         "-hostkey", hostKey, "-voms", "testvo", "-fqan", "/testvo/Role=NULL/Capability=NULL",
         "-fqan", "/testvo/prod/Role=pilot", "-uri", "voms.apftest.org:15000", "-out", out, "-hours", hours,
         "-vomslife", vomsHours, "-rfc", "-q"] + extra
    }
}

@Suite(.enabled(if: Testbed.enabled), .serialized)
struct X509IntegrationTests {
    @Test(.timeLimit(.minutes(2))) func nativeProxyPassesOpenSSLVerifyAndCarriesRFC3820Extension() async throws {
        let pki = try await OpenSSLPKI(testbed: try Testbed.load())
        defer { pki.dir.remove() }
        let certs = try X509Credential.parse(Array(try Data(contentsOf: URL(fileURLWithPath: pki.userCert))),
                                             source: "usercert")
        let key = try X509Credential.parse(Array(try Data(contentsOf: URL(fileURLWithPath: pki.userKey))),
                                           source: "userkey", requireKey: true)
        let out = try ProxyGenerator.generate(signerChain: certs.certificates, signingKey: key.privateKey!,
                                              lifetime: 12 * 3600)
        let proxy = try pki.dir.write("proxy.pem", out.pem.withBytes { String(decoding: $0, as: UTF8.self) })
        let verified = try await pki.verify(proxy)
        #expect(verified.status == 0 && verified.stdout.contains("\(proxy): OK"), "\(verified.output)")
        // Control: without -allow_proxy_certs openssl rejects it, so it really treated the certificate as a proxy.
        #expect(try await pki.verify(proxy, allowProxies: false).status != 0)
        let text = try await Run.ok([pki.openssl, "x509", "-in", proxy, "-noout", "-text"]).stdout
        #expect(text.contains("Proxy Certificate Information: critical"))
        #expect(text.contains("Policy Language: Inherit all"))
        let der = try await Run.ok([pki.openssl, "asn1parse", "-in", proxy]).stdout
        #expect(der.contains("Proxy Certificate Information") || der.contains("1.3.6.1.5.5.7.1.14"))
        // A second-generation proxy signed by the first also verifies (chain of proxies).
        let first = try X509Credential.parse(Array(out.pem.withBytes { $0 }), source: "proxy", requireKey: true)
        let second = try ProxyGenerator.generate(signerChain: first.certificates, signingKey: first.privateKey!,
                                                 lifetime: 3600)
        let p2 = try pki.dir.write("proxy2.pem", second.pem.withBytes { String(decoding: $0, as: UTF8.self) })
        let r2 = try await Run.run([pki.openssl, "verify", "-allow_proxy_certs", "-CAfile", pki.ca, "-untrusted", proxy, p2])
        #expect(r2.status == 0, "\(r2.output)")
    }

    @Test(.timeLimit(.minutes(2))) func proxyWithTwoMinutesLeftAndMinlifeFiveMinutesIsRenewed() async throws {
        let pki = try await OpenSSLPKI(testbed: try Testbed.load())
        defer { pki.dir.remove() }
        let store = ProfileStore(home: pki.dir.file("home"))
        try store.addTenant(Tenant(name: "atlas"))
        let built = try await ProfileBuilder.x509(.init(name: "grid", tenant: "atlas", certFile: pki.userCert,
                                                        keyFile: pki.userKey, minlife: "5m", lifetime: "12h",
                                                        caDirectory: pki.caDir))
        try store.addProfile(built.profile, files: built.files)
        // Replace the proxy by one with 2 minutes left, made natively from the same user certificate.
        let certs = try X509Credential.parse(Array(try Data(contentsOf: URL(fileURLWithPath: pki.userCert))), source: "c")
        let key = try X509Credential.parse(Array(try Data(contentsOf: URL(fileURLWithPath: pki.userKey))), source: "k",
                                           requireKey: true)
        let short = try ProxyGenerator.generate(signerChain: certs.certificates, signingKey: key.privateKey!,
                                                lifetime: 120)
        try store.update(try store.profile("grid"), files: [.proxy: short.pem])
        let checker = ProfileChecker(resolver: TargetResolver(store: store, pools: .init(logger: .silent)), logger: .silent)
        let noRenew = try await checker.check(profile: "grid", renew: false)
        #expect(!noRenew.ok)
        #expect(noRenew.steps.first { $0.name == "lifetime" }?.detail.contains("below minlife 5m") == true)
        let report = try await checker.check(profile: "grid")
        #expect(report.ok, "\(report.steps)")
        #expect(report.steps.first { $0.name == "renewal" }?.detail.hasPrefix("renewed (native)") == true)
        let left = try #require(report.x509).notAfter.timeIntervalSinceNow
        #expect(left > 11.9 * 3600 && left <= 12 * 3600 + 2)  // certificate times have whole seconds
        #expect(report.steps.first { $0.name == "chain" }?.detail.contains("chain verified to CA /DC=org/DC=apftest/CN=APF Test CA") == true)
        // The renewed file on disk is what openssl accepts.
        let r = try await pki.verify(store.path(of: .proxy, profile: "grid"))
        #expect(r.status == 0, "\(r.output)")
        // Control: a proxy with 10 minutes left is not renewed.
        let ten = try ProxyGenerator.generate(signerChain: certs.certificates, signingKey: key.privateKey!, lifetime: 600)
        try store.update(try store.profile("grid"), files: [.proxy: ten.pem])
        let again = try await checker.check(profile: "grid")
        #expect(again.steps.first { $0.name == "renewal" }?.detail.hasPrefix("not needed") == true)
    }

    @Test(.timeLimit(.minutes(2))) func commandRenewalWithVomsProxyFakeAndVOMSParsing() async throws {
        let tb = try Testbed.load()
        let fake = try tb["APF_TB_VOMS_PROXY_FAKE"]
        let pki = try await OpenSSLPKI(testbed: tb)
        defer { pki.dir.remove() }
        let store = ProfileStore(home: pki.dir.file("home"))
        try store.addTenant(Tenant(name: "atlas"))
        // The renewal command is an argument vector with placeholders; {cert} {key} {out} {hours} are filled in.
        let argv = pki.vomsFakeArgv(fake: fake, out: "{out}", cert: "{cert}", key: "{key}", hours: "{hours}")
        let json = String(decoding: try JSONSerialization.data(withJSONObject: argv), as: UTF8.self)
        let built = try await ProfileBuilder.x509(.init(name: "vo", tenant: "atlas", certFile: pki.userCert,
                                                        keyFile: pki.userKey, minlife: "30m", lifetime: "3h",
                                                        renew: "command:" + json, caDirectory: pki.caDir))
        #expect(built.files[.proxy] == nil, "command renewal makes the first proxy on the first check")
        try store.addProfile(built.profile, files: built.files)
        let checker = ProfileChecker(resolver: TargetResolver(store: store, pools: .init(logger: .silent)), logger: .silent)
        let report = try await checker.check(profile: "vo")
        #expect(report.ok, "\(report.steps)")
        #expect(report.steps.first { $0.name == "renewal" }?.detail.hasPrefix("renewed (command)") == true)
        let summary = try #require(report.x509)
        let ac = try #require(summary.voms.first)
        // Cross-check with voms-proxy-info (the VOMS project's own parser).
        let info = try await Run.run(["/usr/bin/env", "X509_CERT_DIR=\(pki.caDir)", "voms-proxy-info2", "-all", "-file",
                                store.path(of: .proxy, profile: "vo")])
        let attrs = info.stdout.split(separator: "\n").filter { $0.hasPrefix("attribute : ") }
            .map { String($0.dropFirst("attribute : ".count)) }
        #expect(ac.fqans == attrs && ac.fqans == ["/testvo/Role=NULL/Capability=NULL", "/testvo/prod/Role=pilot"])
        #expect(ac.vo == "testvo" && ac.server == "voms.apftest.org:15000")
        #expect(ac.issuer == "/DC=org/DC=apftest/CN=voms.apftest.org")
        #expect(abs(ac.notAfter.timeIntervalSinceNow - 3600) < 60)
        #expect(summary.effectiveNotAfter == ac.notAfter, "the AC expires before the proxy and bounds it")
        #expect(abs(summary.notAfter.timeIntervalSinceNow - 3 * 3600) < 600)
        #expect(summary.proxyType == .rfc3820Impersonation)
    }

    @Test(.timeLimit(.minutes(2))) func expiredProxyIsRefusedAtImportWithDates() async throws {
        let tb = try Testbed.load()
        let pki = try await OpenSSLPKI(testbed: tb)
        defer { pki.dir.remove() }
        // voms-proxy-fake: valid 1 hour, starting 2 hours ago = expired an hour ago.
        let expired = pki.dir.file("expired.pem")
        try await Run.ok(pki.vomsFakeArgv(fake: try tb["APF_TB_VOMS_PROXY_FAKE"], out: expired, hours: "1",
                                    extra: ["-pastproxy", "2:00", "-pastac", "2:00"]))
        let home = try TempDir("apf-cli")
        defer { home.remove() }
        #expect(try await CLI.run(["tenant", "add", "atlas"], home: home.path).status == 0)
        let before = snapshot(home.file("store"))
        let r = try await CLI.run(["profile", "add", "old", "--tenant", "atlas", "--kind", "x509", "--proxy-file", expired],
                            home: home.path)
        #expect(r.status == 2)
        #expect(r.stderr.contains("[auth.expired]") && r.stderr.contains("EXPIRED at") && r.stderr.contains("ago)"))
        #expect(snapshot(home.file("store")) == before)
    }

    @Test(.timeLimit(.minutes(2))) func chainIsCheckedAgainstTheConfiguredCAs() async throws {
        let tb = try Testbed.load()
        let pki = try await OpenSSLPKI(testbed: tb), other = try await OpenSSLPKI(testbed: tb)
        defer { pki.dir.remove(); other.dir.remove() }
        let store = ProfileStore(home: pki.dir.file("home"))
        try store.addTenant(Tenant(name: "atlas"))
        for (name, caDir) in [("good", pki.caDir), ("foreign", other.caDir)] {
            let b = try await ProfileBuilder.x509(.init(name: name, tenant: "atlas", certFile: pki.userCert,
                                                        keyFile: pki.userKey, caDirectory: caDir))
            try store.addProfile(b.profile, files: b.files)
        }
        let checker = ProfileChecker(resolver: TargetResolver(store: store, pools: .init(logger: .silent)), logger: .silent)
        #expect(try await checker.check(profile: "good").ok)
        let bad = try await checker.check(profile: "foreign")
        #expect(!bad.ok)
        #expect(bad.steps.first { $0.name == "chain" }?.detail.contains("does not verify against the CAs") == true)
    }
}

import Glibc
import SSHSubmit
