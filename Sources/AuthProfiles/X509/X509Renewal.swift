public import Foundation
public import Logging
import X509

extension ProfileStore {
    /// The profile's current proxy, or nil when it has none yet (read with the secret-file permission checks).
    public func proxy(of profile: Profile) throws(AuthError) -> X509Credential? {
        guard hasFile(.proxy, profile: profile.name) else { return nil }
        let bytes = try secret(.proxy, profile: profile.name)
        return try bytes.withBytes { (b: [UInt8]) throws(AuthError) in
            try X509Credential.parse(b, source: "proxy of profile '\(profile.name)'")
        }
    }
}

extension ProfileStore {
    /// For a queue of `tenant` naming X.509 `profiles` in order of preference: the one whose proxy has at least
    /// `required` seconds left and lasts longest. Never an expired one; every profile must be the tenant's.
    public func selectProxy(among profiles: [String], tenant: String, required: TimeInterval, now: Date = Date())
        throws(AuthError) -> (profile: Profile, credential: X509Credential)
    {
        var candidates: [CredentialSelection.Candidate] = []
        var loaded: [String: (Profile, X509Credential)] = [:]
        var missing: [String] = []
        for name in profiles {
            let p = try profile(name)
            try Tenancy.require(profile: p, usableBy: "a queue of tenant '\(tenant)'", ofTenant: tenant)
            guard p.kind == .x509 else {
                throw .input(.wrongKind, "profile '\(name)' is of kind \(p.kind.rawValue), not x509")
            }
            guard let cred = try proxy(of: p) else {
                missing.append(name)
                continue
            }
            loaded[name] = (p, cred)
            candidates.append(.init(name: name, notAfter: cred.summary().effectiveNotAfter))
        }
        do {
            let best = try CredentialSelection.select(candidates, required: required, now: now)
            return loaded[best.name]!
        } catch {
            guard !missing.isEmpty else { throw error }
            var e = error
            e.message += " (no proxy yet: \(missing.joined(separator: ", ")))"
            throw e
        }
    }
}

/// The command form of renewal: an argument vector with placeholders, run without a shell.
public enum RenewCommand {
    /// `{out}` where the command must write the new proxy (required); `{proxy}` the current proxy; `{cert}`, `{key}`
    /// the profile's user certificate and key; `{hours}`, `{seconds}` the profile's lifetime; `{profile}` its name.
    public static let placeholders = ["out", "proxy", "cert", "key", "hours", "seconds", "profile"]

    /// Parses the CLI's `command:["argv0","arg",…]` (a JSON array of strings).
    public static func parse(_ text: String) throws(AuthError) -> [String] {
        let json = text.hasPrefix("command:") ? String(text.dropFirst("command:".count)) : text
        guard let data = json.data(using: .utf8),
              let argv = (try? JSONSerialization.jsonObject(with: data)) as? [Any],
              let strings = argv as? [String], !strings.isEmpty, !strings[0].isEmpty
        else {
            throw .input(.badValue, "--renew command: needs a JSON array of strings (an argument vector, never a shell "
                             + "string), e.g. --renew 'command:[\"voms-proxy-init\",\"-voms\",\"atlas\",\"-out\",\"{out}\"]'")
        }
        return strings
    }

    /// Checks placeholders: only known ones, `{out}` present, `{cert}`/`{key}` only with a user certificate.
    public static func validate(_ argv: [String], hasUserCertificate: Bool) throws(AuthError) {
        var sawOut = false
        for arg in argv {
            var rest = Substring(arg)
            while let open = rest.firstIndex(of: "{") {
                guard let close = rest[open...].firstIndex(of: "}") else { break }
                let name = String(rest[rest.index(after: open)..<close])
                guard placeholders.contains(name) else {
                    throw .input(.badValue, "unknown placeholder {\(name)} in the renewal command; known are "
                                     + placeholders.map { "{\($0)}" }.joined(separator: ", "))
                }
                if name == "out" { sawOut = true }
                if (name == "cert" || name == "key"), !hasUserCertificate {
                    throw .input(.badValue, "the renewal command uses {\(name)}, but the profile has no user "
                                     + "certificate and key. Fix: add the profile with --cert and --key")
                }
                rest = rest[rest.index(after: close)...]
            }
        }
        guard sawOut else {
            throw .input(.badValue, "the renewal command must write the new proxy to {out} (e.g. -out {out}); the agent "
                             + "then checks it and installs it atomically")
        }
        guard ChildProcess.resolve(argv[0], path: ChildProcess.minimalEnvironment()["PATH"]) != nil else {
            throw .input(.badValue, "renewal command '\(argv[0])' is not an executable in PATH. Fix: install it or "
                             + "give its absolute path")
        }
    }

    static func expand(_ argv: [String], _ values: [String: String]) -> [String] {
        argv.map { arg in
            var s = arg
            for (k, v) in values { s = s.replacingOccurrences(of: "{\(k)}", with: v) }
            return s
        }
    }
}

/// Keeps X.509 proxies valid: renews a profile's proxy when less than `minlife` is left, natively (RFC 3820 from
/// the user certificate and key) or with the configured command, and installs the new proxy atomically.
public struct X509Renewer: Sendable {
    public enum Outcome: Sendable, Equatable {
        case notNeeded(remaining: Int)
        case renewed(method: RenewPolicy.Method, notAfter: Date)
    }

    public let store: ProfileStore
    public let logger: Logger

    public init(store: ProfileStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    /// Renews when the proxy is missing or has less than `minlife` left (or always, with `force`).
    public func renewIfNeeded(_ profile: Profile, force: Bool = false, now: Date = Date()) async throws(AuthError)
        -> Outcome
    {
        guard let settings = profile.x509 else {
            throw .input(.wrongKind, "profile '\(profile.name)' is not an x509 profile")
        }
        if let current = try store.proxy(of: profile), !force {
            let left = Int(current.summary().effectiveNotAfter.timeIntervalSince(now))
            if left >= settings.minlife { return .notNeeded(remaining: left) }
        }
        guard settings.renew.method != .none else {
            throw AuthError(.belowMinlife, "profile '\(profile.name)' needs renewal but has --renew none (renewed "
                                + "elsewhere). Fix: renew the proxy file and re-add the profile, or set a renew method")
        }
        var log = logger
        log[metadataKey: "profile.name"] = "\(profile.name)"
        log[metadataKey: "tenant.id"] = "\(profile.tenant)"
        let pem: Secret
        if settings.renew.method == .command {
            pem = try await command(profile, settings, logger: log)
        } else {
            pem = try native(profile, settings, now: now)
        }
        let cred = try pem.withBytes { (b: [UInt8]) throws(AuthError) in
            try X509Credential.parse(b, source: "renewed proxy of '\(profile.name)'", requireKey: true)
        }
        let summary = cred.summary()
        guard summary.effectiveNotAfter > now else {
            throw AuthError(.renewFailed, "renewal of '\(profile.name)' produced a proxy that is already "
                                + "\(DurationText.expiry(summary.effectiveNotAfter, now: now)); nothing was installed")
        }
        try store.update(profile, files: [.proxy: pem])
        log.info("x509 proxy renewed", metadata: ["renew.method": "\(settings.renew.method.rawValue)",
                                                   "x509.not_after": "\(DurationText.date(summary.effectiveNotAfter))"])
        return .renewed(method: settings.renew.method, notAfter: summary.effectiveNotAfter)
    }

    private func native(_ profile: Profile, _ settings: X509Settings, now: Date) throws(AuthError) -> Secret {
        guard store.hasFile(.userCertificate, profile: profile.name), store.hasFile(.userKey, profile: profile.name) else {
            throw AuthError(.renewFailed, "profile '\(profile.name)' renews natively but has no user certificate and "
                                + "key. Fix: re-add it with --cert and --key")
        }
        let certBytes = try store.secret(.userCertificate, profile: profile.name)
        let keyBytes = try store.secret(.userKey, profile: profile.name)
        let certs = try certBytes.withBytes { (b: [UInt8]) throws(AuthError) in
            try X509Credential.parse(b, source: "user certificate of '\(profile.name)'")
        }
        let key = try keyBytes.withBytes { (b: [UInt8]) throws(AuthError) in
            try X509Credential.parse(b, source: "user key of '\(profile.name)'", requireKey: true)
        }
        return try ProxyGenerator.generate(signerChain: certs.certificates, signingKey: key.privateKey!,
                                           lifetime: TimeInterval(settings.lifetime), now: now).pem
    }

    private func command(_ profile: Profile, _ settings: X509Settings, logger: Logger) async throws(AuthError) -> Secret {
        guard let argv = settings.renew.command, !argv.isEmpty else {
            throw AuthError(.renewFailed, "profile '\(profile.name)' has --renew command but no command")
        }
        let dir = store.profileDirectory(profile.name)
        let out = "\(dir)/.renew-\(String(UInt64.random(in: 0...UInt64.max), radix: 36)).pem"
        defer { unlink(out) }
        let values = [
            "out": out, "proxy": store.path(of: .proxy, profile: profile.name),
            "cert": store.path(of: .userCertificate, profile: profile.name),
            "key": store.path(of: .userKey, profile: profile.name),
            "hours": String(max(1, settings.lifetime / 3600)), "seconds": String(settings.lifetime),
            "profile": profile.name,
        ]
        let expanded = RenewCommand.expand(argv, values)
        logger.info("running x509 renewal command", metadata: ["renew.command": "\(argv[0])"])
        let result = await ChildProcess.run(expanded, environment: ChildProcess.minimalEnvironment(),
                                            timeout: .seconds(300))
        guard result.status == 0 else {
            let tail = result.output.split(separator: "\n").suffix(3).joined(separator: " | ")
            let how = result.timedOut ? "did not finish within 300 s" : "exited \(result.status)"
            throw AuthError(.renewFailed, "renewal command \(argv[0]) for '\(profile.name)' \(how)"
                                + (tail.isEmpty ? "" : ": \(tail)") + "; nothing was installed (a previous proxy stays in place)")
        }
        guard FileManager.default.fileExists(atPath: out) else {
            throw AuthError(.renewFailed, "renewal command \(argv[0]) for '\(profile.name)' exited 0 but wrote nothing "
                                + "to {out}; nothing was installed (a previous proxy stays in place)")
        }
        return Secret(bytes: try SecureFile.readInput(out, what: "renewed proxy"))
    }
}
