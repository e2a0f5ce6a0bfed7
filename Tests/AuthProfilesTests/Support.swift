import AuthProfiles
import Crypto
import Foundation
import Logging
import SwiftASN1
import Testing
import TestSupport
import X509
import _CryptoExtras

/// The project's testbed (testbed/tb); integration suites run only when APF_INTEGRATION=1 (`make test` sets it).
struct Testbed {
    static let enabled = TestbedEnv.enabled
    static let repoRoot = TestbedEnv.repoRoot

    let env: [String: String]

    static func load() throws -> Testbed { Testbed(env: try TestbedEnv.read()) }

    subscript(_ key: String) -> String { get throws { try TestbedEnv.value(env, key) } }
}

/// A private temporary directory, removed by `remove()`.
struct TempDir {
    let path: String

    init(_ prefix: String = "apf-test") throws {
        let p = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        path = p
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    @discardableResult
    func write(_ name: String, _ text: String, mode: Int = 0o600) throws -> String {
        let p = file(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: p))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: p)
        return p
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Runs a local program; returns exit status, stdout and stderr.
struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
    var output: String { stdout + stderr }

    /// Runs on a thread of its own: test functions run on Swift's small cooperative pool (2 threads on 2 cores),
    /// and blocking it for seconds would stall every other test's timers.
    @discardableResult
    static func run(_ argv: [String], stdin: String? = nil, env: [String: String]? = nil, cwd: String? = nil)
        async throws -> Run
    {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Run, any Error>) in
            Thread.detachNewThread {
                cont.resume(with: Result { try runBlocking(argv, stdin: stdin, env: env, cwd: cwd) })
            }
        }
    }

    static func runBlocking(_ argv: [String], stdin: String?, env: [String: String]?, cwd: String?) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        if let env { p.environment = env }
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        // Read both pipes concurrently so a full stderr pipe cannot block the child.
        let errData = Mutexed(Data())
        let t = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        t.start()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while !t.isFinished { Thread.sleep(forTimeInterval: 0.005) }
        return Run(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                   stderr: String(decoding: errData.get(), as: UTF8.self))
    }

    /// Runs and requires exit 0.
    @discardableResult
    static func ok(_ argv: [String], stdin: String? = nil, cwd: String? = nil) async throws -> Run {
        let r = try await run(argv, stdin: stdin, cwd: cwd)
        guard r.status == 0 else {
            throw TestFailure("\(argv.joined(separator: " ")) exited \(r.status): \(r.output)")
        }
        return r
    }
}

final class Mutexed<T>: @unchecked Sendable {
    private var value: T
    private let lock = NSLock()
    init(_ v: T) { value = v }
    func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
    func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
}

/// The apf-agent executable built next to this test bundle.
enum CLI {
    static var binary: String {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [dir, dir.deletingLastPathComponent()] {
            let p = candidate.appendingPathComponent("apf-agent").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return Testbed.repoRoot + "/.build/debug/apf-agent"
    }

    /// Runs `apf-agent ARGS` against `home`, with a clean environment (no inherited secrets).
    static func run(_ args: [String], home: String, stdin: String? = nil, cwd: String? = nil,
                    extraEnv: [String: String] = [:]) async throws -> Run {
        var env = ["PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "APF_HOME": home + "/store"]
        for (k, v) in extraEnv { env[k] = v }
        return try await Run.run([binary] + args, stdin: stdin ?? "", env: env, cwd: cwd)
    }
}

/// A CA and user certificate made in memory with swift-certificates (for tests that need no openssl).
struct TestPKI: Sendable {
    /// One instance for the tests that need no particular one: RSA key generation is the costliest thing these tests
    /// do, and the machine's 2 cores are shared with timing-sensitive suites.
    static let shared: TestPKI = try! TestPKI()

    let caKey: Certificate.PrivateKey
    let ca: Certificate
    let userKey: _RSA.Signing.PrivateKey
    let user: Certificate

    init(userNotAfter: Date = Date().addingTimeInterval(30 * 86_400)) throws {
        let caRSA = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        caKey = Certificate.PrivateKey(caRSA)
        let caName = try DistinguishedName {
            DomainComponent("org"); DomainComponent("apftest"); CommonName("In-memory Test CA")
        }
        ca = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: caKey.publicKey,
            notValidBefore: Date().addingTimeInterval(-86_400), notValidAfter: Date().addingTimeInterval(365 * 86_400),
            issuer: caName, subject: caName, signatureAlgorithm: .sha256WithRSAEncryption,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            }, issuerPrivateKey: caKey)
        userKey = try _RSA.Signing.PrivateKey(keySize: .bits2048)
        let userName = try DistinguishedName {
            DomainComponent("org"); DomainComponent("apftest"); OrganizationName("People"); CommonName("Jane Tester")
        }
        user = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(userKey.publicKey),
            notValidBefore: Date().addingTimeInterval(-86_400), notValidAfter: userNotAfter,
            issuer: caName, subject: userName, signatureAlgorithm: .sha256WithRSAEncryption,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
            }, issuerPrivateKey: caKey)
    }

    var userCertPEM: String { get throws { try X509Credential.pem(user) } }
    var userKeyPEM: String { userKey.pemRepresentation + "\n" }
    var caPEM: String { get throws { try X509Credential.pem(ca) } }

    /// A native proxy of the user with `lifetime` seconds, made as if at `now`.
    func proxy(lifetime: TimeInterval, now: Date = Date()) throws -> String {
        let out = try ProxyGenerator.generate(signerChain: [user], signingKey: Certificate.PrivateKey(userKey),
                                              lifetime: lifetime, now: now)
        return out.pem.withBytes { String(decoding: $0, as: UTF8.self) }
    }
}

/// A snapshot of every file under a directory (path, mode, contents hash): equal snapshots = unchanged store.
func snapshot(_ root: String) -> [String: String] {
    var out: [String: String] = [:]
    guard let e = FileManager.default.enumerator(atPath: root) else { return out }
    while let rel = e.nextObject() as? String {
        if rel == ".lock" { continue }
        let p = root + "/" + rel
        let attrs = try? FileManager.default.attributesOfItem(atPath: p)
        let mode = (attrs?[.posixPermissions] as? Int).map { String($0, radix: 8) } ?? "?"
        var isDir: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: p, isDirectory: &isDir)
        let content = isDir.boolValue ? "dir" : (FileManager.default.contents(atPath: p).map {
            SHA256.hash(data: $0).map { String(format: "%02x", $0) }.joined()
        } ?? "unreadable")
        out[rel] = "\(mode) \(content)"
    }
    return out
}

func mode(of path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int) ?? -1
}
