@testable import Agent
@testable import AuthProfiles
import Foundation
import Glibc
import SSHSubmit
import Testing
import TestSupport
import X509

/// The on-disk store in a temporary directory: layout, permissions, atomicity, uniqueness and tenancy.
struct StoreTests {
    func makeStore() throws -> (ProfileStore, TempDir) {
        let dir = try TempDir("apf-store")
        let store = ProfileStore(home: dir.file("home"))
        try store.addTenant(Tenant(name: "atlas"))
        try store.addTenant(Tenant(name: "cms"))
        return (store, dir)
    }

    func addSSH(_ store: ProfileStore, _ name: String, tenant: String, passphrase: Secret? = nil) throws(AuthError) {
        let built = try ProfileBuilder.sshGenerate(name: name, tenant: tenant, passphrase: passphrase)
        try store.addProfile(built.profile, files: built.files)
    }

    @Test func directoriesAre0700AndFiles0600() throws {
        let (store, dir) = try makeStore()
        defer { dir.remove() }
        try addSSH(store, "p1", tenant: "atlas", passphrase: Secret("pp"))
        for d in ["", "/tenants", "/profiles", "/targets", "/profiles/p1"] { #expect(mode(of: store.home + d) == 0o700, "\(d)") }
        for f in ["profile.json", "id", "passphrase"] { #expect(mode(of: store.home + "/profiles/p1/" + f) == 0o600, "\(f)") }
        #expect(mode(of: store.home + "/tenants/atlas.json") == 0o600)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: store.home + "/profiles")
        #expect(leftovers == ["p1"], "no staging or temporary files remain")
    }

    @Test func secretsReadableByOthersAreRefused() throws {
        let (store, dir) = try makeStore()
        defer { dir.remove() }
        try addSSH(store, "p1", tenant: "atlas")
        _ = try store.secret(.sshPrivateKey, profile: "p1")
        let key = store.path(of: .sshPrivateKey, profile: "p1")
        chmod(key, 0o640)
        do {
            _ = try store.secret(.sshPrivateKey, profile: "p1")
            Issue.record("read a group-readable secret")
        } catch {
            #expect(error.code == .permissions)
            #expect(error.message.contains("0640") && error.message.contains("chmod 600 '\(key)'"))
        }
        chmod(key, 0o600)
        chmod(store.profileDirectory("p1"), 0o755)
        #expect(throws: AuthError.self) { try store.secret(.sshPrivateKey, profile: "p1") }
        chmod(store.profileDirectory("p1"), 0o700)
        chmod(store.home, 0o755)
        #expect(throws: AuthError.self) { try store.profiles() }
        chmod(store.home, 0o700)
    }

    @Test func namesAreUniquePerInstallationAndFailuresChangeNothing() throws {
        let (store, dir) = try makeStore()
        defer { dir.remove() }
        try addSSH(store, "p1", tenant: "atlas")
        let before = snapshot(store.home)
        do {
            try addSSH(store, "p1", tenant: "cms")
            Issue.record("duplicate profile name accepted across tenants")
        } catch {
            #expect(error.code == .duplicate && error.isBadInput && error.message.contains("tenant 'atlas'"))
        }
        #expect(throws: AuthError.self) { try addSSH(store, "p2", tenant: "nobody") }
        #expect(throws: AuthError.self) { try store.addTenant(Tenant(name: "atlas")) }
        #expect(snapshot(store.home) == before)
    }

    @Test func targetsOnlyUseTheirTenantsProfilesAndJumpHosts() throws {
        let (store, dir) = try makeStore()
        defer { dir.remove() }
        try addSSH(store, "atlas-key", tenant: "atlas")
        try addSSH(store, "cms-key", tenant: "cms")
        try store.addTarget(Target(name: "gw", tenant: "atlas", host: "gw.example.org", user: "u", batch: .slurm,
                                   profile: "atlas-key"))
        let before = snapshot(store.home)
        do {
            try store.addTarget(Target(name: "t1", tenant: "cms", host: "h", user: "u", batch: .slurm,
                                       profile: "atlas-key"))
            Issue.record("cross-tenant profile accepted")
        } catch {
            #expect(error.code == .crossTenant && error.isBadInput)
            #expect(error.message.contains("tenant 'cms'") && error.message.contains("tenant 'atlas'"))
        }
        do {
            try store.addTarget(Target(name: "t2", tenant: "cms", host: "h", user: "u", batch: .slurm,
                                       profile: "cms-key", jump: "gw"))
            Issue.record("cross-tenant jump accepted")
        } catch {
            #expect(error.code == .crossTenant && error.message.contains("'atlas'") && error.message.contains("'cms'"))
        }
        #expect(throws: AuthError.self) {
            try store.addTarget(Target(name: "t3", tenant: "atlas", host: "h", user: "u", batch: .slurm,
                                       profile: "missing"))
        }
        #expect(throws: AuthError.self) {
            try store.addTarget(Target(name: "t4", tenant: "atlas", host: nil, user: "u", batch: .slurm,
                                       profile: "atlas-key"))
        }
        #expect(snapshot(store.home) == before)
        try store.addTarget(Target(name: "inner", tenant: "atlas", host: "10.0.0.5", user: "u", batch: .sge,
                                   profile: "atlas-key", jump: "gw"))
    }

    @Test func resolverEnforcesTenancyAndBuildsJumpChains() throws {
        let (store, dir) = try makeStore()
        defer { dir.remove() }
        try addSSH(store, "atlas-key", tenant: "atlas")
        try addSSH(store, "cms-key", tenant: "cms")
        try store.addTarget(Target(name: "gw", tenant: "atlas", host: "gw.example.org", port: 2200, user: "g",
                                   batch: .slurm, profile: "atlas-key"))
        try store.addTarget(Target(name: "inner", tenant: "atlas", host: "10.0.0.5", user: "u", batch: .slurm,
                                   profile: "atlas-key", jump: "gw"))
        let resolver = TargetResolver(store: store, pools: SSHPools(logger: .silent))
        let r = try resolver.resolve(target: "inner", tenant: "atlas")
        #expect(r.endpoint == SSHEndpoint(host: "10.0.0.5", port: 22, user: "u"))
        #expect(r.jump.map(\.0) == [SSHEndpoint(host: "gw.example.org", port: 2200, user: "g")])
        #expect(r.identity.id == "profile:atlas-key")
        do {
            _ = try resolver.resolve(target: "inner", tenant: "cms")
            Issue.record("a cms queue resolved an atlas target")
        } catch {
            #expect(error.code == .crossTenant && error.message.contains("'cms'") && error.message.contains("'atlas'"))
        }
        do {
            _ = try resolver.resolve(target: "inner", profileOverride: "cms-key")
            Issue.record("an atlas target resolved with a cms profile")
        } catch {
            #expect(error.code == .crossTenant && error.message.contains("'cms'") && error.message.contains("'atlas'"))
        }
        // A hand-edited target file naming another tenant's profile is refused at use, not only at add.
        var forged = try store.target("gw")
        forged.name = "forged"
        forged.profile = "cms-key"
        try SecureFile.writeAtomic(store.home + "/targets/forged.json", try ProfileStore.encode(forged))
        #expect(throws: AuthError.self) { try resolver.resolve(target: "forged") }
    }

    @Test func removalIsRefusedWhileInUse() throws {
        let (store, dir) = try makeStore()
        defer { dir.remove() }
        try addSSH(store, "k", tenant: "atlas")
        try store.addTarget(Target(name: "gw", tenant: "atlas", host: "gw", user: "u", batch: .slurm, profile: "k"))
        try store.addTarget(Target(name: "in", tenant: "atlas", host: "in", user: "u", batch: .slurm, profile: "k",
                                   jump: "gw"))
        let before = snapshot(store.home)
        #expect(throws: AuthError.self) { try store.removeProfile("k", force: false) }
        #expect(throws: AuthError.self) { try store.removeTarget("gw") }
        #expect(throws: AuthError.self) { try store.removeTenant("atlas") }
        #expect(snapshot(store.home) == before)
        try store.removeTarget("in")
        try store.removeTarget("gw")
        try store.removeProfile("k", force: false)
        try store.removeTenant("atlas")
        #expect(try store.tenants().map(\.name) == ["cms"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.home + "/profiles").isEmpty)
    }

    @Test func atomicWriteNeverExposesAPartialFile() throws {
        let dir = try TempDir("apf-atomic")
        defer { dir.remove() }
        let path = dir.file("secret")
        try SecureFile.writeAtomic(path, Array(repeating: 0x41, count: 1 << 20))
        // Readers racing with a rewrite see the old or the new content, whole.
        let stop = Mutexed(false)
        let seen = Mutexed(Set<Int>())
        let reader = Thread {
            while !stop.get() {
                if let d = FileManager.default.contents(atPath: path) {
                    var s = seen.get(); s.insert(d.count); seen.set(s)
                }
            }
        }
        reader.start()
        for i in 0..<30 { try SecureFile.writeAtomic(path, Array(repeating: 0x42, count: i % 2 == 0 ? 4096 : 1 << 20)) }
        stop.set(true)
        while !reader.isFinished { Thread.sleep(forTimeInterval: 0.001) }
        #expect(seen.get().isSubset(of: [4096, 1 << 20]))
        #expect(mode(of: path) == 0o600)
        #expect(try SecureFile.createExclusive(path, [1]) == false)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["secret"])
    }

    @Test func renewalInstallsANewProxyOnlyBelowMinlife() async throws {
        let (store, dir) = try makeStore()
        defer { dir.remove() }
        let pki = TestPKI.shared
        let cert = try dir.write("usercert.pem", try pki.userCertPEM, mode: 0o644)
        let key = try dir.write("userkey.pem", pki.userKeyPEM)
        let built = try await ProfileBuilder.x509(.init(name: "x", tenant: "atlas", certFile: cert, keyFile: key,
                                                        minlife: "5m", lifetime: "1h"))
        try store.addProfile(built.profile, files: built.files)
        let renewer = X509Renewer(store: store, logger: .silent)
        let profile = try store.profile("x")
        guard case .notNeeded(let left) = try await renewer.renewIfNeeded(profile) else {
            Issue.record("a fresh proxy was renewed")
            return
        }
        #expect(left > 3500 && left <= 3600)
        // A proxy with 2 minutes left, minlife 5 minutes: renewed natively to the full lifetime.
        try store.update(profile, files: [.proxy: Secret(try pki.proxy(lifetime: 120))])
        let oldSerial = try store.proxy(of: profile)!.leaf.serialNumber
        guard case .renewed(.native, let notAfter) = try await renewer.renewIfNeeded(profile) else {
            Issue.record("not renewed")
            return
        }
        #expect(abs(notAfter.timeIntervalSinceNow - 3600) < 5)
        let now = try store.proxy(of: profile)!
        #expect(now.leaf.serialNumber != oldSerial && mode(of: store.path(of: .proxy, profile: "x")) == 0o600)
    }

    @Test func proxySelectionSkipsExpiredAndOtherTenantsProxies() async throws {
        let (store, dir) = try makeStore()
        defer { dir.remove() }
        let pki = TestPKI.shared
        let now = Date()
        for (name, tenant, lifetime, madeAgo) in [("expired", "atlas", 3600.0, 7200.0), ("short", "atlas", 900.0, 0.0),
                                                  ("long", "atlas", 7200.0, 0.0), ("theirs", "cms", 86_400.0, 0.0)] {
            let file = try dir.write("\(name).pem", try pki.proxy(lifetime: lifetime, now: now.addingTimeInterval(-madeAgo)))
            var profile = Profile(name: name, tenant: tenant, kind: .x509)
            profile.x509 = X509Settings(source: .proxy, minlife: 60, lifetime: 3600, renew: .none)
            try store.addProfile(profile, files: [.proxy: Secret(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: file))))])
        }
        #expect(try store.selectProxy(among: ["expired", "short", "long"], tenant: "atlas", required: 600).profile.name == "long")
        #expect(try store.selectProxy(among: ["expired", "short"], tenant: "atlas", required: 600).profile.name == "short")
        do {
            _ = try store.selectProxy(among: ["expired", "short"], tenant: "atlas", required: 3600)
            Issue.record("selected a proxy below the requirement")
        } catch {
            #expect(error.code == .noUsableCredential && error.message.contains("expired EXPIRED at"))
        }
        #expect(throws: AuthError.self) { try store.selectProxy(among: ["theirs"], tenant: "atlas", required: 0) }
    }
}
