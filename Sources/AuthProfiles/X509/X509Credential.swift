public import Foundation
public import X509
public import SwiftASN1
import Crypto
import _CryptoExtras

/// What kind of proxy a certificate is.
public enum ProxyType: String, Codable, Sendable {
    /// RFC 3820 with the inheritAll policy (what grid-proxy-init and voms-proxy-init -rfc make).
    case rfc3820Impersonation = "RFC 3820 impersonation proxy"
    case rfc3820Limited = "RFC 3820 limited proxy"
    case rfc3820Independent = "RFC 3820 independent proxy"
    case rfc3820Restricted = "RFC 3820 restricted proxy"
    /// The pre-RFC Globus Toolkit 3 draft extension (1.3.6.1.4.1.3536.1.222).
    case gt3 = "GT3 draft proxy"
    /// Globus Toolkit 2 legacy proxy: subject ends in CN=proxy or CN=limited proxy.
    case legacy = "legacy (GT2) proxy"
}

/// OIDs of the grid extensions.
public enum GridOID {
    public static let proxyCertInfo: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 1, 14]
    public static let proxyCertInfoGT3: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 3536, 1, 222]
    public static let policyInheritAll: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 21, 1]
    public static let policyIndependent: ASN1ObjectIdentifier = [1, 3, 6, 1, 5, 5, 7, 21, 2]
    public static let policyLimited: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 3536, 1, 1, 1, 9]
    /// VOMS attribute certificate sequence, carried in the proxy.
    public static let vomsACSequence: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 8005, 100, 100, 5]
    /// VOMS FQAN attribute inside the attribute certificate.
    public static let vomsFQANAttribute: ASN1ObjectIdentifier = [1, 3, 6, 1, 4, 1, 8005, 100, 100, 4]
}

/// A parsed X.509 credential: a certificate chain (leaf first) and, for a proxy or a cert+key pair, the private key.
public struct X509Credential: Sendable {
    public var certificates: [Certificate]
    public var privateKey: Certificate.PrivateKey?

    public var leaf: Certificate { certificates[0] }

    /// Parses PEM text holding certificates and optionally one private key (a proxy file, a usercert.pem, a
    /// userkey.pem or all concatenated). `source` names it in messages.
    public static func parse(_ bytes: [UInt8], source: String, requireKey: Bool = false) throws(AuthError)
        -> X509Credential
    {
        let blocks = try PEM.blocks(bytes, source: source)
        var certs: [Certificate] = []
        var key: Certificate.PrivateKey?
        for (i, b) in blocks.enumerated() {
            switch b.label {
            case "CERTIFICATE":
                do { certs.append(try Certificate(derEncoded: b.der)) } catch {
                    throw .input(.malformedPEM, "\(source): certificate #\(i + 1) is not a valid X.509 certificate "
                                     + "(\(error)). Fix: export it again")
                }
            case "RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY":
                if b.headers["Proc-Type"]?.contains("ENCRYPTED") == true {
                    throw .input(.unsupportedKey, "\(source): the private key is encrypted. The agent needs an "
                                     + "unencrypted user key (mode 0600) to generate proxies unattended. Fix: `openssl rsa -in KEY -out userkey.pem` (or use --renew command)")
                }
                do {
                    key = try Certificate.PrivateKey(pemDocument: PEMDocument(type: b.label, derBytes: b.der))
                } catch {
                    throw .input(.malformedKey, "\(source): the private key cannot be read (\(error))")
                }
            case "ENCRYPTED PRIVATE KEY":
                throw .input(.unsupportedKey, "\(source): the private key is encrypted (PKCS#8). The agent needs an "
                                 + "unencrypted user key (mode 0600). Fix: `openssl pkey -in KEY -out userkey.pem`, or "
                                 + "renew with --renew command:[...]")
            default:
                continue
            }
        }
        guard !certs.isEmpty || key != nil else {
            throw .input(.malformedPEM, "\(source) holds no PEM certificate or key ('-----BEGIN CERTIFICATE-----'). "
                             + "Fix: give a PEM file (convert DER with `openssl x509 -inform der`)")
        }
        if requireKey, key == nil {
            throw .input(.malformedKey, "\(source) holds no private key; a proxy file must contain the proxy's key "
                             + "after its certificate")
        }
        return X509Credential(certificates: certs, privateKey: key)
    }

    /// PEM of the certificates, leaf first.
    public static func pem(_ certificate: Certificate) throws(AuthError) -> String {
        do {
            var s = DER.Serializer()
            try s.serialize(certificate)
            return PEM.encode(label: "CERTIFICATE", der: s.serializedBytes)
        } catch {
            throw AuthError(.internalError, "cannot encode a certificate: \(error)")
        }
    }

    // MARK: - Inspection

    /// The proxy type of `certificate`, or nil when it is not a proxy.
    public static func proxyType(of certificate: Certificate) -> (ProxyType, pathLength: Int?)? {
        if let ext = certificate.extensions.first(where: { $0.oid == GridOID.proxyCertInfo }) {
            let (policy, len) = parseProxyCertInfo(ext.value)
            switch policy {
            case GridOID.policyInheritAll: return (.rfc3820Impersonation, len)
            case GridOID.policyLimited: return (.rfc3820Limited, len)
            case GridOID.policyIndependent: return (.rfc3820Independent, len)
            default: return (.rfc3820Restricted, len)
            }
        }
        if certificate.extensions.contains(where: { $0.oid == GridOID.proxyCertInfoGT3 }) { return (.gt3, nil) }
        let subject = Array(certificate.subject)
        if let last = subject.last, subject.count == certificate.issuer.count + 1,
           Array(subject.dropLast()) == Array(certificate.issuer),
           let cn = last.first(where: { $0.type == .RDNAttributeType.commonName }).flatMap({ String($0.value) }),
           cn == "proxy" || cn == "limited proxy" {
            return (.legacy, nil)
        }
        return nil
    }

    /// ProxyCertInfo ::= SEQUENCE { pCPathLenConstraint INTEGER OPTIONAL, proxyPolicy SEQUENCE { policyLanguage OID,
    /// policy OCTET STRING OPTIONAL } }
    static func parseProxyCertInfo(_ value: ArraySlice<UInt8>) -> (ASN1ObjectIdentifier?, Int?) {
        guard let root = try? DER.parse(value), root.identifier == .sequence else { return (nil, nil) }
        var len: Int?
        var policy: ASN1ObjectIdentifier?
        for child in root.children {
            if child.identifier == .integer, let n = try? Int(derEncoded: child) { len = n }
            if child.identifier == .sequence, let first = child.children.first {
                policy = try? ASN1ObjectIdentifier(derEncoded: first)
            }
        }
        return (policy, len)
    }

    /// OpenSSL's one-line form, e.g. `/DC=org/DC=example/CN=Jane Doe`, as grid tools print DNs.
    public static func oneLine(_ name: DistinguishedName) -> String {
        name.map { rdn in
            "/" + rdn.map { attr -> String in
                let value = String(attr.value) ?? String(describing: attr.value)
                return "\(shortName(attr.type))=\(value)"
            }.joined(separator: "+")
        }.joined()
    }

    static func shortName(_ oid: ASN1ObjectIdentifier) -> String {
        switch oid {
        case .RDNAttributeType.commonName: "CN"
        case .RDNAttributeType.countryName: "C"
        case .RDNAttributeType.localityName: "L"
        case .RDNAttributeType.stateOrProvinceName: "ST"
        case .RDNAttributeType.organizationName: "O"
        case .RDNAttributeType.organizationalUnitName: "OU"
        case .RDNAttributeType.domainComponent: "DC"
        case .RDNAttributeType.emailAddress: "emailAddress"
        case .RDNAttributeType.streetAddress: "street"
        case [0, 9, 2342, 19_200_300, 100, 1, 1]: "UID"
        default: oid.description
        }
    }

    /// The facts `profile show` and `check` report.
    public func summary() -> X509Summary {
        let leaf = self.leaf
        let proxy = Self.proxyType(of: leaf)
        let identity = certificates.first(where: { Self.proxyType(of: $0) == nil }) ?? certificates.last ?? leaf
        let chainNotAfter = certificates.map(\.notValidAfter).min() ?? leaf.notValidAfter
        var voms: [VOMSAttributes] = []
        for cert in certificates {
            if let ext = cert.extensions.first(where: { $0.oid == GridOID.vomsACSequence }) {
                voms += VOMSParser.parse(extensionValue: ext.value)
            }
            if !voms.isEmpty { break }
        }
        var effective = chainNotAfter
        for ac in voms { effective = min(effective, ac.notAfter) }
        return X509Summary(
            subject: Self.oneLine(leaf.subject), issuer: Self.oneLine(leaf.issuer),
            identity: Self.oneLine(identity.subject), notBefore: leaf.notValidBefore, notAfter: leaf.notValidAfter,
            chainNotAfter: chainNotAfter, effectiveNotAfter: effective, proxyType: proxy?.0,
            proxyPathLength: proxy?.pathLength, publicKey: Self.describeKey(leaf.publicKey),
            chainLength: certificates.count, hasPrivateKey: privateKey != nil, voms: voms)
    }

    static func describeKey(_ key: Certificate.PublicKey) -> String {
        if let rsa = _RSA.Signing.PublicKey(key) { return "RSA \(rsa.keySizeInBits)" }
        if P256.Signing.PublicKey(key) != nil { return "ECDSA P-256" }
        if P384.Signing.PublicKey(key) != nil { return "ECDSA P-384" }
        if P521.Signing.PublicKey(key) != nil { return "ECDSA P-521" }
        if Curve25519.Signing.PublicKey(key) != nil { return "Ed25519" }
        return "unknown"
    }
}

/// Public facts about an X.509 credential.
public struct X509Summary: Codable, Sendable, Equatable {
    public var subject: String
    public var issuer: String
    /// The end-entity (user) certificate's subject: whose credential this is.
    public var identity: String
    public var notBefore: Date
    public var notAfter: Date
    /// Earliest expiry over the chain in the file.
    public var chainNotAfter: Date
    /// When the credential stops being useful: the chain's earliest expiry and every VOMS AC's.
    public var effectiveNotAfter: Date
    public var proxyType: ProxyType?
    public var proxyPathLength: Int?
    public var publicKey: String
    public var chainLength: Int
    public var hasPrivateKey: Bool
    public var voms: [VOMSAttributes]
}
