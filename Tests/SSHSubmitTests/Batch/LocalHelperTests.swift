import Foundation
import Testing

@testable import SSHSubmit

/// The remote helper and the generated launcher, run for real by this machine's `/bin/sh` and `awk` through the LOCAL
/// runner (swift-subprocess). No testbed needed: only a POSIX shell, as on every login node.
@Suite(.timeLimit(.minutes(2)))
struct LocalHelperTests {
    let base: String

    init() throws {
        base = NSTemporaryDirectory() + "apf-local-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
    }

    var runner: LocalCommandRunner { LocalCommandRunner(baseDirectory: base, defaultTimeout: .seconds(30)) }

    @Test func opsRunInOneCallWithRealExitStatuses() async throws {
        let helper = RemoteHelper(runner: runner)
        let r = try await helper.run([.exec(["sh", "-c", "printf 'a|1\\nb|2\\n'"]), .exec(["sh", "-c", "echo oops >&2; exit 7"]),
                                      .exec(["no-such-command-apf"])])
        #expect(r[0].stdoutText == "a|1\nb|2\n" && r[0].exitStatus == 0)
        #expect(r[1].exitStatus == 7 && r[1].stderrText == "oops\n")
        #expect(r[2].exitStatus == 127)
        // Installed checksum-named, mode 0700.
        let path = try await helper.install()
        #expect(path.hasPrefix(".apf-agent/helper-") && path.hasSuffix(".sh"))
        let attrs = try FileManager.default.attributesOfItem(atPath: "\(base)/\(path)")
        #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o700)
    }

    @Test func absentIDsGoToTheAccountingCommandInChunks() async throws {
        let helper = RemoteHelper(runner: runner)
        let listing = "1|RUNNING|None|x\\n2_1|PENDING|None|y\\n"  // a printf format: \n becomes a newline there
        let ids = ["1", "2_1", "2_2", "3"] + (10...260).map(String.init)  // more than 200: they travel on stdin
        let r = try await helper.run([
            .exec(["printf", listing]),
            .absent(reference: 0, present: .firstFieldPipe, runs: .chunks(100), argv: ["sh", "-c", "echo \"$1\"", "sh", "-j=@IDS@ n=@N@"], ids: ids),
        ])
        let lines = r[1].stdoutText.split(separator: "\n")
        #expect(lines.count == 3)  // 253 absent IDs in runs of 100
        #expect(lines[0].hasPrefix("-j=2_2,3,10,11,"))
        #expect(lines[0].hasSuffix(" n=100"))
        #expect(lines[2].hasSuffix(" n=53"))
        #expect(!r[1].stdoutText.contains("2_1,") && !r[1].stdoutText.contains("=1,"))
    }

    /// An empty listing (everything finished and forgotten) sends every requested ID to accounting.
    @Test func anEmptyListingLeavesEveryIDAbsent() async throws {
        let helper = RemoteHelper(runner: runner)
        let r = try await helper.run([
            .exec(["true"]),
            .absent(reference: 0, present: .firstFieldPipe, runs: .chunks(100), argv: ["echo", "@IDS@"], ids: ["7_1", "7_2"]),
            .absent(reference: 0, present: .sgeXML, runs: .each, argv: ["echo", "@ID@"], ids: ["8.1", "8.2"]),
        ])
        #expect(r[1].stdoutText == "7_1,7_2\n")
        #expect(r[2].stdoutText == "8\n")
    }

    @Test func sgeAndCondorListingsAreReadForPresentIDs() async throws {
        let helper = RemoteHelper(runner: runner)
        // printf formats: \n becomes a newline in the shell.
        let xml = "<job_list state=\"running\">\\n<JB_job_number>7</JB_job_number>\\n<tasks>1-5:2</tasks>\\n</job_list>\\n"
        let json = "[\\n{\\n  \"ClusterId\": 5,\\n  \"ProcId\": 0\\n}\\n]\\n"
        let r = try await helper.run([
            .exec(["printf", xml]),
            .absent(reference: 0, present: .sgeXML, runs: .each, argv: ["echo", "qacct", "-j", "@ID@"], ids: ["7.1", "7.2", "7.3", "8.1", "8.2"]),
            .exec(["printf", json]),
            .absent(reference: 2, present: .condorJSON, runs: .chunks(100), argv: ["echo", "@CONDORIDS@", "-limit", "@N@"], ids: ["5.0", "5.1", "6.0"]),
        ])
        #expect(r[1].stdoutText == "qacct -j 7\nqacct -j 8\n")
        #expect(r[3].stdoutText == "(ClusterId==5&&ProcId==1)||(ClusterId==6&&ProcId==0) -limit 2\n")
    }

    @Test func aDeletedHelperIsUploadedAgain() async throws {
        let helper = RemoteHelper(runner: runner)
        let path = try await helper.install()
        try FileManager.default.removeItem(atPath: "\(base)/\(path)")
        let r = try await helper.run([.exec(["true"])])
        #expect(r[0].exitStatus == 0)
        #expect(FileManager.default.fileExists(atPath: "\(base)/\(path)"))
    }

    @Test func writeIsAtomicWithItsMode() async throws {
        let helper = RemoteHelper(runner: runner)
        let r = try await helper.run([.write(path: "\(base)/script.sh", mode: 0o750), .exec(["cat", "\(base)/script.sh"])],
                                     stdin: Array("#!/bin/sh\necho hi\n".utf8))
        #expect(r[0].exitStatus == 0 && r[1].stdoutText == "#!/bin/sh\necho hi\n")
        let attrs = try FileManager.default.attributesOfItem(atPath: "\(base)/script.sh")
        #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o750)
    }

    /// `prepare` stages the wrapper and launcher; running the launcher shows what a pilot receives.
    @Test func stagedLauncherGivesThePilotItsIdentityArgumentsAndEnvironment() async throws {
        let wrapper = "#!/bin/sh\nfor a in \"$@\"; do printf 'arg=%s\\n' \"$a\"; done\nenv | grep -E '^(APF_(CLIENT_ID|QUEUE|FACTORY|WORKDIR|CORES|WALLTIME_SECONDS)|PANDA_URL)=' | sort\n"
        let spec = QueueSpec(name: "ANALY_X", factory: "fac'tory", tag: .t("lt"),
                             payload: .wrapper(PilotWrapper(name: "pilot-wrapper", content: Array(wrapper.utf8),
                                                            arguments: ["--queue", "{queue}", "id={client_id}", "$HOME;`x`"],
                                                            environment: [("PANDA_URL", "https://p/{factory}/{client_id}")])),
                             options: BatchOptions(walltime: .seconds(7200), cores: 4))
        let backend = SlurmBackend(runner: runner, tag: .t("lt"))
        let prepared = try await backend.prepare(spec)
        #expect(prepared.workDirectory == "\(base)/.apf-agent/work")
        #expect(prepared.payloadPaths[0].hasPrefix("\(base)/.apf-agent/work/pilot-wrapper-"))
        let again = try await backend.prepare(spec)
        #expect(again.launcherPath == prepared.launcherPath)  // content-addressed: same content, same file
        let id = ClientIDMinter(tag: .t("lt")).mint()
        let out = try await runner.run(RemoteCommand([prepared.launcherPath], environment: [("APF_CLIENT_ID", id.description)]))
        #expect(out.exitStatus == 0)
        #expect(out.stdoutText == """
            arg=--queue
            arg=ANALY_X
            arg=id=\(id)
            arg=$HOME;`x`
            APF_CLIENT_ID=\(id)
            APF_CORES=4
            APF_FACTORY=fac'tory
            APF_QUEUE=ANALY_X
            APF_WALLTIME_SECONDS=7200
            APF_WORKDIR=\(base)/.apf-agent/work
            PANDA_URL=https://p/fac'tory/\(id)

            """)
        // Without a client ID the launcher refuses to start a pilot.
        let bare = try await runner.run(RemoteCommand([prepared.launcherPath]))
        #expect(bare.exitStatus != 0)
    }

    @Test func arrayScriptSelectsTheTasksClientID() async throws {
        let ids = ClientIDMinter(tag: .t("lt")).mint(count: 3)
        let script = Scripts.arrayScript(pilots: ids, indexVariable: "SGE_TASK_ID", launcherPath: "/usr/bin/env")
        let path = try await runner.install(script, directory: "s", prefix: "array-", suffix: ".sh", mode: 0o755)
        let r = try await runner.run(RemoteCommand(["\(base)/\(path)"], environment: [("SGE_TASK_ID", "2")]))
        #expect(r.stdoutText.contains("APF_CLIENT_ID=\(ids[1])\n"))
        let bad = try await runner.run(RemoteCommand(["\(base)/\(path)"], environment: [("SGE_TASK_ID", "4")]))
        #expect(bad.exitStatus == 97)
    }

    @Test func localRunnerTimesOutAndReportsThatTheCommandMayHaveRun() async throws {
        let start = ContinuousClock.now
        await #expect(throws: SSHError.self) {
            _ = try await runner.run(RemoteCommand(["sleep", "30"], timeout: .milliseconds(300)))
        }
        #expect(ContinuousClock.now - start < .seconds(10))
        do {
            _ = try await runner.run(RemoteCommand(["/no/such/binary"]))
            Issue.record("spawning a missing binary must fail")
        } catch {
            #expect(!error.commandMayHaveRun)
        }
    }
}
