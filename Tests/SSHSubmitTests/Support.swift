import AuthProfiles
import Foundation
import Logging
import SSHSubmit
import Testing
import TestSupport

/// The project's testbed (testbed/tb): real sshd instances and network-namespace hosts, described by the env file
/// that `testbed/tb up` writes. Integration suites run only when APF_INTEGRATION=1 (`make test` sets it).
struct Testbed {
    static let enabled = TestbedEnv.enabled
    static let repoRoot = TestbedEnv.repoRoot

    let env: [String: String]

    static func load() throws -> Testbed { Testbed(env: try TestbedEnv.read()) }

    subscript(_ key: String) -> String { get throws { try TestbedEnv.value(env, key) } }

    var user: String { env["APF_TB_USER"] ?? "apftest" }
    var knownHosts: String { get throws { try self["APF_TB_KNOWN_HOSTS"] } }
    var main: SSHEndpoint { SSHEndpoint(host: "127.0.0.1", port: Int(env["APF_TB_SSH_PORT"] ?? "2222")!, user: user) }
    var jump: SSHEndpoint { SSHEndpoint(host: "127.0.0.1", port: Int(env["APF_TB_JUMP_PORT"] ?? "2224")!, user: user) }
    func netns(_ host: String) throws -> SSHEndpoint {
        SSHEndpoint(host: try self["APF_TB_NETNS_ADDR_\(host)"], port: 22, user: user)
    }

    func identity(_ keyVar: String = "APF_TB_KEY_ED25519", passphrase: Bool = false) throws -> SSHIdentity {
        let path = try self[keyVar]
        let key = try Data(contentsOf: URL(fileURLWithPath: path))
        var pass: Secret?
        if passphrase {
            pass = Secret(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: try self["APF_TB_KEY_PASSPHRASE_FILE"]))))
        }
        return SSHIdentity(id: keyVar, privateKey: Secret(bytes: [UInt8](key)), passphrase: pass)
    }

    func pool(_ endpoint: SSHEndpoint, options: SSHOptions = SSHOptions(), key: String = "APF_TB_KEY_ED25519",
              gateway: SSHPool? = nil) throws -> SSHPool {
        SSHPool(endpoint: endpoint, identity: try identity(key), knownHostsPath: try knownHosts, options: options,
                gateway: gateway, logger: Logger.silent)
    }

    /// Runs `testbed/tb ARGS` and returns its output; throws with its output when it fails.
    @discardableResult
    static func tb(_ args: String...) throws -> String { try TestbedEnv.tb(args) }

    @discardableResult
    static func run(_ argv: [String]) throws -> String { try TestbedEnv.run(argv) }
}

/// A small seeded generator, so a failing random case can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random arguments full of what breaks naive quoting: quotes, `$`, backticks, `;`, globs, newlines, tabs, unicode.
func randomArgument(_ rng: inout SplitMix64) -> String {
    let pieces: [String] = ["a", "Z", "0", " ", "\t", "\n", "'", "\"", "$", "`", "\\", ";", "&", "|", "*", "?", "~",
                            "#", "!", "(", ")", "{", "}", "[", "]", "<", ">", "=", "%", "-", "--", "$(id)", "${HOME}",
                            "'\\''", "é", "漢", "🚀", "\u{7f}", "\r", "x=y", "-n", "-e"]
    let n = Int.random(in: 0...24, using: &rng)
    return (0..<n).map { _ in pieces.randomElement(using: &rng)! }.joined()
}
