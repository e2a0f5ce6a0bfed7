import ArgumentParser
import AuthProfiles
import Foundation
import Logging
import SSHSubmit

/// P1: `true` N times on the testbed's loopback sshd, through our pool (sequential and concurrent) and through the
/// OpenSSH client as Harvester (ControlMaster) and DIRAC (one process per command) drive it.
struct SSHBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssh", abstract: "P1: pooled libssh2 channels vs OpenSSH ControlMaster vs one ssh per command.")

    @Option(help: "Commands per method.") var count = 200
    @Option(help: "Concurrency for the concurrent runs (default: the pool's channel budget, 8).") var concurrency = 8
    @Flag(help: "Time only our pool (for profiling); prints no P1 line.") var poolOnly = false

    func run() async throws {
        let env = try TestbedEnv.load()
        guard let key = env["APF_TB_KEY_ED25519"], let knownHosts = env["APF_TB_KNOWN_HOSTS"],
              let port = env["APF_TB_SSH_PORT"].flatMap(Int.init), let user = env["APF_TB_USER"]
        else { throw ValidationError("the testbed env file lacks the main sshd's settings") }
        let host = "127.0.0.1"

        var options = SSHOptions()
        options.channelBudget = concurrency
        let pool = SSHPool(
            endpoint: SSHEndpoint(host: host, port: port, user: user),
            identity: SSHIdentity(id: "bench", privateKey: Secret(bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: key))))),
            knownHostsPath: knownHosts, options: options, logger: Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() }))
        _ = try await pool.exec("true").check("warm-up")  // connect and authenticate outside the timings

        let n = count
        let sequential = try await measure {
            for _ in 0..<n { try await pool.exec("true").check("true") }
        }
        let concurrent = try await measure {
            try await withThrowingTaskGroup(of: Void.self) { g in
                for _ in 0..<n { g.addTask { try await pool.exec("true").check("true") } }
                try await g.waitForAll()
            }
        }
        await pool.shutdown()
        if poolOnly {
            print(String(format: "pool: sequential %.3f ms/cmd, concurrent %.3f ms/cmd", sequential.seconds * 1000 / Double(n),
                         concurrent.seconds * 1000 / Double(n)))
            return
        }

        let sshBase = ["/usr/bin/ssh", "-F", "/dev/null", "-p", "\(port)", "-i", key, "-o", "BatchMode=yes",
                       "-o", "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=\(knownHosts)",
                       "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes"]
        let target = "\(user)@\(host)"
        let controlPath = "/tmp/apf-bench-cm-\(getpid())"
        let master = sshBase + ["-o", "ControlMaster=yes", "-o", "ControlPath=\(controlPath)", "-o", "ControlPersist=600",
                                "-fN", target]
        guard try await spawn(master) == 0 else { throw ValidationError("could not start the ControlMaster") }
        defer { _ = try? Process.run(URL(fileURLWithPath: "/usr/bin/ssh"), arguments: ["-F", "/dev/null", "-o", "ControlPath=\(controlPath)", "-O", "exit", target]).waitUntilExit() }
        let viaMaster = sshBase + ["-o", "ControlMaster=no", "-o", "ControlPath=\(controlPath)", target, "true"]
        _ = try await spawn(viaMaster)
        let controlMaster = try await measure {
            for _ in 0..<n { guard try await spawn(viaMaster) == 0 else { throw ValidationError("ssh via ControlMaster failed") } }
        }
        let workers = concurrency
        let controlMasterConcurrent = try await measure {
            try await withThrowingTaskGroup(of: Void.self) { g in
                for w in 0..<workers {
                    let share = n / workers + (w < n % workers ? 1 : 0)
                    g.addTask {
                        for _ in 0..<share {
                            guard try await spawn(viaMaster) == 0 else { throw ValidationError("ssh via ControlMaster failed") }
                        }
                    }
                }
                try await g.waitForAll()
            }
        }
        let plain = sshBase + [target, "true"]
        let perCommand = try await measure {
            for _ in 0..<n { guard try await spawn(plain) == 0 else { throw ValidationError("ssh failed") } }
        }

        func row(_ name: String, _ d: Duration) -> String {
            let total = String(format: "%8.3f s", d.seconds)
            let per = String(format: "%8.2f ms/cmd", d.seconds * 1000 / Double(n))
            return "\(name.padding(toLength: 46, withPad: " ", startingAt: 0)) \(total) \(per)"
        }
        print("P1: \(n) × `true` on \(target):\(port) (OpenSSH 9.2 sshd on loopback)")
        print(row("(a) apf pool, sequential channels", sequential))
        print(row("(b) apf pool, \(concurrency) concurrent channels", concurrent))
        print(row("(c) OpenSSH ControlMaster, sequential", controlMaster))
        print(row("(d) one ssh process per command", perCommand))
        print(row("(e) OpenSSH ControlMaster, \(concurrency) concurrent", controlMasterConcurrent))
        let b = concurrent.seconds
        print(String(format: "P1 pooled_ms_per_cmd=%.3f controlmaster_x=%.1f ssh_per_cmd_x=%.1f controlmaster_concurrent_x=%.1f",
                     b * 1000 / Double(n), controlMaster.seconds / b, perCommand.seconds / b,
                     controlMasterConcurrent.seconds / b))
    }
}
