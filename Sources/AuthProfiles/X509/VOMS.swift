public import Foundation
import SwiftASN1
import X509

/// One VOMS attribute certificate (RFC 3281 AC issued by a VOMS server), as carried in a proxy.
public struct VOMSAttributes: Codable, Sendable, Equatable {
    /// The VO, from the policy authority `vo://host:port`.
    public var vo: String?
    /// `host:port` of the VOMS server.
    public var server: String?
    /// The AC issuer (the VOMS server's DN), OpenSSL one-line form.
    public var issuer: String?
    /// Fully qualified attribute names, e.g. `/atlas/Role=production/Capability=NULL`.
    public var fqans: [String]
    public var notBefore: Date
    public var notAfter: Date
}

/// Reads VOMS attribute certificates from the proxy extension 1.3.6.1.4.1.8005.100.100.5.
///
/// ```
/// ACSeq ::= SEQUENCE OF AttributeCertificate          (VOMS wraps it in one more SEQUENCE)
/// AttributeCertificate ::= SEQUENCE { acinfo, signatureAlgorithm, signatureValue }
/// AttributeCertificateInfo ::= SEQUENCE { version, holder, issuer, signature, serialNumber,
///     attrCertValidityPeriod SEQUENCE { notBefore GeneralizedTime, notAfter GeneralizedTime },
///     attributes SEQUENCE OF Attribute, issuerUniqueID OPTIONAL, extensions OPTIONAL }
/// Attribute ::= SEQUENCE { type OID, values SET OF IetfAttrSyntax }
/// IetfAttrSyntax ::= SEQUENCE { policyAuthority [0] GeneralNames OPTIONAL, values SEQUENCE OF OCTET STRING … }
/// ```
enum VOMSParser {
    static func parse(extensionValue: ArraySlice<UInt8>) -> [VOMSAttributes] {
        guard let root = try? DER.parse(extensionValue) else { return [] }
        var out: [VOMSAttributes] = []
        collectACs(root, depth: 0, into: &out)
        return out
    }

    /// Finds AttributeCertificate SEQUENCEs in the (possibly doubly wrapped) sequence.
    private static func collectACs(_ node: ASN1Node, depth: Int, into out: inout [VOMSAttributes]) {
        guard node.identifier == .sequence, depth < 4 else { return }
        if let ac = attributeCertificate(node) {
            out.append(ac)
            return
        }
        for child in node.children { collectACs(child, depth: depth + 1, into: &out) }
    }

    private static func attributeCertificate(_ node: ASN1Node) -> VOMSAttributes? {
        let parts = node.children
        guard parts.count == 3, parts[0].identifier == .sequence, parts[2].identifier == .bitString else { return nil }
        let info = parts[0].children
        guard info.count >= 7, info[0].identifier == .integer else { return nil }
        let validity = info[5].children
        guard validity.count == 2, let nb = try? GeneralizedTime(derEncoded: validity[0]),
              let na = try? GeneralizedTime(derEncoded: validity[1])
        else { return nil }
        var result = VOMSAttributes(vo: nil, server: nil, issuer: issuerName(info[2]), fqans: [],
                                    notBefore: ASN1Date.date(nb), notAfter: ASN1Date.date(na))
        for attribute in info[6].children {
            let a = attribute.children
            guard a.count == 2, let oid = try? ASN1ObjectIdentifier(derEncoded: a[0]),
                  oid == GridOID.vomsFQANAttribute
            else { continue }
            for syntax in a[1].children {
                for field in syntax.children {
                    if field.isContext(0) {
                        // GeneralNames: uniformResourceIdentifier [6] "vo://host:port"
                        for name in field.children where name.isContext(6) {
                            if let b = name.primitiveBytes {
                                let uri = String(decoding: b, as: UTF8.self)
                                if let r = uri.range(of: "://") {
                                    result.vo = String(uri[..<r.lowerBound])
                                    result.server = String(uri[r.upperBound...])
                                } else {
                                    result.vo = uri
                                }
                            }
                        }
                    } else if field.identifier == .sequence {
                        for value in field.children {
                            if let b = value.primitiveBytes { result.fqans.append(String(decoding: b, as: UTF8.self)) }
                        }
                    }
                }
            }
        }
        return result
    }

    /// AttCertIssuer: v2Form [0] { issuerName GeneralNames } or v1Form GeneralNames; takes the first directoryName.
    private static func issuerName(_ node: ASN1Node) -> String? {
        func find(_ n: ASN1Node, depth: Int) -> String? {
            if n.isContext(4), let inner = n.children.first,
               let dn = try? DistinguishedName(derEncoded: inner) {
                return X509Credential.oneLine(dn)
            }
            guard depth < 4 else { return nil }
            for c in n.children { if let s = find(c, depth: depth + 1) { return s } }
            return nil
        }
        return find(node, depth: 0)
    }
}
