public import Foundation
import Glibc
// `struct stat` is attributed to whichever Clang module first included <sys/stat.h>: CDispatch in debug builds,
// CoreFoundation in release (whole-module) builds. MemberImportVisibility wants that module imported, so both are.
#if canImport(CoreFoundation) && canImport(CDispatch)
import CDispatch
import CoreFoundation
#endif

/// Where an installation keeps its tenants, profiles, targets and known_hosts.
public enum APFHome {
    /// `explicit` (the CLI's `--home`), else `$APF_HOME`, else `/var/lib/apf` for root (a system service), else
    /// `~/.apf`.
    public static func resolve(explicit: String? = nil,
                               environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let env = environment["APF_HOME"], !env.isEmpty { return env }
        if geteuid() == 0 { return "/var/lib/apf" }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.apf"
    }
}

/// Checks that a profile is used only by its own tenant.
public enum Tenancy {
    /// Throws `crossTenant`, naming both tenants, unless `profile` belongs to `tenant`.
    public static func require(profile: Profile, usableBy user: String, ofTenant tenant: String) throws(AuthError) {
        guard profile.tenant == tenant else {
            throw .input(.crossTenant,
                         "\(user) belongs to tenant '\(tenant)' but profile '\(profile.name)' belongs to tenant "
                             + "'\(profile.tenant)': a target or queue may only use its own tenant's profiles. Fix: use a "
                             + "profile of tenant '\(tenant)' (apf-agent profile list --tenant \(tenant)) or add one")
        }
    }
}

/// The on-disk store of one installation:
///
/// ```
/// <home>/                 0700
///   tenants/<name>.json   0600
///   profiles/<name>/      0700   profile.json + secret files (0600), see ProfileFile
///   targets/<name>.json   0600
///   known_hosts           pinned host keys (target trust)
///   .lock                 flock held by every change
/// ```
///
/// Every change happens under the lock and is atomic: a profile is assembled in a hidden staging directory and
/// renamed into place, single files are written to a temporary name, fsynced and renamed (or linked, for
/// create-only). A failed change leaves the store as it was.
public struct ProfileStore: Sendable {
    public let home: String

    public init(home: String) {
        self.home = home
    }

    var tenantsDir: String { home + "/tenants" }
    var profilesDir: String { home + "/profiles" }
    var targetsDir: String { home + "/targets" }
    public var knownHostsPath: String { home + "/known_hosts" }

    public func profileDirectory(_ name: String) -> String { "\(profilesDir)/\(name)" }
    public func path(of file: ProfileFile, profile name: String) -> String { "\(profileDirectory(name))/\(file.rawValue)" }

    // MARK: - Locking and layout

    /// Creates the layout if needed, takes the lock, runs `body`.
    public func mutate<T>(_ body: () throws(AuthError) -> T) throws(AuthError) -> T {
        try SecureFile.ensurePrivateDirectory(home)
        for dir in [tenantsDir, profilesDir, targetsDir] { try SecureFile.ensurePrivateDirectory(dir) }
        let lock = try FileLock(path: home + "/.lock")
        defer { withExtendedLifetime(lock) {} }
        return try body()
    }

    private func checkHomeIfPresent() throws(AuthError) {
        var st = stat()
        if lstat(home, &st) == 0 { try SecureFile.checkPrivate(home, st, what: "directory", fix: "chmod 700") }
    }

    // MARK: - JSON

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .iso8601
        return e
    }()
    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }()

    static func encode<T: Encodable>(_ value: T) throws(AuthError) -> [UInt8] {
        do { return Array(try encoder.encode(value)) + [0x0A] } catch {
            throw AuthError(.internalError, "cannot encode \(T.self): \(error)")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ bytes: [UInt8], path: String) throws(AuthError) -> T {
        do { return try decoder.decode(T.self, from: Data(bytes)) } catch {
            throw AuthError(.storeIO, "\(path) is not a valid \(T.self) record (\(error)); restore it from a backup "
                                + "or remove it")
        }
    }

    private func readRecord<T: Decodable>(_ type: T.Type, _ path: String) throws(AuthError) -> T? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let bytes = try SecureFile.readPrivate(path)
        return try Self.decode(T.self, bytes, path: path)
    }

    private func names(in dir: String, suffix: String = "") -> [String] {
        let items = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return items.filter { !$0.hasPrefix(".") && $0.hasSuffix(suffix) }
            .map { String($0.dropLast(suffix.count)) }.sorted()
    }

    // MARK: - Tenants

    public func tenants() throws(AuthError) -> [Tenant] {
        try checkHomeIfPresent()
        var out: [Tenant] = []
        for n in names(in: tenantsDir, suffix: ".json") {
            if let t = try readRecord(Tenant.self, "\(tenantsDir)/\(n).json") { out.append(t) }
        }
        return out
    }

    public func tenant(_ name: String) throws(AuthError) -> Tenant {
        try Names.validate(name, what: "tenant")
        guard let t = try readRecord(Tenant.self, "\(tenantsDir)/\(name).json") else {
            throw .input(.notFound, "no tenant '\(name)'. Fix: apf-agent tenant add \(name)")
        }
        return t
    }

    public func addTenant(_ tenant: Tenant) throws(AuthError) {
        try Names.validate(tenant.name, what: "tenant")
        let bytes = try Self.encode(tenant)
        try mutate { () throws(AuthError) in
            guard try SecureFile.createExclusive("\(tenantsDir)/\(tenant.name).json", bytes) else {
                throw .input(.duplicate, "tenant '\(tenant.name)' already exists; choose another name")
            }
        }
    }

    public func removeTenant(_ name: String) throws(AuthError) {
        _ = try tenant(name)
        try mutate { () throws(AuthError) in
            let profiles = try self.profiles().filter { $0.tenant == name }.map(\.name)
            let targets = try self.targets().filter { $0.tenant == name }.map(\.name)
            guard profiles.isEmpty, targets.isEmpty else {
                var owned: [String] = []
                if !profiles.isEmpty { owned.append("profiles \(profiles.joined(separator: ", "))") }
                if !targets.isEmpty { owned.append("targets \(targets.joined(separator: ", "))") }
                throw .input(.inUse, "tenant '\(name)' still owns \(owned.joined(separator: " and ")). Fix: remove "
                                 + "them first (apf-agent target remove / profile remove)")
            }
            let path = "\(tenantsDir)/\(name).json"
            guard unlink(path) == 0 else { throw AuthError(.storeIO, "cannot remove \(path): \(SecureFile.errnoText())") }
            SecureFile.syncDirectory(tenantsDir)
        }
    }

    // MARK: - Profiles

    public func profiles() throws(AuthError) -> [Profile] {
        try checkHomeIfPresent()
        var out: [Profile] = []
        for n in names(in: profilesDir) {
            if let p = try readRecord(Profile.self, path(of: .metadata, profile: n)) { out.append(p) }
        }
        return out
    }

    public func profile(_ name: String) throws(AuthError) -> Profile {
        try Names.validate(name, what: "profile")
        guard let p = try readRecord(Profile.self, path(of: .metadata, profile: name)) else {
            throw .input(.notFound, "no profile '\(name)'. See: apf-agent profile list")
        }
        return p
    }

    public func hasFile(_ file: ProfileFile, profile name: String) -> Bool {
        FileManager.default.fileExists(atPath: path(of: file, profile: name))
    }

    /// Reads one secret file of a profile, refusing it (and its directory) when others could read it.
    public func secret(_ file: ProfileFile, profile name: String) throws(AuthError) -> Secret {
        var st = stat()
        let dir = profileDirectory(name)
        guard lstat(dir, &st) == 0 else { throw .input(.notFound, "no profile '\(name)'. See: apf-agent profile list") }
        try SecureFile.checkPrivate(dir, st, what: "profile directory", fix: "chmod 700")
        return Secret(bytes: try SecureFile.readPrivate(path(of: file, profile: name)))
    }

    /// Adds a profile with its secret files, atomically: assembled in a staging directory, then renamed into place.
    public func addProfile(_ profile: Profile, files: [ProfileFile: Secret]) throws(AuthError) {
        try Names.validate(profile.name, what: "profile")
        let meta = try Self.encode(profile)
        try mutate { () throws(AuthError) in
            _ = try tenant(profile.tenant)
            let final = profileDirectory(profile.name)
            if FileManager.default.fileExists(atPath: final) {
                let owner = (try? self.profile(profile.name).tenant).map { " (tenant '\($0)')" } ?? ""
                throw .input(.duplicate, "profile '\(profile.name)' already exists\(owner); profile names are unique "
                                 + "in an installation. Choose another name, or remove the old one first")
            }
            let staging = "\(profilesDir)/.staging-\(profile.name)-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
            guard mkdir(staging, 0o700) == 0 else {
                throw AuthError(.storeIO, "cannot create \(staging): \(SecureFile.errnoText())")
            }
            var done = false
            defer { if !done { SecureFile.removeTree(staging) } }
            for (file, secret) in files {
                try secret.withBytes { (b: [UInt8]) throws(AuthError) in
                    try SecureFile.writeAtomic("\(staging)/\(file.rawValue)", b)
                }
            }
            try SecureFile.writeAtomic("\(staging)/\(ProfileFile.metadata.rawValue)", meta)
            guard rename(staging, final) == 0 else {
                throw AuthError(.storeIO, "cannot move \(staging) to \(final): \(SecureFile.errnoText())")
            }
            done = true
            SecureFile.syncDirectory(profilesDir)
        }
    }

    /// Replaces secret files of an existing profile (renewal) and its metadata, each atomically.
    public func update(_ profile: Profile, files: [ProfileFile: Secret] = [:]) throws(AuthError) {
        var p = profile
        p.updated = Date()
        let meta = try Self.encode(p)
        try mutate { () throws(AuthError) in
            _ = try self.profile(profile.name)
            for (file, secret) in files {
                try secret.withBytes { (b: [UInt8]) throws(AuthError) in
                    try SecureFile.writeAtomic(path(of: file, profile: profile.name), b)
                }
            }
            try SecureFile.writeAtomic(path(of: .metadata, profile: profile.name), meta)
        }
    }

    /// Targets that log in with, or jump through, this profile.
    public func users(ofProfile name: String) throws(AuthError) -> [String] {
        try targets().filter { $0.profile == name }.map(\.name)
    }

    /// Removes a profile. Refuses while targets use it unless `force`; returns the targets left pointing at it.
    @discardableResult
    public func removeProfile(_ name: String, force: Bool) throws(AuthError) -> [String] {
        _ = try profile(name)
        return try mutate { () throws(AuthError) -> [String] in
            let users = try self.users(ofProfile: name)
            if !users.isEmpty, !force {
                throw .input(.inUse, "profile '\(name)' is used by target(s) \(users.joined(separator: ", ")). Fix: "
                                 + "point them at another profile or remove them first (or use --force to leave them "
                                 + "without a profile)")
            }
            let dir = profileDirectory(name)
            let trash = "\(profilesDir)/.trash-\(name)-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))"
            guard rename(dir, trash) == 0 else {
                throw AuthError(.storeIO, "cannot remove \(dir): \(SecureFile.errnoText())")
            }
            SecureFile.syncDirectory(profilesDir)
            SecureFile.removeTree(trash)
            return users
        }
    }

    // MARK: - Targets

    public func targets() throws(AuthError) -> [Target] {
        try checkHomeIfPresent()
        var out: [Target] = []
        for n in names(in: targetsDir, suffix: ".json") {
            if let t = try readRecord(Target.self, "\(targetsDir)/\(n).json") { out.append(t) }
        }
        return out
    }

    public func target(_ name: String) throws(AuthError) -> Target {
        try Names.validate(name, what: "target")
        guard let t = try readRecord(Target.self, "\(targetsDir)/\(name).json") else {
            throw .input(.notFound, "no target '\(name)'. See: apf-agent target list")
        }
        return t
    }

    /// Adds a target after checking its tenant, profile (same tenant, kind ssh) and jump chain (same tenant, no
    /// cycles).
    public func addTarget(_ target: Target) throws(AuthError) {
        try Names.validate(target.name, what: "target")
        let bytes = try Self.encode(target)
        try mutate { () throws(AuthError) in
            try validate(target)
            guard try SecureFile.createExclusive("\(targetsDir)/\(target.name).json", bytes) else {
                let owner = (try? self.target(target.name).tenant).map { " (tenant '\($0)')" } ?? ""
                throw .input(.duplicate, "target '\(target.name)' already exists\(owner); target names are unique in "
                                 + "an installation. Choose another name, or remove the old one first")
            }
        }
    }

    func validate(_ target: Target) throws(AuthError) {
        _ = try tenant(target.tenant)
        if target.batch != .local {
            guard let host = target.host, !host.isEmpty else {
                throw .input(.badValue, "target '\(target.name)' needs --host (only --batch local runs without one)")
            }
            guard target.user?.isEmpty == false else {
                throw .input(.badValue, "target '\(target.name)' needs --user, the login name on \(host)")
            }
            guard target.profile != nil else {
                throw .input(.badValue, "target '\(target.name)' needs --profile, an ssh profile of tenant "
                                 + "'\(target.tenant)'")
            }
        }
        guard (1...65_535).contains(target.port) else {
            throw .input(.badValue, "port \(target.port) is out of range; use 1-65535")
        }
        if let name = target.profile {
            let p = try profile(name)
            try Tenancy.require(profile: p, usableBy: "target '\(target.name)'", ofTenant: target.tenant)
            guard p.kind == .ssh else {
                throw .input(.wrongKind, "profile '\(name)' is of kind \(p.kind.rawValue); a target logs in with an "
                                 + "ssh profile. Fix: --profile <an ssh profile of tenant '\(target.tenant)'>")
            }
        }
        for hop in try jumpChain(of: target) where hop.batch == .local && hop.host == nil {
            throw .input(.badValue, "jump target '\(hop.name)' is a local target without a host; it cannot be a jump host")
        }
    }

    /// The jump hosts of `target`, nearest first, each checked to belong to the target's tenant; loops are refused.
    public func jumpChain(of target: Target) throws(AuthError) -> [Target] {
        var chain: [Target] = []
        var seen: Set<String> = [target.name]
        var next = target.jump
        while let j = next {
            guard !seen.contains(j) else {
                throw .input(.badValue, "jump chain of target '\(target.name)' loops at '\(j)'; fix the --jump targets")
            }
            seen.insert(j)
            let hop = try self.target(j)
            guard hop.tenant == target.tenant else {
                throw .input(.crossTenant, "target '\(target.name)' belongs to tenant '\(target.tenant)' but its jump "
                                 + "target '\(j)' belongs to tenant '\(hop.tenant)': a target may only use its own "
                                 + "tenant's targets and profiles. Fix: add a jump target for tenant '\(target.tenant)'")
            }
            chain.append(hop)
            next = hop.jump
        }
        return chain
    }

    public func removeTarget(_ name: String) throws(AuthError) {
        _ = try target(name)
        try mutate { () throws(AuthError) in
            let users = try targets().filter { $0.jump == name }.map(\.name)
            guard users.isEmpty else {
                throw .input(.inUse, "target '\(name)' is the jump host of \(users.joined(separator: ", ")). Fix: "
                                 + "remove those targets first")
            }
            let path = "\(targetsDir)/\(name).json"
            guard unlink(path) == 0 else { throw AuthError(.storeIO, "cannot remove \(path): \(SecureFile.errnoText())") }
            SecureFile.syncDirectory(targetsDir)
        }
    }
}
