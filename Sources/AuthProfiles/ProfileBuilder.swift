public import Foundation
import X509

/// Turns what an operator gave (`profile add` options, files, stdin) into a validated profile and its secret files.
/// Everything is checked here, before the store is touched: a builder error leaves the store unchanged.
public enum ProfileBuilder {
    public typealias Built = (profile: Profile, files: [ProfileFile: Secret])

    // MARK: SSH

    /// Generates an Ed25519 key pair (OpenSSH format; encrypted when a passphrase is given).
    public static func sshGenerate(name: String, tenant: String, passphrase: Secret?, comment: String? = nil)
        throws(AuthError) -> Built
    {
        try Names.validate(name, what: "profile")
        try Names.validate(tenant, what: "tenant")
        if let passphrase, passphrase.isEmpty {
            throw .input(.missingSecret, "the passphrase on standard input is empty. Fix: pipe a non-empty passphrase, "
                             + "or leave out --passphrase-stdin for an unencrypted key")
        }
        let (key, pub) = SSHPrivateKey.generateEd25519(comment: comment ?? "apf-agent:\(tenant)/\(name)",
                                                      passphrase: passphrase)
        var profile = Profile(name: name, tenant: tenant, kind: .ssh)
        profile.ssh = SSHKeyMetadata(keyType: pub.keyType,
                                     publicKey: pub.authorizedKeysLine(comment: comment ?? "apf-agent:\(tenant)/\(name)"),
                                     fingerprint: pub.fingerprint, encrypted: passphrase != nil, generated: true,
                                     format: "openssh")
        var files: [ProfileFile: Secret] = [.sshPrivateKey: key]
        if let passphrase { files[.sshPassphrase] = passphrase }
        return (profile, files)
    }

    /// Imports an existing private key file (refused when group/world-readable), proving the passphrase.
    public static func sshImport(name: String, tenant: String, keyFile: String, passphrase: Secret?)
        throws(AuthError) -> Built
    {
        try Names.validate(name, what: "profile")
        try Names.validate(tenant, what: "tenant")
        try SecureFile.requireNotGroupOrWorldReadable(keyFile, what: "key file")
        let key = Secret(bytes: try SecureFile.readInput(keyFile, what: "key file"))
        let info = try SSHPrivateKey.inspect(key, passphrase: passphrase, source: keyFile)
        var profile = Profile(name: name, tenant: tenant, kind: .ssh)
        profile.ssh = SSHKeyMetadata(keyType: info.publicKey.keyType,
                                     publicKey: info.publicKey.authorizedKeysLine(comment: info.comment),
                                     fingerprint: info.publicKey.fingerprint, encrypted: info.encrypted,
                                     generated: false, format: info.format.rawValue)
        var files: [ProfileFile: Secret] = [.sshPrivateKey: key]
        if info.encrypted, let passphrase { files[.sshPassphrase] = passphrase }
        return (profile, files)
    }

    // MARK: X.509

    public struct X509Input: Sendable {
        public var name: String
        public var tenant: String
        public var proxyFile: String?
        public var certFile: String?
        public var keyFile: String?
        public var minlife: String?
        public var lifetime: String?
        public var renew: String?
        public var caDirectory: String?

        public init(name: String, tenant: String, proxyFile: String? = nil, certFile: String? = nil,
                    keyFile: String? = nil, minlife: String? = nil, lifetime: String? = nil, renew: String? = nil,
                    caDirectory: String? = nil) {
            self.name = name
            self.tenant = tenant
            self.proxyFile = proxyFile
            self.certFile = certFile
            self.keyFile = keyFile
            self.minlife = minlife
            self.lifetime = lifetime
            self.renew = renew
            self.caDirectory = caDirectory
        }
    }

    public static let defaultMinlife = 2 * 3600
    public static let defaultLifetime = 24 * 3600

    public static func x509(_ input: X509Input, now: Date = Date()) async throws(AuthError) -> Built {
        try Names.validate(input.name, what: "profile")
        try Names.validate(input.tenant, what: "tenant")
        let minlife = try input.minlife.map { (s: String) throws(AuthError) in try DurationText.parse(s, option: "--minlife") }
            ?? defaultMinlife
        let lifetime = try input.lifetime.map { (s: String) throws(AuthError) in try DurationText.parse(s, option: "--lifetime") }
            ?? defaultLifetime
        var caDirectory = input.caDirectory
        if let dir = input.caDirectory {
            if !dir.hasPrefix("/") { caDirectory = FileManager.default.currentDirectoryPath + "/" + dir }
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
                throw .input(.badValue, "--ca-dir \(dir) is not a directory (e.g. /etc/grid-security/certificates)")
            }
        }
        var files: [ProfileFile: Secret] = [:]
        let source: X509Settings.Source
        var renew = RenewPolicy.none
        switch (input.proxyFile, input.certFile, input.keyFile) {
        case (let proxy?, nil, nil):
            source = .proxy
            try SecureFile.requireNotGroupOrWorldReadable(proxy, what: "proxy file")
            let bytes = try SecureFile.readInput(proxy, what: "proxy file")
            let cred = try X509Credential.parse(bytes, source: proxy, requireKey: true)
            let summary = cred.summary()
            guard summary.proxyType != nil else {
                throw .input(.badValue, "\(proxy) is not a proxy (its first certificate, \(summary.subject), has no "
                                 + "RFC 3820 ProxyCertInfo and is not a legacy proxy). Fix: for a user certificate "
                                 + "use --cert and --key instead of --proxy-file")
            }
            guard summary.effectiveNotAfter > now else {
                throw .input(.expired, "proxy \(proxy) is already \(DurationText.expiry(summary.effectiveNotAfter, now: now))"
                                 + "; an expired proxy is never used. Fix: make a new one (voms-proxy-init) and add "
                                 + "that, or add the profile with --cert and --key for native renewal")
            }
            let chain = await X509Checker.verifyChain(cred, caDirectory: nil, now: now)
            if let problem = chain.problems.first {
                throw .input(.chainInvalid, "proxy \(proxy) is not usable: \(problem)")
            }
            files[.proxy] = Secret(bytes: bytes)
        case (nil, let cert?, let key?):
            source = .certificateAndKey
            renew = .native
            try SecureFile.requireNotGroupOrWorldReadable(key, what: "user key")
            let certCred = try X509Credential.parse(try SecureFile.readInput(cert, what: "user certificate"),
                                                    source: cert)
            guard !certCred.certificates.isEmpty else {
                throw .input(.malformedPEM, "\(cert) holds no certificate. Fix: give the user certificate (usercert.pem)")
            }
            let keyBytes = try SecureFile.readInput(key, what: "user key")
            let keyCred = try X509Credential.parse(keyBytes, source: key, requireKey: true)
            let user = certCred.certificates[0]
            guard user.publicKey == keyCred.privateKey!.publicKey else {
                throw .input(.malformedKey, "\(key) does not belong to \(cert) (their public keys differ). Fix: give "
                                 + "the matching --cert and --key")
            }
            guard user.notValidAfter > now else {
                throw .input(.expired, "user certificate \(cert) is already "
                                 + "\(DurationText.expiry(user.notValidAfter, now: now)). Fix: renew it with your CA")
            }
            files[.userCertificate] = Secret(bytes: try SecureFile.readInput(cert, what: "user certificate"))
            files[.userKey] = Secret(bytes: keyBytes)
        case (nil, nil, nil):
            throw .input(.badValue, "an x509 profile needs --proxy-file F, or --cert F --key F (user certificate and "
                             + "key, for native proxy renewal)")
        default:
            throw .input(.badValue, "give either --proxy-file, or both --cert and --key (not a mix)")
        }
        if let r = input.renew {
            switch r {
            case "none": renew = .none
            case "native":
                guard source == .certificateAndKey else {
                    throw .input(.badValue, "--renew native generates proxies from a user certificate and key. Fix: add "
                                     + "the profile with --cert and --key, or use --renew command:[…]")
                }
                renew = .native
            default:
                guard r.hasPrefix("command:") else {
                    throw .input(.badValue, "--renew must be none, native or command:[\"argv0\",…] (got '\(r.prefix(40))')")
                }
                let argv = try RenewCommand.parse(r)
                try RenewCommand.validate(argv, hasUserCertificate: source == .certificateAndKey)
                renew = RenewPolicy(method: .command, command: argv)
            }
        }
        guard lifetime > minlife else {
            throw .input(.badValue, "--lifetime (\(DurationText.format(seconds: lifetime))) must be longer than "
                             + "--minlife (\(DurationText.format(seconds: minlife))), or every check would renew")
        }
        var profile = Profile(name: input.name, tenant: input.tenant, kind: .x509)
        profile.x509 = X509Settings(source: source, minlife: minlife, lifetime: lifetime, renew: renew,
                                    caDirectory: caDirectory)
        if source == .certificateAndKey, renew.method == .native {
            // The first proxy, so the profile is usable at once.
            let certs = try files[.userCertificate]!.withBytes { (b: [UInt8]) throws(AuthError) in
                try X509Credential.parse(b, source: input.certFile!)
            }
            let key = try files[.userKey]!.withBytes { (b: [UInt8]) throws(AuthError) in
                try X509Credential.parse(b, source: input.keyFile!, requireKey: true)
            }
            files[.proxy] = try ProxyGenerator.generate(signerChain: certs.certificates, signingKey: key.privateKey!,
                                                        lifetime: TimeInterval(lifetime), now: now).pem
        }
        return (profile, files)
    }

    // MARK: Clouds

    public static func ec2(name: String, tenant: String, accessKeyID: String, secret: Secret?, sessionToken: Secret?,
                           region: String, endpoint: String?) throws(AuthError) -> Built {
        try Names.validate(name, what: "profile")
        try Names.validate(tenant, what: "tenant")
        guard accessKeyID.count >= 4, accessKeyID.count <= 128, accessKeyID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
            throw .input(.badValue, "--access-key-id must be the key id (letters and digits, e.g. AKIAIOSFODNN7EXAMPLE); "
                             + "the secret goes on standard input with --secret-stdin")
        }
        guard !region.isEmpty, region.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }) else {
            throw .input(.badValue, "--region '\(region.prefix(40))' is not a region name (e.g. us-east-1)")
        }
        guard let secret, !secret.isEmpty else {
            throw .input(.missingSecret, "no secret access key on standard input. Fix: pipe it, e.g. "
                             + "`printf %s \"$AWS_SECRET_ACCESS_KEY\" | apf-agent profile add … --secret-stdin`")
        }
        var settings = EC2Settings(accessKeyID: accessKeyID, region: region, endpoint: endpoint,
                                   hasSessionToken: sessionToken != nil)
        if endpoint == nil { settings.endpoint = nil }
        _ = try EC2Client(settings: settings, secret: secret, sessionToken: sessionToken)
        var profile = Profile(name: name, tenant: tenant, kind: .ec2)
        profile.ec2 = settings
        var files: [ProfileFile: Secret] = [.cloudSecret: secret]
        if let sessionToken { files[.sessionToken] = sessionToken }
        return (profile, files)
    }

    public static func openstack(name: String, tenant: String, authURL: String, applicationCredentialID: String,
                                 secret: Secret?, project: String?, region: String?, interface: String?)
        throws(AuthError) -> Built
    {
        try Names.validate(name, what: "profile")
        try Names.validate(tenant, what: "tenant")
        guard !applicationCredentialID.isEmpty, applicationCredentialID.count <= 128,
              applicationCredentialID.allSatisfy({ $0.isASCII && !$0.isWhitespace })
        else {
            throw .input(.badValue, "--application-credential-id must be the credential's id (no spaces); the secret "
                             + "goes on standard input with --secret-stdin")
        }
        guard let secret, !secret.isEmpty else {
            throw .input(.missingSecret, "no application credential secret on standard input. Fix: pipe it, e.g. "
                             + "`printf %s \"$OS_APPLICATION_CREDENTIAL_SECRET\" | apf-agent profile add … --secret-stdin`")
        }
        let iface = interface ?? "public"
        guard ["public", "internal", "admin"].contains(iface) else {
            throw .input(.badValue, "--interface must be public, internal or admin")
        }
        let settings = OpenStackSettings(authURL: authURL, applicationCredentialID: applicationCredentialID,
                                         project: project, region: region, interface: iface)
        _ = try KeystoneClient(settings: settings, secret: secret)
        var profile = Profile(name: name, tenant: tenant, kind: .openstack)
        profile.openstack = settings
        return (profile, [.cloudSecret: secret])
    }
}
