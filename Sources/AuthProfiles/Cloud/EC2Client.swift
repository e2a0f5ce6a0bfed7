public import Foundation

/// The smallest EC2 Query API client: enough to prove a credential works (`DescribeRegions`, SigV4-signed).
public struct EC2Client: Sendable {
    public var endpoint: URL
    public var region: String
    public var credentials: SigV4.Credentials

    public init(settings: EC2Settings, secret: Secret, sessionToken: Secret?) throws(AuthError) {
        guard let url = URL(string: settings.endpointURL), url.scheme == "http" || url.scheme == "https",
              url.host != nil
        else {
            throw .input(.badValue, "EC2 endpoint '\(settings.endpointURL)' is not an http(s) URL; e.g. "
                             + "https://ec2.us-east-1.amazonaws.com/")
        }
        self.endpoint = url
        self.region = settings.region
        self.credentials = SigV4.Credentials(accessKeyID: settings.accessKeyID, secretAccessKey: secret,
                                             sessionToken: sessionToken)
    }

    /// Region names the credential may see; throws `cloudAuthFailed` when the service rejects the credential.
    public func describeRegions(now: Date = Date(), timeout: TimeInterval = 20) async throws(AuthError) -> [String] {
        let body = Array("Action=DescribeRegions&Version=2016-11-15".utf8)
        let request = SigV4.Request(
            method: "POST", url: endpoint,
            headers: ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"], body: body)
        let headers = SigV4.sign(request, credentials: credentials, region: region, service: "ec2", date: now)
        let response = try await CloudHTTP.send(method: "POST", url: endpoint, headers: headers, body: body,
                                                timeout: timeout)
        let text = String(decoding: response.body, as: UTF8.self)
        guard response.status == 200 else {
            let code = Self.element("Code", in: text) ?? "HTTP \(response.status)"
            let message = Self.element("Message", in: text) ?? String(text.prefix(200))
            switch code {
            case "AuthFailure", "SignatureDoesNotMatch", "InvalidClientTokenId", "IncompleteSignature",
                 "InvalidAccessKeyId", "ExpiredToken", "RequestExpired":
                throw AuthError(.cloudAuthFailed, "EC2 at \(endpoint.absoluteString) rejected the credential "
                                    + "(\(code): \(message)). Fix: check the access key id and secret; re-add the "
                                    + "profile with the right secret on --secret-stdin")
            case "UnauthorizedOperation", "AccessDenied":
                throw AuthError(.cloudAuthFailed, "EC2 at \(endpoint.absoluteString) accepted the credential but "
                                    + "refused ec2:DescribeRegions (\(code): \(message)). Fix: grant the key an "
                                    + "ec2:Describe* policy")
            default:
                throw AuthError(.cloudResponse, "EC2 at \(endpoint.absoluteString) answered \(code): \(message)")
            }
        }
        return Self.elements("regionName", in: text)
    }

    static func element(_ name: String, in text: String) -> String? { elements(name, in: text).first }

    static func elements(_ name: String, in text: String) -> [String] {
        var out: [String] = []
        var rest = Substring(text)
        while let open = rest.range(of: "<\(name)>"), let close = rest.range(of: "</\(name)>", range: open.upperBound..<rest.endIndex) {
            out.append(String(rest[open.upperBound..<close.lowerBound]))
            rest = rest[close.upperBound...]
        }
        return out
    }
}
