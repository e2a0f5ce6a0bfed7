import Crypto


import Foundation

/// Host keys pinned in an OpenSSH `known_hosts` file, matched strictly.
///
/// Supports plain and hashed (`|1|salt|hash`) host fields, `[host]:port` for non-standard ports, comma lists,
/// `*`/`?` wildcards and `!` negation. Stricter than libssh2's own matcher: a line without a port only matches
/// port 22, `@revoked` keys are refused, and `@cert-authority` lines are ignored (host certificates are not used).
public struct KnownHosts: Sendable {
    public struct Entry: Sendable, Equatable {
        public enum Marker: Sendable, Equatable { case none, revoked, certAuthority }
        public var marker: Marker
        /// The host field as written (comma-separated patterns, or one hashed name).
        public var hosts: String
        public var keyType: String
        public var key: [UInt8]
        public var line: Int
    }

    public private(set) var entries: [Entry] = []
    public let source: String

    public init(entries: [Entry] = [], source: String = "<memory>") {
        self.entries = entries
        self.source = source
    }

    /// Parses known_hosts text. Malformed lines are skipped, as OpenSSH does; they can never match.
    public init(text: String, source: String = "<memory>") {
        self.source = source
        var lineNo = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNo += 1
            var fields = raw.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let first = fields.first, !first.hasPrefix("#") else { continue }
            var marker = Entry.Marker.none
            if first.hasPrefix("@") {
                switch first {
                case "@revoked": marker = .revoked
                case "@cert-authority": marker = .certAuthority
                default: continue
                }
                fields.removeFirst()
            }
            guard fields.count >= 3, let key = Data(base64Encoded: fields[2]) else { continue }
            entries.append(Entry(marker: marker, hosts: fields[0], keyType: fields[1], key: Array(key), line: lineNo))
        }
    }

    /// Reads a known_hosts file. A missing file is an empty set (every host is then unknown).
    public static func load(path: String) throws(SSHError) -> KnownHosts {
        guard FileManager.default.fileExists(atPath: path) else { return KnownHosts(source: path) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SSHError(.knownHostsUnreadable, "cannot read known_hosts file \(path)", retryable: false)
        }
        return KnownHosts(text: String(decoding: data, as: UTF8.self), source: path)
    }

    /// The name under which OpenSSH records a host: `host` on port 22, `[host]:port` otherwise.
    public static func hostName(_ host: String, port: Int) -> String {
        port == 22 ? host : "[\(host)]:\(port)"
    }

    public enum Verdict: Sendable, Equatable {
        case trusted(line: Int)
        case unknown
        case changed(knownTypes: [String], lines: [Int])
        case revoked(line: Int)
    }

    /// Key types pinned for this host, most preferred first; used as libssh2's host-key method preference.
    public func knownKeyTypes(host: String, port: Int) -> [String] {
        let name = Self.hostName(host, port: port)
        let types = Set(entries.filter { $0.marker == .none && Self.matches($0.hosts, name) }.map(\.keyType))
        return HostKeyType.preferenceOrder.filter(types.contains)
    }

    public func verify(host: String, port: Int, keyType: String, key: [UInt8]) -> Verdict {
        if let r = entries.first(where: { $0.marker == .revoked && $0.key == key }) { return .revoked(line: r.line) }
        let name = Self.hostName(host, port: port)
        let forHost = entries.filter { $0.marker == .none && Self.matches($0.hosts, name) }
        if let hit = forHost.first(where: { $0.keyType == keyType && $0.key == key }) { return .trusted(line: hit.line) }
        if forHost.isEmpty { return .unknown }
        return .changed(knownTypes: Array(Set(forHost.map(\.keyType))).sorted(), lines: forHost.map(\.line))
    }

    /// A known_hosts line that would trust this key for this host.
    public static func line(host: String, port: Int, keyType: String, key: [UInt8]) -> String {
        "\(hostName(host, port: port)) \(keyType) \(Data(key).base64EncodedString())"
    }

    /// OpenSSH's `SHA256:` fingerprint of a public key blob (base64, unpadded).
    public static func fingerprint(_ key: [UInt8]) -> String {
        var b64 = Data(SHA256.hash(data: key)).base64EncodedString()
        while b64.hasSuffix("=") { b64.removeLast() }
        return "SHA256:" + b64
    }

    // MARK: matching

    static func matches(_ field: String, _ name: String) -> Bool {
        if field.hasPrefix("|1|") { return hashedMatches(field, name) }
        var positive = false
        for pattern in field.split(separator: ",") {
            if pattern.hasPrefix("!") {
                if glob(pattern.dropFirst().lowercased(), name.lowercased()) { return false }
            } else if glob(pattern.lowercased(), name.lowercased()) {
                positive = true
            }
        }
        return positive
    }

    static func hashedMatches(_ field: String, _ name: String) -> Bool {
        let parts = field.split(separator: "|", omittingEmptySubsequences: false)
        // "", "1", salt, hash
        guard parts.count == 4, let salt = Data(base64Encoded: String(parts[2])),
              let hash = Data(base64Encoded: String(parts[3]))
        else { return false }
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Data(name.lowercased().utf8), using: SymmetricKey(data: salt))
        return Data(mac) == hash
    }

    /// `*` and `?` wildcard match over UTF-8 bytes.
    static func glob(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.utf8), t = Array(text.utf8)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == UInt8(ascii: "?") || p[pi] == t[ti] {
                pi += 1; ti += 1
            } else if pi < p.count, p[pi] == UInt8(ascii: "*") {
                star = pi; mark = ti; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}

/// Host key algorithms libssh2 1.10 can verify, and their libssh2 type numbers.
enum HostKeyType {
    /// Preference when several are pinned: Ed25519 first (OpenSSH's own preference), RSA (SHA-1 signatures) last.
    static let preferenceOrder = [
        "ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa", "ssh-dss",
    ]
    /// Offered to a host we do not know yet, only to learn and show its fingerprint; never trusted.
    static let discovery = "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,ssh-rsa"

    static func name(libssh2Type: Int32) -> String? {
        switch libssh2Type {
        case 1: "ssh-rsa"
        case 2: "ssh-dss"
        case 3: "ecdsa-sha2-nistp256"
        case 4: "ecdsa-sha2-nistp384"
        case 5: "ecdsa-sha2-nistp521"
        case 6: "ssh-ed25519"
        default: nil
        }
    }
}
