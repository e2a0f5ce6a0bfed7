import ArgumentParser
import AuthProfiles
import Foundation
import Logging
import SSHSubmit

extension SSHCommand {
    struct Exec: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "exec",
            abstract: "Run a command on a host through a pooled libssh2 connection.",
            discussion: """
                The host key must already be in --known-hosts: unknown or changed keys are refused, and the error \
                shows the SHA256 fingerprint to check. The private key is read from a file (never from arguments); \
                a passphrase, if any, from --passphrase-file.
                """)

        @Option(help: "Host name or address.") var host: String
        @Option(help: "SSH port.") var port: Int = 22
        @Option(help: "Remote user.") var user: String
        @Option(help: "Private key file (OpenSSH, PEM or PKCS#8; Ed25519 or ECDSA recommended).") var identityFile: String
        @Option(help: "File holding the key's passphrase.") var passphraseFile: String?
        @Option(help: "OpenSSH known_hosts file with the host's pinned key.") var knownHosts: String
        @Option(help: "Run the command this many times (through one pooled connection).") var count: Int = 1
        @Option(help: "Timeout per command, in seconds.") var timeout: Int = 60
        @Flag(help: "Log connection events to stderr.") var verbose = false
        @Argument(parsing: .captureForPassthrough, help: "The command and its arguments, each passed byte-exact.")
        var command: [String]

        func validate() throws {
            if command.first == "--" { return }
            guard !command.isEmpty else { throw ValidationError("Give the command to run after the options, e.g. -- hostname") }
        }

        func run() async throws {
            let argv = command.first == "--" ? Array(command.dropFirst()) : command
            guard !argv.isEmpty else { throw ValidationError("Give the command to run after --") }
            guard let key = FileManager.default.contents(atPath: identityFile) else {
                throw ValidationError("cannot read the identity file \(identityFile)")
            }
            var passphrase: Secret?
            if let passphraseFile {
                guard let p = FileManager.default.contents(atPath: passphraseFile) else {
                    throw ValidationError("cannot read the passphrase file \(passphraseFile)")
                }
                var bytes = [UInt8](p)
                while bytes.last == 0x0A { bytes.removeLast() }
                passphrase = Secret(bytes: bytes)
            }
            var logger = Logger(label: "apf-agent")
            logger.logLevel = verbose ? .debug : .critical  // failures are reported once, as the command's error
            let pool = SSHPool(
                endpoint: SSHEndpoint(host: host, port: port, user: user),
                identity: SSHIdentity(id: identityFile, privateKey: Secret(bytes: [UInt8](key)), passphrase: passphrase),
                knownHostsPath: knownHosts, logger: logger)
            var status: Int32 = 0
            for _ in 0..<max(1, count) {
                let result = try await pool.exec(RemoteCommand(argv, timeout: .seconds(timeout)))
                FileHandle.standardOutput.write(Data(result.stdout))
                FileHandle.standardError.write(Data(result.stderr))
                status = result.exitSignal != nil ? 128 : result.exitStatus
            }
            await pool.shutdown()
            if status != 0 { throw ExitCode(status) }
        }
    }
}
