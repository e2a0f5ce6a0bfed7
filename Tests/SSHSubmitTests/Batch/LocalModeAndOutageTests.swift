import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

@testable import SSHSubmit

/// LOCAL mode: the same SLURM driver with its commands run on this machine by swift-subprocess (the non-root head-node
/// deployment; here the test process's own user submits to the testbed's real SLURM).
@Suite(.enabled(if: Testbed.enabled), .timeLimit(.minutes(3)))
struct LocalModeIntegrationTests {
    @Test func slurmPilotsThroughTheLocalRunner() async throws {
        _ = try BatchBed.load("slurm")  // SLURM up; its client commands run here
        let base = "/tmp/apf-local-mode-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let runner = LocalCommandRunner(baseDirectory: base)
        let tag = BatchBed.uniqueTag()
        let backend = SlurmBackend(runner: runner, tag: tag)
        let queue = try await backend.prepare(BatchBed.queue("LOCAL_TEST", tag: tag, sleep: 2, options: BatchOptions(walltime: .seconds(300))))
        #expect(queue.workDirectory == "\(base)/.apf-agent/test-\(tag)")
        let pilots = ClientIDMinter(tag: tag).mint(count: 5)
        let ids = acceptedIDs(await backend.submit(pilots, to: queue))
        try #require(ids.count == 5)
        let history = try await backend.poll(ids, timeout: .seconds(90)) { r, _ in ids.allSatisfy { r[$0]?.state == .done } }
        #expect(history.forwardOnly)
        let markers = try await BatchBed.markers(runner, queue: queue)
        #expect(Set(markers.keys) == Set(pilots))
        let second = try await backend.cancel(ids)
        #expect(second.alreadyGone == Set(ids))
    }
}

/// One target's outage never blocks another's: a login node that accepts TCP but never speaks SSH (a hung host)
/// next to the real one. Each target has its own timeouts; the healthy one answers at once.
@Suite(.enabled(if: Testbed.enabled), .timeLimit(.minutes(2)))
struct TargetIsolationTests {
    /// A listening socket that never accepts: the kernel completes TCP handshakes, no SSH banner ever comes.
    final class SilentListener {
        let fd: Int32
        let port: Int
        init() throws {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = 0
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } } == 0
                && listen(fd, 16) == 0
                && withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } } == 0
            guard ok else {
                close(fd)
                throw TestFailure("cannot open a local listening socket")
            }
            self.fd = fd
            port = Int(UInt16(bigEndian: addr.sin_port))
        }
        deinit { close(fd) }
    }

    @Test func aHungTargetDelaysNobodyElse() async throws {
        let bed = try BatchBed.load("slurm")
        let silent = try SilentListener()
        var options = SSHOptions()
        options.connectTimeout = .seconds(3)
        options.handshakeTimeout = .seconds(4)
        let hungPool = try bed.tb.pool(SSHEndpoint(host: "127.0.0.1", port: silent.port, user: bed.tb.user), options: options)
        let tag = BatchBed.uniqueTag()
        let hung = SlurmBackend(runner: SSHCommandRunner(pool: hungPool), tag: tag)
        try await bed.session { runner, _ in
            let healthy = SlurmBackend(runner: runner, tag: tag)
            _ = try await healthy.status([])  // connect and install the helper outside the measurement
            var answers: [(String, Bool, Duration)] = []
            let start = ContinuousClock.now
            await pollTargets([(hung, [.slurm(1)]), (healthy, [.slurm(1)])]) { poll in
                answers.append((poll.target, (try? poll.result.get()) != nil, ContinuousClock.now - start))
            }
            try #require(answers.count == 2)
            #expect(answers[0].0 == healthy.target && answers[0].1, "the healthy target answers first: \(answers)")
            #expect(answers[0].2 < .seconds(3), "\(answers)")
            #expect(answers[1].0 == hung.target && !answers[1].1 && answers[1].2 >= .seconds(3), "\(answers)")

            // Submitting to the hung target fails cleanly: the command never ran, so the pilot is not "unknown".
            let spec = BatchBed.queue("HUNG", tag: tag, sleep: 1)
            let prepared = PreparedQueue(spec: spec, workDirectory: "/nonexistent", logDirectory: "/nonexistent/logs", launcherPath: "/bin/true",
                                         payloadPaths: [], target: hung.target)
            let outcome = await hung.submit([ClientIDMinter(tag: tag).mint()], to: prepared)[0].outcome
            guard case .failed(let e) = outcome else { Issue.record("\(outcome)"); return }
            #expect(!e.isPermanent)
        }
        await hungPool.shutdown(grace: .zero)
    }
}
