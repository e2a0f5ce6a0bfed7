import Crypto
import Foundation
import SSHSubmit
import Testing

/// Commands over the real loopback sshd (testbed main sshd, stock OpenSSH 9.2 settings).
@Suite(.enabled(if: Testbed.enabled, "needs the testbed (APF_INTEGRATION=1, make test)"))
struct ExecIntegrationTests {
    let tb: Testbed
    let pool: SSHPool

    init() throws {
        tb = try Testbed.load()
        pool = try tb.pool(tb.main)
    }

    @Test(.timeLimit(.minutes(1))) func exitStatusStdoutAndStderr() async throws {
        let ok = try await pool.exec("sh", "-c", "echo out; echo err >&2")
        #expect(ok.exitStatus == 0 && ok.exitSignal == nil)
        #expect(ok.stdoutText == "out\n")
        #expect(ok.stderrText == "err\n")
        for code: Int32 in [1, 3, 42, 255] {
            let r = try await pool.exec("sh", "-c", "exit \(code)")
            #expect(r.exitStatus == code)
        }
        let failed = try await pool.exec("ls", "/nonexistent-apf")
        #expect(failed.exitStatus != 0)
        #expect(failed.stderrText.contains("nonexistent-apf"))
        #expect(throws: SSHError(.remoteExit, "", retryable: false)) { try failed.check("ls") }
    }

    @Test(.timeLimit(.minutes(1))) func killedBySignal() async throws {
        let term = try await pool.exec("sh", "-c", "kill -TERM $$")
        #expect(term.exitSignal == "TERM")
        let kill = try await pool.exec("sh", "-c", "kill -KILL $$")
        #expect(kill.exitSignal == "KILL")
        #expect(!kill.succeeded)
    }

    @Test(.timeLimit(.minutes(1))) func tenMegabytesOfOutputArriveWhole() async throws {
        let size = 10 << 20
        let r = try await pool.exec("sh", "-c", "yes 0123456789abcdef | head -c \(size); echo done >&2")
        #expect(r.stdout.count == size)
        let line = Array("0123456789abcdef\n".utf8)
        var expected = [UInt8]()
        expected.reserveCapacity(size)
        while expected.count < size { expected += line }
        expected.removeLast(expected.count - size)
        #expect(r.stdout == expected)
        #expect(r.stderrText == "done\n")
    }

    @Test(.timeLimit(.minutes(1))) func outputCapIsAClearErrorAndTheConnectionSurvives() async throws {
        var options = SSHOptions()
        options.maxOutputBytes = 1 << 20
        let capped = try tb.pool(tb.main, options: options)
        await #expect(throws: SSHError(.outputTooLarge, "", retryable: false)) {
            try await capped.exec("head", "-c", "5000000", "/dev/zero")
        }
        #expect(try await capped.exec("echo", "still fine").stdoutText == "still fine\n")
        await capped.shutdown()
    }

    @Test(.timeLimit(.minutes(1))) func stdinAndEnvironment() async throws {
        var data = [UInt8](repeating: 0, count: 3 << 20)
        for i in data.indices { data[i] = UInt8(truncatingIfNeeded: i &* 31) }
        let r = try await pool.exec(RemoteCommand(["sha256sum"], stdin: data))
        let digest = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        #expect(r.stdoutText.hasPrefix(digest))

        let weird = "it's $HOME `id` ; \n\t é 🚀"
        let env = try await pool.exec(RemoteCommand(["printenv", "APF_WEIRD"], environment: [("APF_WEIRD", weird)]))
        #expect(env.stdoutText == weird + "\n")
        let cwd = try await pool.exec(RemoteCommand(["pwd"], workingDirectory: "/tmp"))
        #expect(cwd.stdoutText == "/tmp\n")
    }

    /// ≥ 1,000 random argument vectors full of shell metacharacters arrive byte-exact (printf '%s\0' echoes them).
    @Test(.timeLimit(.minutes(3))) func randomArgvArriveByteExact() async throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        var rng = SplitMix64(state: seed)
        let cases = (0..<1000).map { _ in (0..<Int.random(in: 1...8, using: &rng)).map { _ in randomArgument(&rng) } }
        let pool = self.pool
        let mismatches = try await withThrowingTaskGroup(of: [String]?.self) { group in
            for args in cases {
                group.addTask {
                    let r = try await pool.exec(RemoteCommand(["printf", "%s\\0"] + args))
                    let got = r.stdout.split(separator: 0, omittingEmptySubsequences: false).dropLast()
                        .map { String(decoding: $0, as: UTF8.self) }
                    return got == args ? nil : args
                }
            }
            var bad: [[String]] = []
            for try await r in group { if let r { bad.append(r) } }
            return bad
        }
        #expect(mismatches.isEmpty, "seed \(seed): \(mismatches.prefix(3))")
    }

    @Test(.timeLimit(.minutes(1))) func commandTimeoutLeavesTheConnectionUsable() async throws {
        _ = try await pool.exec("true")  // connected: the bound below is about the command, not the handshake
        let start = ContinuousClock.now
        do {
            _ = try await pool.exec(RemoteCommand(["sleep", "20"], timeout: .milliseconds(500)))
            Issue.record("sleep 20 should have timed out")
        } catch {
            #expect(error.code == .timeout)
            #expect(error.commandMayHaveRun)
        }
        #expect(ContinuousClock.now - start < .seconds(5))
        #expect(try await pool.exec("echo", "ok").stdoutText == "ok\n")
    }

    @Test(.timeLimit(.minutes(1))) func cancellingTheTaskCancelsTheCommand() async throws {
        let pool = self.pool
        _ = try await pool.exec("true")
        let start = ContinuousClock.now
        let task = Task { try await pool.exec("sleep", "30") }
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        let result = await task.result
        #expect(ContinuousClock.now - start < .seconds(5))
        guard case .failure(let error) = result, let e = error as? SSHError else {
            Issue.record("expected a cancellation error, got \(result)")
            return
        }
        #expect(e.code == .cancelled)
        #expect(try await pool.exec("echo", "ok").stdoutText == "ok\n")
    }

    /// 20 concurrent commands against MaxSessions 10: the budget (8) queues the rest; none fails.
    @Test(.timeLimit(.minutes(1))) func twentyConcurrentCommandsWithinTheBudget() async throws {
        let pool = try tb.pool(tb.main)
        let start = ContinuousClock.now
        let outputs = try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<20 { group.addTask { try await pool.exec("sh", "-c", "sleep 0.4; echo \(i)").stdoutText } }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        let elapsed = ContinuousClock.now - start
        #expect(Set(outputs) == Set((0..<20).map { "\($0)\n" }))
        // 20 commands of 0.4 s through 8 channels need three rounds; all at once would take one.
        #expect(elapsed >= .milliseconds(1100), "took \(elapsed)")
        #expect(pool.connectCount == 1)
        await pool.shutdown()
    }

    /// A budget above the server's MaxSessions (10): refused channels (libssh2 -21) wait and retry; none fails.
    @Test(.timeLimit(.minutes(1))) func budgetAboveMaxSessionsAdapts() async throws {
        var options = SSHOptions()
        options.channelBudget = 16
        let pool = try tb.pool(tb.main, options: options)
        let outputs = try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<20 { group.addTask { try await pool.exec("sh", "-c", "sleep 0.3; echo \(i)").stdoutText } }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(Set(outputs) == Set((0..<20).map { "\($0)\n" }))
        #expect(pool.connectCount == 1)
        await pool.shutdown()
    }

    @Test(.timeLimit(.minutes(1))) func gracefulShutdownFinishesRunningCommands() async throws {
        let pool = try tb.pool(tb.main)
        _ = try await pool.exec("true")  // connected, so the three below are submitted at once
        let running = (0..<3).map { i in Task { try await pool.exec("sh", "-c", "sleep 0.5; echo \(i)").stdoutText } }
        try await Task.sleep(for: .milliseconds(150))
        await pool.shutdown(grace: .seconds(10))
        for (i, t) in running.enumerated() { #expect(try await t.value == "\(i)\n") }
        await #expect(throws: SSHError(.shutdown, "", retryable: false)) { try await pool.exec("true") }
    }

    @Test(.timeLimit(.minutes(1))) func idleConnectionsCloseAndReopen() async throws {
        var options = SSHOptions()
        options.idleTimeout = .seconds(1)
        let pool = try tb.pool(tb.main, options: options)
        _ = try await pool.exec("true")
        #expect(pool.health == .connected)
        let before = pool.connectCount
        try await Task.sleep(for: .milliseconds(2500))
        #expect(pool.health == .idle)
        _ = try await pool.exec("true")
        #expect(pool.connectCount == before + 1)
        await pool.shutdown()
    }
}

/// Cancellation that arrives before the command is even submitted (still connecting) must win too.
@Suite(.enabled(if: Testbed.enabled, "needs the testbed (APF_INTEGRATION=1, make test)"))
struct EarlyCancellationTests {
    @Test(.timeLimit(.minutes(1))) func cancelWhileConnecting() async throws {
        let tb = try Testbed.load()
        let pool = try tb.pool(tb.main)
        let task = Task { try await pool.exec("sleep", "30") }
        task.cancel()
        let start = ContinuousClock.now
        _ = await task.result
        #expect(ContinuousClock.now - start < .seconds(5))
        await pool.shutdown()
    }
}
