public import Foundation
public import X509
import SwiftASN1
import _CryptoExtras

/// Generates RFC 3820 proxy certificates natively (no voms-proxy-init or grid-proxy-init needed).
///
/// The proxy: a fresh RSA key; subject = issuer subject + `CN=<serial>`; issuer = the signing certificate's subject;
/// validity from 5 minutes ago (clock skew) to `lifetime` later, never beyond the signer's expiry; a critical
/// ProxyCertInfo extension (1.3.6.1.5.5.7.1.14) with the inheritAll (impersonation) policy; a critical KeyUsage of
/// digitalSignature and keyEncipherment. The output file is the Globus layout: proxy certificate, proxy key, then the
/// signer's chain.
public enum ProxyGenerator {
    public struct Output: Sendable {
        /// The proxy file: certificate, key (PKCS#1 PEM), signer chain.
        public var pem: Secret
        public var certificate: Certificate
    }

    /// - Parameters:
    ///   - signerChain: the signing certificate (user certificate, or a proxy) first, then the rest of its chain.
    ///   - signingKey: the private key of `signerChain[0]`.
    ///   - pathLength: the proxy's pCPathLenConstraint (nil = unlimited).
    public static func generate(
        signerChain: [Certificate], signingKey: Certificate.PrivateKey, lifetime: TimeInterval,
        now: Date = Date(), keyBits: Int = 2048, pathLength: Int? = nil
    ) throws(AuthError) -> Output {
        guard let signer = signerChain.first else {
            throw AuthError(.internalError, "no signing certificate for the proxy")
        }
        guard signer.publicKey == signingKey.publicKey else {
            throw .input(.malformedKey, "the user key does not belong to the user certificate (their public keys "
                             + "differ). Fix: give the matching --cert and --key")
        }
        guard signer.notValidAfter > now else {
            throw .input(.expired, "the user certificate \(X509Credential.oneLine(signer.subject)) "
                             + "\(DurationText.expiry(signer.notValidAfter, now: now)); no proxy can be made from it. "
                             + "Fix: renew the user certificate with your CA")
        }
        do {
            let size: _RSA.Signing.KeySize = keyBits >= 4096 ? .bits4096 : (keyBits >= 3072 ? .bits3072 : .bits2048)
            let rsa = try _RSA.Signing.PrivateKey(keySize: size)
            let serialValue = UInt64.random(in: 1...UInt64(Int64.max))
            var subject = signer.subject
            subject.append(RelativeDistinguishedName(
                RelativeDistinguishedName.Attribute(type: .RDNAttributeType.commonName, utf8String: String(serialValue))))
            let notBefore = now.addingTimeInterval(-300)
            let notAfter = min(now.addingTimeInterval(lifetime), signer.notValidAfter)
            var ext = try Certificate.Extensions {
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
            }
            try ext.append(Certificate.Extension(oid: GridOID.proxyCertInfo, critical: true,
                                                 value: try proxyCertInfo(pathLength: pathLength)[...]))
            let cert = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(serialValue),
                publicKey: Certificate.PublicKey(rsa.publicKey), notValidBefore: notBefore, notValidAfter: notAfter,
                issuer: signer.subject, subject: subject, signatureAlgorithm: signingKey.defaultSignatureAlgorithmForProxy,
                extensions: ext, issuerPrivateKey: signingKey)
            var pem = try X509Credential.pem(cert)
            pem += rsa.pemRepresentation.hasSuffix("\n") ? rsa.pemRepresentation : rsa.pemRepresentation + "\n"
            for c in signerChain { pem += try X509Credential.pem(c) }
            return Output(pem: Secret(pem), certificate: cert)
        } catch let e as AuthError {
            throw e
        } catch {
            throw AuthError(.internalError, "proxy generation failed: \(error)")
        }
    }

    /// DER of ProxyCertInfo with the inheritAll policy.
    static func proxyCertInfo(pathLength: Int?) throws -> [UInt8] {
        var s = DER.Serializer()
        try s.appendConstructedNode(identifier: .sequence) { c in
            if let pathLength { try c.serialize(pathLength) }
            try c.appendConstructedNode(identifier: .sequence) { p in
                try p.serialize(GridOID.policyInheritAll)
            }
        }
        return s.serializedBytes
    }
}

extension Certificate.PrivateKey {
    /// SHA-256 based signatures for every key type (the library's default for RSA is SHA-256 too).
    var defaultSignatureAlgorithmForProxy: Certificate.SignatureAlgorithm {
        let algorithms = supportedSignatureAlgorithms
        for preferred: Certificate.SignatureAlgorithm in [.sha256WithRSAEncryption, .ecdsaWithSHA256, .ecdsaWithSHA384,
                                                          .ecdsaWithSHA512, .ed25519]
        where algorithms.contains(preferred) {
            return preferred
        }
        return algorithms.first ?? .sha256WithRSAEncryption
    }
}
