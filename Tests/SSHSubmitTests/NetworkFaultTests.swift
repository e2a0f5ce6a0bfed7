import Foundation
import SSHSubmit
import Testing
import TestSupport

/// Hosts in network namespaces (testbed/tb up netns): faults, reconnection and the jump-host path. Serialized:
/// the fault tests change the state of host apfh2, the restart test that of apfh3.
@Suite(.enabled(if: Testbed.enabled, "needs the testbed (APF_INTEGRATION=1, make test)"), .serialized)
struct NetworkFaultTests {
    let tb: Testbed
    init() throws { tb = try Testbed.load() }

    private func fastOptions(connect: Duration = .seconds(2)) -> SSHOptions {
        var o = SSHOptions()
        o.connectTimeout = connect
        o.handshakeTimeout = .seconds(5)
        o.reconnectBaseDelay = .milliseconds(50)
        o.reconnectMaxDelay = .milliseconds(200)
        return o
    }

    @Test(.timeLimit(.minutes(1))) func blackholedHostFailsWithinTheConnectTimeout() async throws {
        try Testbed.tb("fault", "apfh2", "blackhole")
        defer { _ = try? Testbed.tb("fault", "apfh2", "clear") }
        var options = fastOptions(connect: .seconds(2))
        options.reconnectBaseDelay = .seconds(30)
        options.reconnectMaxDelay = .seconds(30)
        let pool = try tb.pool(try tb.netns("apfh2"), options: options)
        let start = ContinuousClock.now
        await #expect(throws: SSHError(.connectTimeout, "", retryable: true)) { try await pool.exec("true") }
        let elapsed = ContinuousClock.now - start
        // The kernel alone would retry the SYN for over a minute. The slack above 2 s is for this machine's two cores,
        // which the other suites keep busy while this one runs.
        #expect(elapsed >= .milliseconds(1900) && elapsed < .seconds(10), "took \(elapsed)")
        // While backing off, the pool answers without dialling again (a dial would take the 2 s timeout).
        let again = ContinuousClock.now
        await #expect(throws: SSHError(.backingOff, "", retryable: true)) { try await pool.exec("true") }
        #expect(ContinuousClock.now - again < .milliseconds(1900))
        guard case .backingOff(_, let reason) = pool.health else {
            Issue.record("health should say backing off, is \(pool.health)")
            return
        }
        #expect(reason.contains("timed out"))
    }

    /// An open session whose peer goes silent is declared dead by the keepalive (TCP_USER_TIMEOUT), not hung on.
    @Test(.timeLimit(.minutes(1))) func blackholedOpenSessionIsDetected() async throws {
        var options = fastOptions()
        options.keepaliveInterval = .seconds(1)
        options.keepaliveCountMax = 2
        let pool = try tb.pool(try tb.netns("apfh2"), options: options)
        #expect(try await pool.exec("hostname").stdoutText == "apfh2\n")
        try Testbed.tb("fault", "apfh2", "blackhole")
        defer { _ = try? Testbed.tb("fault", "apfh2", "clear") }
        let start = ContinuousClock.now
        while pool.health == .connected, ContinuousClock.now - start < .seconds(20) {
            try await Task.sleep(for: .milliseconds(200))
        }
        let elapsed = ContinuousClock.now - start
        #expect(pool.health != .connected)
        #expect(elapsed < .seconds(10), "dead session noticed after \(elapsed)")
        // A command on a silent host times out instead of hanging.
        try Testbed.tb("fault", "apfh2", "clear")
        #expect(try await pool.exec("hostname").stdoutText == "apfh2\n")
    }

    @Test(.timeLimit(.minutes(1)), arguments: [
        ("linkdown", SSHError.Code.hostUnreachable), ("reject", .connectRefused), ("sshd-stop", .connectRefused),
    ])
    func fastFailures(mode: String, expected: SSHError.Code) async throws {
        try Testbed.tb("fault", "apfh2", mode)
        defer { _ = try? Testbed.tb("fault", "apfh2", "clear") }
        let pool = try tb.pool(try tb.netns("apfh2"), options: fastOptions(connect: .seconds(5)))
        let start = ContinuousClock.now
        do {
            _ = try await pool.exec("true")
            Issue.record("\(mode): connect should fail")
        } catch {
            #expect(error.code == expected, "\(mode): \(error)")
            #expect(error.isRetryable)
        }
        // Fast: well before the 5 s connect timeout a silent host would take.
        #expect(ContinuousClock.now - start < .seconds(4))
        try Testbed.tb("fault", "apfh2", "clear")
        // Back-off is short here; the host is back, so the pool recovers.
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await pool.exec("hostname").stdoutText == "apfh2\n")
    }

    /// sshd restarted (its connections killed): the pool notices and reconnects; no command is lost.
    @Test(.timeLimit(.minutes(1))) func poolReconnectsAfterSshdRestart() async throws {
        let pool = try tb.pool(try tb.netns("apfh3"), options: fastOptions())
        #expect(try await pool.exec("hostname").stdoutText == "apfh3\n")
        #expect(pool.connectCount == 1)
        try Testbed.tb("restart-sshd", "apfh3")
        for i in 0..<5 {
            let r = try await pool.exec("echo", "\(i)")
            #expect(r.stdoutText == "\(i)\n")
        }
        #expect(pool.connectCount == 2)
        await pool.shutdown()
    }

    /// Host B reached through gateway A with a direct-tcpip channel: the loopback jump sshd to apfh1, and apfh1 to
    /// its own namespace's 127.0.0.1:22, which nothing outside apfh1 can reach. Host keys are checked for B too.
    @Test(.timeLimit(.minutes(1))) func jumpHostPath() async throws {
        let gateway = try tb.pool(tb.jump)
        let viaJump = try tb.pool(try tb.netns("apfh1"), gateway: gateway)
        #expect(try await viaJump.exec("hostname").stdoutText == "apfh1\n")
        // The inner session sees the gateway as its client address.
        #expect(try await viaJump.exec("sh", "-c", "echo $SSH_CONNECTION").stdoutText.hasPrefix("10.251.1.1 "))

        let apfh1 = try tb.pool(try tb.netns("apfh1"))
        let pub = try String(contentsOfFile: "\(try tb["APF_TB_HOSTKEYS_DIR"])/apfh1/ssh_host_ed25519_key.pub", encoding: .utf8)
        let f = pub.split(separator: " ")
        let inner = SSHEndpoint(host: "127.0.0.1", port: 22, user: tb.user)
        let innerPool = SSHPool(endpoint: inner, identity: try tb.identity(),
                                knownHosts: KnownHosts(text: "127.0.0.1 \(f[0]) \(f[1])\n"), gateway: apfh1, logger: .silent)
        let r = try await innerPool.exec("sh", "-c", "hostname; echo $SSH_CONNECTION")
        #expect(r.stdoutText.hasPrefix("apfh1\n127.0.0.1 "))
        // Several commands in parallel through the tunnel.
        let outs = try await withThrowingTaskGroup(of: String.self) { g in
            for i in 0..<10 { g.addTask { try await innerPool.exec("echo", "\(i)").stdoutText } }
            return try await g.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(outs == Set((0..<10).map { "\($0)\n" }))
        // The inner host's key is still verified: a wrong pin through the tunnel is refused.
        let wrong = try String(contentsOfFile: "\(try tb["APF_TB_HOSTKEYS_DIR"])/apfh2/ssh_host_ed25519_key.pub", encoding: .utf8).split(separator: " ")
        let badPool = SSHPool(endpoint: inner, identity: try tb.identity(),
                              knownHosts: KnownHosts(text: "127.0.0.1 \(wrong[0]) \(wrong[1])\n"), gateway: apfh1, logger: .silent)
        await #expect(throws: SSHError(.hostKeyChanged, "", retryable: false)) { try await badPool.exec("true") }
        for p in [innerPool, badPool, viaJump, apfh1, gateway] { await p.shutdown() }
    }
}
