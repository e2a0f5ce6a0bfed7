public import Foundation
import Crypto

/// AWS Signature Version 4 (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html).
///
/// Pure: the caller passes the time. The secret key is used only inside HMAC; the result holds the signature, never
/// the secret.
public enum SigV4 {
    public struct Request: Sendable {
        public var method: String
        public var url: URL
        /// Headers to sign (names as sent); `host` and `x-amz-date` are added.
        public var headers: [String: String]
        public var body: [UInt8]

        public init(method: String, url: URL, headers: [String: String] = [:], body: [UInt8] = []) {
            self.method = method
            self.url = url
            self.headers = headers
            self.body = body
        }
    }

    public struct Credentials: Sendable {
        public var accessKeyID: String
        public var secretAccessKey: Secret
        public var sessionToken: Secret?

        public init(accessKeyID: String, secretAccessKey: Secret, sessionToken: Secret? = nil) {
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }
    }

    /// Headers to send: the request's own plus `Host`, `X-Amz-Date`, `X-Amz-Security-Token` (with a session token)
    /// and `Authorization`.
    public static func sign(_ request: Request, credentials: Credentials, region: String, service: String,
                            date: Date) -> [String: String] {
        let amzDate = timestamp(date)
        let day = String(amzDate.prefix(8))
        var headers = request.headers
        headers["Host"] = hostHeader(request.url)
        headers["X-Amz-Date"] = amzDate
        if let token = credentials.sessionToken {
            headers["X-Amz-Security-Token"] = token.withBytes { String(decoding: $0, as: UTF8.self) }
        }
        let canonical = canonicalRequest(request, headers: headers)
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(hex(SHA256.hash(data: Array(canonical.request.utf8))))"
        let signingKey = credentials.secretAccessKey.withBytes { secret -> SymmetricKey in
            var k = SymmetricKey(data: Array("AWS4".utf8) + secret)
            for part in [day, region, service, "aws4_request"] {
                k = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: k)))
            }
            return k
        }
        let signature = hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: signingKey))
        headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), "
            + "SignedHeaders=\(canonical.signedHeaders), Signature=\(signature)"
        return headers
    }

    /// The canonical request and the signed-header list (exposed for tests against AWS's published examples).
    public static func canonicalRequest(_ request: Request, headers: [String: String]) -> (request: String, signedHeaders: String) {
        let comps = URLComponents(url: request.url, resolvingAgainstBaseURL: false)
        var path = comps?.percentEncodedPath ?? "/"
        if path.isEmpty { path = "/" }
        var pairs: [(String, String)] = []
        for item in comps?.percentEncodedQueryItems ?? [] {
            pairs.append((encode(decode(item.name)), encode(decode(item.value ?? ""))))
        }
        pairs.sort { a, b in a.0 == b.0 ? a.1 < b.1 : a.0 < b.0 }
        let query = pairs.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
        var lowered: [(String, String)] = []
        for (k, v) in headers {
            let value = v.trimmingCharacters(in: .whitespaces)
                .replacingOccurrences(of: #"\s+"#, with: " ", options: .regularExpression)
            lowered.append((k.lowercased(), value))
        }
        lowered.sort { a, b in a.0 < b.0 }
        let canonicalHeaders = lowered.map { "\($0.0):\($0.1)\n" }.joined()
        let signed = lowered.map(\.0).joined(separator: ";")
        let payloadHash = hex(SHA256.hash(data: request.body))
        let text = [request.method, path, query, canonicalHeaders, signed, payloadHash].joined(separator: "\n")
        return (text, signed)
    }

    static func hostHeader(_ url: URL) -> String {
        let host = url.host ?? ""
        let h = host.contains(":") ? "[\(host)]" : host
        guard let port = url.port else { return h }
        let scheme = url.scheme?.lowercased()
        if (scheme == "https" && port == 443) || (scheme == "http" && port == 80) { return h }
        return "\(h):\(port)"
    }

    static func timestamp(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.string(from: date)
    }

    /// RFC 3986 unreserved characters stay; everything else is %XX (upper case), as SigV4 requires.
    public static func encode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                 UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(b)))
            default:
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }

    static func decode(_ s: String) -> String { s.removingPercentEncoding ?? s }

    static func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}
