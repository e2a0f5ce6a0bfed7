public import AuthProfiles
public import SSHSubmit
import Foundation

/// `target trust`: fetch a target's host key (through its jump host if it has one) without trusting it, and pin it
/// in the installation's known_hosts only when the operator confirmed it.
public enum HostTrust {
    public enum PinResult: String, Sendable, Codable {
        case added
        case alreadyTrusted = "already-trusted"
        case replaced
    }

    public static let conflict = AuthError.Code("auth.host-key-conflict")
    public static let mismatch = AuthError.Code("auth.fingerprint-mismatch")

    public static func scan(target name: String, resolver: TargetResolver, keyTypes: [String]? = nil)
        async throws -> ScannedHostKey
    {
        let target = try resolver.store.target(name)
        guard let host = target.host else {
            throw AuthError.input(.badValue, "target '\(name)' is local; it has no host key")
        }
        var gateway: SSHConnection?
        if let pool = try resolver.gatewayPool(target: name) { gateway = try await pool.connection() }
        return try await HostKeyScan.scan(host: host, port: target.port,
                                          keyTypes: keyTypes ?? HostKeyScan.defaultKeyTypes, via: gateway)
    }

    /// Adds the key to `knownHostsPath` (atomically, 0600). An existing different key for the host is refused
    /// unless `replace`, which removes the host's old lines first.
    public static func pin(_ key: ScannedHostKey, host: String, port: Int, knownHostsPath: String, replace: Bool)
        throws(AuthError) -> PinResult
    {
        let existing: String
        if FileManager.default.fileExists(atPath: knownHostsPath) {
            existing = String(decoding: try SecureFile.readInput(knownHostsPath, what: "known_hosts"), as: UTF8.self)
        } else {
            existing = ""
        }
        let known = KnownHosts(text: existing, source: knownHostsPath)
        var lines = existing.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        var result = PinResult.added
        switch known.verify(host: host, port: port, keyType: key.keyType, key: key.key) {
        case .trusted:
            return .alreadyTrusted
        case .revoked(let line):
            throw AuthError(conflict, "the host key \(key.fingerprint) of \(KnownHosts.hostName(host, port: port)) is "
                                + "marked @revoked at \(knownHostsPath):\(line); it will not be trusted")
        case .changed(let types, let at):
            guard replace else {
                throw AuthError(conflict, "\(KnownHosts.hostName(host, port: port)) already has a different pinned "
                                    + "\(types.joined(separator: ", ")) key (\(knownHostsPath) line(s) "
                                    + "\(at.map(String.init).joined(separator: ","))); it now presents \(key.keyType) "
                                    + "\(key.fingerprint). If the site really re-keyed, check the new fingerprint with "
                                    + "the site and run again with --replace --fingerprint \(key.fingerprint)")
            }
            let drop = Set(at)
            lines = lines.enumerated().filter { !drop.contains($0.offset + 1) }.map(\.element)
            result = .replaced
        case .unknown:
            break
        }
        lines.append(key.knownHostsLine(host: host, port: port))
        let dir = (knownHostsPath as NSString).deletingLastPathComponent
        try SecureFile.ensurePrivateDirectory(dir)
        try SecureFile.writeAtomic(knownHostsPath, Array((lines.joined(separator: "\n") + "\n").utf8), mode: 0o600)
        return result
    }
}
