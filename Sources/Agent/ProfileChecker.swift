public import AuthProfiles
public import Foundation
public import Logging
import SSHSubmit

/// `profile check`: exercises a credential for real. X.509: renew if below minlife (unless disabled), then chain and
/// lifetime; SSH: the key decrypts and (with a target) authenticates; EC2: a SigV4-signed DescribeRegions;
/// OpenStack: a Keystone v3 token from the application credential.
public struct ProfileChecker: Sendable {
    public let resolver: TargetResolver
    public let logger: Logger

    public init(resolver: TargetResolver, logger: Logger) {
        self.resolver = resolver
        self.logger = logger
    }

    var store: ProfileStore { resolver.store }

    public func check(profile name: String, target: String? = nil, renew: Bool = true, now: Date = Date())
        async throws(AuthError) -> CheckReport
    {
        let profile = try store.profile(name)
        var report = CheckReport(subject: .profile, name: name, tenant: profile.tenant, kind: profile.kind.rawValue)
        if target != nil, profile.kind != .ssh {
            throw .input(.badValue, "--target applies to ssh profiles only ('\(name)' is \(profile.kind.rawValue))")
        }
        switch profile.kind {
        case .x509: await checkX509(profile, renew: renew, now: now, into: &report)
        case .ssh: try await checkSSH(profile, target: target, into: &report)
        case .ec2: await checkEC2(profile, now: now, into: &report)
        case .openstack: await checkOpenStack(profile, into: &report)
        }
        return report
    }

    // MARK: X.509

    func checkX509(_ profile: Profile, renew: Bool, now: Date, into report: inout CheckReport) async {
        guard let settings = profile.x509 else { return report.fail("profile", "x509 settings missing") }
        let renewer = X509Renewer(store: store, logger: logger)
        if renew, settings.renew.method != .none {
            do throws(AuthError) {
                switch try await renewer.renewIfNeeded(profile, now: now) {
                case .notNeeded(let left):
                    report.pass("renewal", "not needed: \(DurationText.format(seconds: left)) left, minlife "
                                    + DurationText.format(seconds: settings.minlife))
                case .renewed(let method, let notAfter):
                    report.pass("renewal", "renewed (\(method.rawValue)): \(DurationText.expiry(notAfter, now: now))")
                }
            } catch {
                report.fail("renewal", error.message)
            }
        }
        let cred: X509Credential
        do throws(AuthError) {
            guard let c = try store.proxy(of: try store.profile(profile.name)) else {
                return report.fail("proxy", "the profile has no proxy yet; renewal (\(settings.renew.method.rawValue)) "
                                       + "must create it first")
            }
            cred = c
        } catch {
            return report.fail("proxy", error.message)
        }
        let summary = cred.summary()
        report.x509 = summary
        let chain = await X509Checker.verifyChain(cred, caDirectory: settings.caDirectory, now: now)
        if chain.problems.isEmpty {
            report.pass("chain", ([
                "\(summary.chainLength) certificate(s), signatures and names valid",
            ] + chain.notes).joined(separator: "; "))
        } else {
            report.fail("chain", chain.problems.joined(separator: "; "))
        }
        let left = Int(summary.effectiveNotAfter.timeIntervalSince(now))
        let what = summary.voms.isEmpty ? "proxy" : "proxy (with its VOMS attributes)"
        if left <= 0 {
            report.fail("lifetime", "\(what) \(DurationText.expiry(summary.effectiveNotAfter, now: now))")
        } else if left < settings.minlife {
            report.fail("lifetime", "\(what) \(DurationText.expiry(summary.effectiveNotAfter, now: now)), below minlife "
                            + DurationText.format(seconds: settings.minlife))
        } else {
            report.pass("lifetime", "\(what) \(DurationText.expiry(summary.effectiveNotAfter, now: now)); minlife "
                            + DurationText.format(seconds: settings.minlife))
        }
    }

    // MARK: SSH

    func checkSSH(_ profile: Profile, target: String?, into report: inout CheckReport) async throws(AuthError) {
        do throws(AuthError) {
            let identity = try resolver.identity(profile: profile.name)
            let info = try SSHPrivateKey.inspect(identity.privateKey, passphrase: identity.passphrase,
                                                 source: "key of profile '\(profile.name)'")
            report.sshFingerprint = info.publicKey.fingerprint
            var detail = "\(info.publicKey.keyType) \(info.publicKey.fingerprint)"
            detail += info.encrypted ? ", encrypted, passphrase ok" : ", not encrypted"
            if info.publicKey.rsaSHA1Only {
                detail += "; WARNING: libssh2 1.10 signs RSA keys with SHA-1 only, which OpenSSH ≥ 8.8 refuses"
            }
            report.pass("key", detail)
        } catch {
            return report.fail("key", error.message)
        }
        guard let target else {
            let users = (try? store.users(ofProfile: profile.name)) ?? []
            report.pass("authenticate", "skipped: give --target to log in"
                            + (users.isEmpty ? "" : " (used by \(users.joined(separator: ", ")))"))
            return
        }
        let t = try store.target(target)
        try Tenancy.require(profile: profile, usableBy: "target '\(target)'", ofTenant: t.tenant)
        let pool = try resolver.pool(target: target, profileOverride: profile.name)
        do throws(SSHError) {
            let result = try await pool.exec(RemoteCommand(["true"], timeout: .seconds(30)))
            try result.check("true")
            report.pass("authenticate", "logged in to \(t.address) as \(t.user ?? "?") and ran a command")
        } catch {
            report.fail("authenticate", error.description)
        }
    }

    // MARK: Clouds

    func checkEC2(_ profile: Profile, now: Date, into report: inout CheckReport) async {
        guard let settings = profile.ec2 else { return report.fail("profile", "ec2 settings missing") }
        do throws(AuthError) {
            let secret = try store.secret(.cloudSecret, profile: profile.name)
            let token = settings.hasSessionToken ? try store.secret(.sessionToken, profile: profile.name) : nil
            let client = try EC2Client(settings: settings, secret: secret, sessionToken: token)
            let regions = try await client.describeRegions(now: now)
            report.ec2Regions = regions
            report.pass("DescribeRegions", "signed request to \(settings.endpointURL) accepted (key "
                            + "\(settings.accessKeyID), region \(settings.region)); \(regions.count) region(s) visible")
        } catch {
            report.fail("DescribeRegions", error.message)
        }
    }

    func checkOpenStack(_ profile: Profile, into report: inout CheckReport) async {
        guard let settings = profile.openstack else { return report.fail("profile", "openstack settings missing") }
        do throws(AuthError) {
            let secret = try store.secret(.cloudSecret, profile: profile.name)
            let info = try await KeystoneClient(settings: settings, secret: secret).authenticate()
            report.keystone = info
            var detail = "token issued for project \(info.project ?? info.projectID ?? "?")"
            if let e = info.expiresAt { detail += ", \(DurationText.expiry(e, now: Date()))" }
            report.pass("token", detail)
            if let expected = settings.project, expected != info.project, expected != info.projectID {
                report.fail("project", "the credential is scoped to project \(info.project ?? "?"), not '\(expected)'")
            }
            if let region = settings.region {
                if info.services["compute"]?.contains(region) == true {
                    report.pass("catalog", "compute endpoint (\(settings.interface)) in region \(region)")
                } else {
                    report.fail("catalog", "no \(settings.interface) compute endpoint in region \(region); catalog "
                                    + "has: " + info.services.map { "\($0.key) \($0.value)" }.sorted().joined(separator: ", "))
                }
            }
        } catch {
            report.fail("token", error.message)
        }
    }
}
