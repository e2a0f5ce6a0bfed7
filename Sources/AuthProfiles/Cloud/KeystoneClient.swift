public import Foundation

/// Keystone v3 authentication with an application credential (`POST /v3/auth/tokens`), to prove an OpenStack
/// profile works. The token itself is never kept or shown.
public struct KeystoneClient: Sendable {
    public struct TokenInfo: Codable, Sendable, Equatable {
        public var expiresAt: Date?
        public var project: String?
        public var projectID: String?
        public var user: String?
        public var methods: [String]
        /// Catalog service types, with the regions of the profile's interface.
        public var services: [String: [String]]
    }

    public var tokensURL: URL
    public var settings: OpenStackSettings
    public var secret: Secret

    public init(settings: OpenStackSettings, secret: Secret) throws(AuthError) {
        var base = settings.authURL
        while base.hasSuffix("/") { base.removeLast() }
        if !base.hasSuffix("/v3") { base += "/v3" }
        guard let url = URL(string: base + "/auth/tokens"), url.scheme == "http" || url.scheme == "https",
              url.host != nil
        else {
            throw .input(.badValue, "OpenStack auth URL '\(settings.authURL)' is not an http(s) URL; e.g. "
                             + "https://keystone.example.org:5000/v3")
        }
        self.tokensURL = url
        self.settings = settings
        self.secret = secret
    }

    public func authenticate(timeout: TimeInterval = 20) async throws(AuthError) -> TokenInfo {
        let body = secret.withBytes { s -> [UInt8] in
            let object: [String: Any] = [
                "auth": ["identity": ["methods": ["application_credential"],
                                      "application_credential": ["id": settings.applicationCredentialID,
                                                                 "secret": String(decoding: s, as: UTF8.self)]]],
            ]
            return Array((try? JSONSerialization.data(withJSONObject: object)) ?? Data())
        }
        let response = try await CloudHTTP.send(
            method: "POST", url: tokensURL, headers: ["Content-Type": "application/json", "Accept": "application/json"],
            body: body, timeout: timeout)
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
        guard response.status == 201 || response.status == 200 else {
            let err = json?["error"] as? [String: Any]
            let message = (err?["message"] as? String) ?? String(decoding: response.body.prefix(200), as: UTF8.self)
            if response.status == 401 || response.status == 403 {
                throw AuthError(.cloudAuthFailed, "Keystone at \(tokensURL.absoluteString) refused application "
                                    + "credential \(settings.applicationCredentialID) (HTTP \(response.status): "
                                    + "\(message)). Fix: check the credential id and secret (re-add the profile), "
                                    + "and that the credential has not expired or been deleted")
            }
            if response.status == 404 {
                throw AuthError(.cloudResponse, "\(tokensURL.absoluteString) answered 404: is this a Keystone v3 "
                                    + "endpoint? Fix: --auth-url must point at Keystone v3 (…/v3)")
            }
            throw AuthError(.cloudResponse, "Keystone at \(tokensURL.absoluteString) answered HTTP "
                                + "\(response.status): \(message)")
        }
        guard response.header("X-Subject-Token") != nil, let token = json?["token"] as? [String: Any] else {
            throw AuthError(.cloudResponse, "Keystone at \(tokensURL.absoluteString) answered \(response.status) "
                                + "without a token; is it Keystone v3?")
        }
        return Self.tokenInfo(token, interface: settings.interface)
    }

    static func tokenInfo(_ token: [String: Any], interface: String) -> TokenInfo {
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let isoPlain = ISO8601DateFormatter()
        let expires = (token["expires_at"] as? String).flatMap { iso.date(from: $0) ?? isoPlain.date(from: $0) }
        let project = token["project"] as? [String: Any]
        let user = token["user"] as? [String: Any]
        var services: [String: [String]] = [:]
        for entry in token["catalog"] as? [[String: Any]] ?? [] {
            guard let type = entry["type"] as? String else { continue }
            let regions = (entry["endpoints"] as? [[String: Any]] ?? [])
                .filter { ($0["interface"] as? String) == interface }
                .compactMap { ($0["region"] as? String) ?? ($0["region_id"] as? String) }
            services[type] = Array(Set(regions)).sorted()
        }
        return TokenInfo(expiresAt: expires, project: project?["name"] as? String,
                         projectID: project?["id"] as? String, user: user?["name"] as? String,
                         methods: token["methods"] as? [String] ?? [], services: services)
    }
}
