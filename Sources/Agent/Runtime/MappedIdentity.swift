import AuthProfiles
import Foundation
import SSHSubmit

/// The SSH identity of an auth.conf `plugin = SSH` profile (APF's CondorSSH/VC3 queues): the private key from
/// `ssh.privatekeyfile` (or inline base64 `ssh.privatekey`), its passphrase from `ssh.privkeypassfile` (or
/// `ssh.privkeypass`). Key and passphrase files must not be readable by group or others. The key goes from memory to
/// libssh2; nothing is written to `~/.ssh` (APF.md §11).
enum MappedIdentity {
    static func load(profile name: String, config: AgentConfig) throws(FactoryError) -> SSHIdentity {
        guard let p = config.authProfiles.first(where: { $0.name == name }), case .ssh(let d)? = p.kind else {
            throw FactoryError(.target, "auth profile '\(name)' is not an SSH profile in auth.conf")
        }
        let key: Secret
        if let file = d.privateKeyFile {
            key = try read(file, what: "ssh.privatekeyfile of [\(name)]")
        } else if let inline = d.inlinePrivateKey {
            let decoded = inline.withBytes { bytes -> [UInt8]? in
                let text = String(decoding: bytes, as: UTF8.self).filter { !$0.isWhitespace }
                return Data(base64Encoded: text).map { [UInt8]($0) }
            }
            guard let decoded else {
                throw FactoryError(.target, "ssh.privatekey of [\(name)] is not base64")
            }
            key = Secret(bytes: decoded)
        } else {
            throw FactoryError(.target, "auth profile [\(name)] has no private key")
        }
        var passphrase: Secret?
        if let file = d.passphraseFile {
            let raw = try read(file, what: "ssh.privkeypassfile of [\(name)]")
            // A trailing newline is not part of the passphrase.
            passphrase = raw.withBytes { b in
                var bytes = b
                while let last = bytes.last, last == 10 || last == 13 { bytes.removeLast() }
                return Secret(bytes: bytes)
            }
        } else if let inline = d.inlinePassphrase {
            passphrase = inline
        }
        return SSHIdentity(id: "auth.conf:\(name)", privateKey: key, passphrase: passphrase)
    }

    private static func read(_ path: String, what: String) throws(FactoryError) -> Secret {
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: path),
            let mode = (attrs[.posixPermissions] as? NSNumber)?.intValue
        else {
            throw FactoryError(.target, "cannot read \(what) '\(path)': no such file, or not accessible")
        }
        guard mode & 0o077 == 0 else {
            throw FactoryError(.target, "\(what) '\(path)' is readable by group or others (mode \(String(mode & 0o777, radix: 8))); run chmod 600 on it")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FactoryError(.target, "cannot read \(what) '\(path)'")
        }
        return Secret(bytes: [UInt8](data))
    }
}
