public import AuthProfiles
import Foundation

/// Reads the (unencrypted) public part of a private key file to learn its algorithm, so errors can say
/// "RSA keys are refused" instead of libssh2's generic "Username/PublicKey combination invalid".
public enum PrivateKeyInfo {
    public static func keyType(of key: Secret) -> String? {
        key.withBytes { bytes -> String? in
            let text = String(decoding: bytes, as: UTF8.self)
            if text.contains("BEGIN RSA PRIVATE KEY") { return "ssh-rsa" }
            if text.contains("BEGIN EC PRIVATE KEY") { return "ecdsa" }
            if text.contains("BEGIN DSA PRIVATE KEY") { return "ssh-dss" }
            guard text.contains("BEGIN OPENSSH PRIVATE KEY") else { return nil }
            let body = text.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
            guard let blob = Data(base64Encoded: body) else { return nil }
            var r = Reader(bytes: [UInt8](blob))
            guard r.skip("openssh-key-v1\0".utf8.count), r.string() != nil, r.string() != nil, r.string() != nil,
                  r.uint32() != nil, let pub = r.string()
            else { return nil }
            var p = Reader(bytes: pub)
            return p.string().map { String(decoding: $0, as: UTF8.self) }
        }
    }

    private struct Reader {
        let bytes: [UInt8]
        var pos = 0
        mutating func skip(_ n: Int) -> Bool {
            guard pos + n <= bytes.count else { return false }
            pos += n
            return true
        }
        mutating func uint32() -> UInt32? {
            guard pos + 4 <= bytes.count else { return nil }
            defer { pos += 4 }
            return bytes[pos..<pos + 4].reduce(0) { $0 << 8 | UInt32($1) }
        }
        mutating func string() -> [UInt8]? {
            guard let n = uint32(), pos + Int(n) <= bytes.count else { return nil }
            defer { pos += Int(n) }
            return Array(bytes[pos..<pos + Int(n)])
        }
    }
}
