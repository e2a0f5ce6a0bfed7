import Foundation
import Crypto
import _CryptoExtras

/// An SSH public key: its algorithm name and wire blob.
public struct SSHPublicKey: Sendable, Equatable {
    public let keyType: String
    public let blob: [UInt8]

    public init(blob: [UInt8]) throws(AuthError) {
        var r = SSHWireReader(blob)
        guard let type = r.text(), !type.isEmpty else {
            throw .input(.malformedKey, "the public key blob is malformed")
        }
        self.keyType = type
        self.blob = blob
    }

    /// OpenSSH's `SHA256:` fingerprint (base64, unpadded), as `ssh-keygen -l` prints it.
    public var fingerprint: String {
        var b64 = Data(SHA256.hash(data: blob)).base64EncodedString()
        while b64.hasSuffix("=") { b64.removeLast() }
        return "SHA256:" + b64
    }

    public func authorizedKeysLine(comment: String?) -> String {
        let base = "\(keyType) \(Data(blob).base64EncodedString())"
        guard let comment, !comment.isEmpty else { return base }
        return base + " " + comment
    }

    /// Whether libssh2 1.10 can authenticate with this key type against a stock OpenSSH ≥ 8.8 server.
    public var rsaSHA1Only: Bool { keyType == "ssh-rsa" }
}

/// What a private key file holds, learned without writing it anywhere.
public struct SSHPrivateKeyInfo: Sendable {
    public enum Format: String, Sendable { case openssh, pem }
    public var publicKey: SSHPublicKey
    public var encrypted: Bool
    public var format: Format
    public var comment: String?
}

/// OpenSSH private keys: reading (OpenSSH format, plain or encrypted with bcrypt + AES; PEM/PKCS#8 RSA, ECDSA and
/// Ed25519, including legacy `Proc-Type: 4,ENCRYPTED` PEM) and generating Ed25519 keys in the OpenSSH format that
/// libssh2 1.10 reads.
public enum SSHPrivateKey {
    static let magic = Array("openssh-key-v1".utf8) + [0]

    // MARK: Generation

    /// A new Ed25519 key pair in OpenSSH format; with a passphrase the private part is encrypted with aes256-ctr under
    /// a bcrypt_pbkdf key (`rounds` as `ssh-keygen -a`, default 16), exactly what `ssh-keygen -t ed25519` writes.
    public static func generateEd25519(comment: String, passphrase: Secret?, rounds: Int = 16)
        -> (privateKey: Secret, publicKey: SSHPublicKey)
    {
        let key = Curve25519.Signing.PrivateKey()
        let pub = Array(key.publicKey.rawRepresentation)
        var pubBlob = SSHWireWriter()
        pubBlob.string("ssh-ed25519")
        pubBlob.string(pub)

        var priv = SSHWireWriter()
        let check = UInt32.random(in: 0...UInt32.max)
        priv.uint32(check)
        priv.uint32(check)
        priv.string("ssh-ed25519")
        priv.string(pub)
        priv.string(Array(key.rawRepresentation) + pub)
        priv.string(comment)

        var file = SSHWireWriter()
        file.bytes = magic
        var section = priv.bytes
        if let passphrase, !passphrase.isEmpty {
            let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
            pad(&section, blockSize: 16)
            let material = passphrase.withBytes { BcryptPBKDF.derive(password: $0, salt: salt, count: 48, rounds: rounds) }
            // Force-try: a 32-byte key and 16-byte counter are always valid for AES-CTR.
            let encrypted = try! AES._CTR.encrypt(section, using: SymmetricKey(data: material[0..<32]),
                                                  nonce: AES._CTR.Nonce(nonceBytes: material[32..<48]))
            var kdf = SSHWireWriter()
            kdf.string(salt)
            kdf.uint32(UInt32(rounds))
            file.string("aes256-ctr")
            file.string("bcrypt")
            file.string(kdf.bytes)
            section = Array(encrypted)
        } else {
            pad(&section, blockSize: 8)
            file.string("none")
            file.string("none")
            file.string([UInt8]())
        }
        file.uint32(1)
        file.string(pubBlob.bytes)
        file.string(section)
        let pem = armor(file.bytes)
        // Force-try: the blob was built above with a non-empty type.
        return (Secret(pem), try! SSHPublicKey(blob: pubBlob.bytes))
    }

    private static func pad(_ bytes: inout [UInt8], blockSize: Int) {
        var i: UInt8 = 1
        while bytes.count % blockSize != 0 {
            bytes.append(i)
            i &+= 1
        }
    }

    /// OpenSSH armor: base64 wrapped at 70 columns.
    static func armor(_ der: [UInt8]) -> String {
        PEM.encode(label: "OPENSSH PRIVATE KEY", der: der, lineLength: 70)
    }

    // MARK: Reading

    /// Reads a private key, decrypting it with `passphrase` when it is encrypted (which also proves the passphrase).
    /// `source` names the key in messages (a path or profile), never its contents.
    public static func inspect(_ key: Secret, passphrase: Secret?, source: String) throws(AuthError) -> SSHPrivateKeyInfo {
        let blocks = try key.withBytes { (b: [UInt8]) throws(AuthError) in try PEM.blocks(b, source: source) }
        guard let block = blocks.first else {
            throw .input(.malformedKey, "\(source) holds no PEM-armored private key (expected '-----BEGIN OPENSSH "
                             + "PRIVATE KEY-----' or a PEM key). Fix: give the private key file, not the .pub")
        }
        switch block.label {
        case "OPENSSH PRIVATE KEY":
            return try readOpenSSH(block.der, passphrase: passphrase, source: source)
        case "RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY":
            var der = block.der
            var encrypted = false
            if block.headers["Proc-Type"]?.contains("ENCRYPTED") == true {
                der = try decryptLegacyPEM(block, passphrase: passphrase, source: source)
                encrypted = true
            }
            let pub = try publicKeyFromDER(label: block.label, der: der, source: source, encrypted: encrypted)
            return SSHPrivateKeyInfo(publicKey: pub, encrypted: encrypted, format: .pem, comment: nil)
        case "ENCRYPTED PRIVATE KEY":
            throw .input(.unsupportedKey, "\(source) is an encrypted PKCS#8 key, which is not supported. Fix: convert "
                             + "it to the OpenSSH format with `ssh-keygen -p -f \(source)` (keeps the passphrase)")
        case "DSA PRIVATE KEY":
            throw .input(.unsupportedKey, "\(source) is a DSA key; DSA is obsolete and refused by OpenSSH. Fix: use an "
                             + "Ed25519 key (apf-agent profile add --generate)")
        default:
            throw .input(.malformedKey, "\(source) holds a '\(block.label)' block, not a private key. Fix: give the "
                             + "private key file")
        }
    }

    private static func readOpenSSH(_ der: [UInt8], passphrase: Secret?, source: String) throws(AuthError)
        -> SSHPrivateKeyInfo
    {
        func malformed(_ what: String) -> AuthError {
            .input(.malformedKey, "\(source) is not a valid OpenSSH private key (\(what)); the file is damaged")
        }
        guard der.starts(with: magic) else { throw malformed("bad magic") }
        var r = SSHWireReader(der)
        r.pos = magic.count
        guard let cipher = r.text(), let kdf = r.text(), let kdfOptions = r.string(), let n = r.uint32() else {
            throw malformed("truncated header")
        }
        guard n == 1 else { throw .input(.unsupportedKey, "\(source) holds \(n) keys; give a file with one key") }
        guard let pubBlob = r.string(), var section = r.string() else { throw malformed("truncated key") }
        let publicKey = try SSHPublicKey(blob: pubBlob)
        let encrypted = cipher != "none"
        if encrypted {
            guard let passphrase, !passphrase.isEmpty else { throw noPassphrase(source) }
            guard kdf == "bcrypt" else {
                throw .input(.unsupportedKey, "\(source) uses key derivation '\(kdf)'; only bcrypt is supported")
            }
            var k = SSHWireReader(kdfOptions)
            guard let salt = k.string(), let rounds = k.uint32(), rounds >= 1, rounds <= 1 << 16 else {
                throw malformed("bad kdf options")
            }
            let (keyLen, ivLen, mode): (Int, Int, String)
            switch cipher {
            case "aes128-ctr": (keyLen, ivLen, mode) = (16, 16, "ctr")
            case "aes192-ctr": (keyLen, ivLen, mode) = (24, 16, "ctr")
            case "aes256-ctr": (keyLen, ivLen, mode) = (32, 16, "ctr")
            case "aes128-cbc": (keyLen, ivLen, mode) = (16, 16, "cbc")
            case "aes256-cbc": (keyLen, ivLen, mode) = (32, 16, "cbc")
            default:
                throw .input(.unsupportedKey, "\(source) is encrypted with \(cipher), which libssh2 1.10 cannot read. "
                                 + "Fix: re-encrypt it with `ssh-keygen -p -Z aes256-ctr -f \(source)`")
            }
            guard section.count % 16 == 0 else { throw malformed("encrypted section not a multiple of the block size") }
            let material = passphrase.withBytes {
                BcryptPBKDF.derive(password: $0, salt: salt, count: keyLen + ivLen, rounds: Int(rounds))
            }
            let symKey = SymmetricKey(data: material[0..<keyLen])
            do {
                if mode == "ctr" {
                    section = Array(try AES._CTR.decrypt(section, using: symKey,
                                                         nonce: AES._CTR.Nonce(nonceBytes: material[keyLen...])))
                } else {
                    section = Array(try AES._CBC.decrypt(section, using: symKey,
                                                         iv: AES._CBC.IV(ivBytes: material[keyLen...]), noPadding: true))
                }
            } catch {
                throw malformed("decryption failed")
            }
        } else if cipher != "none" || kdf != "none" {
            throw malformed("cipher none with kdf \(kdf)")
        }
        var p = SSHWireReader(section)
        guard let c1 = p.uint32(), let c2 = p.uint32() else { throw malformed("truncated private section") }
        guard c1 == c2 else {
            throw wrongPassphrase(source)
        }
        guard let type = p.text(), type == publicKey.keyType else { throw malformed("key type mismatch") }
        // Skip the private fields of each type to reach the comment.
        let fields: Int
        switch type {
        case "ssh-ed25519": fields = 2
        case "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521": fields = 3
        case "ssh-rsa": fields = 6
        case "ssh-dss":
            throw .input(.unsupportedKey, "\(source) is a DSA key; DSA is obsolete and refused by OpenSSH. Fix: use an "
                             + "Ed25519 key")
        default:
            throw .input(.unsupportedKey, "\(source) is a \(type) key; supported are ssh-ed25519, ecdsa-sha2-* and "
                             + "ssh-rsa")
        }
        for _ in 0..<fields { guard p.string() != nil else { throw malformed("truncated \(type) fields") } }
        let comment = p.text()
        return SSHPrivateKeyInfo(publicKey: publicKey, encrypted: encrypted, format: .openssh,
                                 comment: comment?.isEmpty == false ? comment : nil)
    }

    /// OpenSSL's traditional PEM encryption: `DEK-Info: AES-128-CBC,<iv hex>`, key = EVP_BytesToKey(MD5, iv[0..8]).
    private static func decryptLegacyPEM(_ block: PEMBlock, passphrase: Secret?, source: String) throws(AuthError)
        -> [UInt8]
    {
        guard let passphrase, !passphrase.isEmpty else { throw noPassphrase(source) }
        let info = (block.headers["DEK-Info"] ?? "").split(separator: ",").map(String.init)
        let keyLen: Int
        switch info.first {
        case "AES-128-CBC": keyLen = 16
        case "AES-192-CBC": keyLen = 24
        case "AES-256-CBC": keyLen = 32
        default:
            throw .input(.unsupportedKey, "\(source) is encrypted with \(info.first ?? "an unknown cipher"), which is "
                             + "not supported. Fix: convert it with `ssh-keygen -p -f \(source)` (OpenSSH format)")
        }
        guard info.count == 2, let iv = hexBytes(info[1]), iv.count == 16 else {
            throw .input(.malformedKey, "\(source) has a malformed DEK-Info header; the file is damaged")
        }
        var key: [UInt8] = []
        var prev: [UInt8] = []
        passphrase.withBytes { pass in
            while key.count < keyLen {
                prev = Array(Insecure.MD5.hash(data: prev + pass + iv[0..<8]))
                key += prev
            }
        }
        do {
            return Array(try AES._CBC.decrypt(block.der, using: SymmetricKey(data: key[0..<keyLen]),
                                              iv: AES._CBC.IV(ivBytes: iv)))
        } catch {
            throw wrongPassphrase(source)
        }
    }

    static func noPassphrase(_ source: String) -> AuthError {
        .input(.wrongPassphrase, "\(source) is encrypted and no passphrase was given. Fix: add --passphrase-stdin (or "
                   + "--passphrase-file) with the key's passphrase")
    }

    static func wrongPassphrase(_ source: String) -> AuthError {
        .input(.wrongPassphrase, "wrong passphrase for \(source): the key did not decrypt. Fix: give the passphrase the "
                   + "key was encrypted with")
    }

    static func hexBytes(_ hex: String) -> [UInt8]? {
        let chars = Array(hex.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < chars.count {
            guard let b = UInt8(String(decoding: chars[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            out.append(b)
            i += 2
        }
        return out
    }

    private static func publicKeyFromDER(label: String, der: [UInt8], source: String, encrypted: Bool)
        throws(AuthError) -> SSHPublicKey
    {
        var w = SSHWireWriter()
        func ecdsa(_ name: String, _ point: Data) {
            w.string("ecdsa-sha2-\(name)")
            w.string(name)
            w.string(Array(point))
        }
        if label != "EC PRIVATE KEY", let rsa = try? _RSA.Signing.PrivateKey(unsafeDERRepresentation: der),
           let prims = try? rsa.publicKey.getKeyPrimitives() {
            w.string("ssh-rsa")
            w.mpint(Array(prims.publicExponent))
            w.mpint(Array(prims.modulus))
        } else if let k = try? P256.Signing.PrivateKey(derRepresentation: der) {
            ecdsa("nistp256", k.publicKey.x963Representation)
        } else if let k = try? P384.Signing.PrivateKey(derRepresentation: der) {
            ecdsa("nistp384", k.publicKey.x963Representation)
        } else if let k = try? P521.Signing.PrivateKey(derRepresentation: der) {
            ecdsa("nistp521", k.publicKey.x963Representation)
        } else if label == "PRIVATE KEY",
                  let k = try? Curve25519.Signing.PrivateKey(pemRepresentation: PEM.encode(label: label, der: der)) {
            w.string("ssh-ed25519")
            w.string(Array(k.publicKey.rawRepresentation))
        } else if encrypted {
            throw wrongPassphrase(source)
        } else {
            throw .input(.malformedKey, "\(source): the \(label) block is not an RSA, ECDSA or Ed25519 private key "
                             + "this program can read")
        }
        return try SSHPublicKey(blob: w.bytes)
    }
}
