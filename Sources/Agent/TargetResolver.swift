public import AuthProfiles
public import SSHSubmit

/// Resolves "target name → SSH pool, logged in with its tenant's profile": the one place where the store's
/// targets and profiles become SSHSubmit endpoints, identities and jump chains. Tenancy is enforced here: a queue
/// may use only its own tenant's targets, and a target (and each jump host) only its own tenant's profiles.
public struct TargetResolver: Sendable {
    public let store: ProfileStore
    public let pools: SSHPools
    public let options: SSHOptions

    public init(store: ProfileStore, pools: SSHPools, options: SSHOptions = SSHOptions()) {
        self.store = store
        self.pools = pools
        self.options = options
    }

    /// The private key (and passphrase) of an ssh profile, read from the store (0600 files only), for libssh2.
    public func identity(profile name: String) throws(AuthError) -> SSHIdentity {
        let profile = try store.profile(name)
        guard profile.kind == .ssh else {
            throw .input(.wrongKind, "profile '\(name)' is of kind \(profile.kind.rawValue), not ssh")
        }
        let key = try store.secret(.sshPrivateKey, profile: name)
        let passphrase = store.hasFile(.sshPassphrase, profile: name)
            ? try store.secret(.sshPassphrase, profile: name) : nil
        return SSHIdentity(id: "profile:\(name)", privateKey: key, passphrase: passphrase)
    }

    public func endpoint(_ target: Target) throws(AuthError) -> SSHEndpoint {
        guard let host = target.host, let user = target.user else {
            throw .input(.badValue, "target '\(target.name)' is a local target; it has no SSH endpoint")
        }
        return SSHEndpoint(host: host, port: target.port, user: user)
    }

    /// Endpoint, identity and jump chain of a target, all checked for tenancy.
    /// - Parameters:
    ///   - tenant: the tenant asking (a queue's tenant); nil = the target's own.
    ///   - profileOverride: log in with this profile instead of the target's (it must be the target tenant's too).
    public func resolve(target name: String, tenant: String? = nil, profileOverride: String? = nil)
        throws(AuthError) -> (endpoint: SSHEndpoint, identity: SSHIdentity, jump: [(SSHEndpoint, SSHIdentity)])
    {
        let target = try store.target(name)
        if let tenant, tenant != target.tenant {
            throw .input(.crossTenant, "tenant '\(tenant)' may not use target '\(name)', which belongs to tenant "
                             + "'\(target.tenant)'. Fix: use a target of tenant '\(tenant)'")
        }
        let identity = try loginIdentity(target, override: profileOverride)
        var chain: [(SSHEndpoint, SSHIdentity)] = []
        for hop in try store.jumpChain(of: target) {
            chain.insert((try endpoint(hop), try loginIdentity(hop, override: nil)), at: 0)
        }
        return (try endpoint(target), identity, chain)
    }

    private func loginIdentity(_ target: Target, override: String?) throws(AuthError) -> SSHIdentity {
        guard let profileName = override ?? target.profile else {
            throw .input(.badValue, "target '\(target.name)' has no profile. Fix: re-add it with --profile")
        }
        let profile = try store.profile(profileName)
        try Tenancy.require(profile: profile, usableBy: "target '\(target.name)'", ofTenant: target.tenant)
        return try identity(profile: profileName)
    }

    /// The shared pool for a target (one connection per endpoint, identity and jump path in the process).
    public func pool(target name: String, tenant: String? = nil, profileOverride: String? = nil) throws(AuthError)
        -> SSHPool
    {
        let r = try resolve(target: name, tenant: tenant, profileOverride: profileOverride)
        return pools.pool(for: r.endpoint, identity: r.identity, knownHostsPath: store.knownHostsPath,
                          options: options, jump: r.jump)
    }

    /// A pool to the target's jump host (its last hop), for scanning the target's host key through it.
    public func gatewayPool(target name: String) throws(AuthError) -> SSHPool? {
        let target = try store.target(name)
        guard let jump = target.jump else { return nil }
        return try pool(target: jump, tenant: target.tenant)
    }
}
