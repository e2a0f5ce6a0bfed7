public import Foundation
public import X509
import SwiftASN1

/// Checks an X.509 credential: the chain in the file (each certificate signed by the next, proxy naming, validity,
/// the key matching the leaf), optionally the end-entity certificate against trusted CAs, and time left.
public enum X509Checker {
    public struct ChainResult: Sendable {
        public var problems: [String]
        /// nil when no CA directory was configured.
        public var caVerified: Bool?
        public var notes: [String]
    }

    public static func verifyChain(_ cred: X509Credential, caDirectory: String?, now: Date) async -> ChainResult {
        var problems: [String] = []
        var notes: [String] = []
        let certs = cred.certificates
        for (i, cert) in certs.enumerated() {
            let name = X509Credential.oneLine(cert.subject)
            if cert.notValidBefore > now.addingTimeInterval(300) {
                problems.append("certificate \(name) is not valid before \(DurationText.date(cert.notValidBefore))")
            }
            if cert.notValidAfter <= now {
                problems.append("certificate \(name) \(DurationText.expiry(cert.notValidAfter, now: now))")
            }
            guard i + 1 < certs.count else { continue }
            let issuer = certs[i + 1]
            if cert.issuer != issuer.subject {
                problems.append("certificate \(name) was issued by \(X509Credential.oneLine(cert.issuer)), but the next "
                                    + "certificate in the file is \(X509Credential.oneLine(issuer.subject))")
            } else if !issuer.publicKey.isValidSignature(cert.signature, for: cert) {
                problems.append("the signature on \(name) does not verify with its issuer's key")
            }
            if X509Credential.proxyType(of: cert) != nil {
                var expected = Array(cert.issuer)
                if let last = Array(cert.subject).last { expected.append(last) }
                if Array(cert.subject) != expected || Array(cert.subject).last?
                    .contains(where: { $0.type == .RDNAttributeType.commonName }) != true {
                    problems.append("proxy \(name) is not named issuer + one CN, as RFC 3820 requires")
                }
            }
        }
        if let key = cred.privateKey, key.publicKey != cred.leaf.publicKey {
            problems.append("the private key in the file does not belong to its first certificate")
        }
        var caVerified: Bool?
        if let caDirectory {
            let eecIndex = certs.firstIndex(where: { X509Credential.proxyType(of: $0) == nil })
            if let eecIndex {
                let roots = loadCertificates(directory: caDirectory)
                if roots.isEmpty {
                    problems.append("no CA certificates found in \(caDirectory)")
                    caVerified = false
                } else {
                    var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
                        RFC5280Policy()
                    }
                    let result = await verifier.validate(
                        leaf: certs[eecIndex],
                        intermediates: CertificateStore(Array(certs[(eecIndex + 1)...])))
                    switch result {
                    case .validCertificate(let chain):
                        caVerified = true
                        notes.append("chain verified to CA \(X509Credential.oneLine(chain.last!.subject))")
                    case .couldNotValidate(let failures):
                        caVerified = false
                        let why = failures.first.map { "\($0.policyFailureReason)" } ?? "no path to a trusted CA"
                        problems.append("the user certificate does not verify against the CAs in \(caDirectory): \(why)")
                    }
                }
            } else {
                problems.append("the file holds only proxy certificates; the user certificate is missing from the chain")
                caVerified = false
            }
        } else {
            notes.append("CA trust not checked (no --ca-dir)")
        }
        return ChainResult(problems: problems, caVerified: caVerified, notes: notes)
    }

    /// PEM certificates in `directory` (`<hash>.0`, `*.pem`, `*.crt`), as in /etc/grid-security/certificates.
    public static func loadCertificates(directory: String) -> [Certificate] {
        let items = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var out: [Certificate] = []
        for item in items.sorted() {
            let isHash = item.range(of: #"^[0-9a-f]{8}\.[0-9]+$"#, options: .regularExpression) != nil
            guard isHash || item.hasSuffix(".pem") || item.hasSuffix(".crt") else { continue }
            guard let data = FileManager.default.contents(atPath: "\(directory)/\(item)"),
                  let blocks = try? PEM.blocks(Array(data), source: item)
            else { continue }
            for b in blocks where b.label == "CERTIFICATE" {
                if let c = try? Certificate(derEncoded: b.der), !out.contains(c) { out.append(c) }
            }
        }
        return out
    }
}

/// Picking a credential among several: never an expired one.
public enum CredentialSelection {
    public struct Candidate: Sendable, Equatable {
        public var name: String
        public var notAfter: Date
        public init(name: String, notAfter: Date) {
            self.name = name
            self.notAfter = notAfter
        }
    }

    /// The candidate with at least `required` seconds left; among those, the one that lasts longest. Throws
    /// `noUsableCredential` listing every candidate with "EXPIRED at …" or "expires in …".
    public static func select(_ candidates: [Candidate], required: TimeInterval, now: Date) throws(AuthError)
        -> Candidate
    {
        let usable = candidates.filter { $0.notAfter.timeIntervalSince(now) >= required && $0.notAfter > now }
        if let best = usable.max(by: { $0.notAfter < $1.notAfter }) { return best }
        let list = candidates.map { "\($0.name) \(DurationText.expiry($0.notAfter, now: now))" }
        throw AuthError(.noUsableCredential,
                        "no usable credential (need at least \(DurationText.format(seconds: Int(required))) left): "
                            + (list.isEmpty ? "none configured" : list.joined(separator: "; "))
                            + ". Fix: renew them (apf-agent profile check NAME) or lower the requirement")
    }
}
