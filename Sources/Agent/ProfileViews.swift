public import AuthProfiles

/// What `profile show` prints: the stored metadata, who uses it, and (for x509) the current proxy's public facts.
public struct ProfileView: Codable, Sendable {
    public var profile: Profile
    public var usedBy: [String]
    public var proxy: X509Summary?
    public var proxyProblem: String?

    public static func load(_ name: String, store: ProfileStore) throws(AuthError) -> ProfileView {
        let profile = try store.profile(name)
        var view = ProfileView(profile: profile, usedBy: try store.users(ofProfile: name))
        if profile.kind == .x509 {
            do throws(AuthError) {
                if let cred = try store.proxy(of: profile) { view.proxy = cred.summary() } else {
                    view.proxyProblem = "no proxy yet (run: apf-agent profile check \(name))"
                }
            } catch {
                view.proxyProblem = error.message
            }
        }
        return view
    }
}
