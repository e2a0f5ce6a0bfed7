import Agent
import Foundation
import Testing

/// The checker against configurations shaped like real APF and VC3 deployments. Each fixture mirrors a published
/// file (structure and every key, our own values); Fixtures/SOURCES.md names the repository, path and commit.
struct PublishedShapeTests {
    /// Mirrors bnl-sdcc/autopyfactory @ f1ea38d8, etc/queues.conf: APF's published example passes.
    @Test func apfPublishedExampleQueuesConfPasses() {
        let c = loadFixture("apf-2.4-etc/queues.conf")
        #expect(c.isValid, "\(c.errors)")
        #expect(c.queues.isEmpty)
        // What it does contain is reported: keys of removed plugins, a key CondorEC2 never read, no queues yet.
        #expect(c.diagnostics(.ignoredKey).compactMap(\.key) == [
            "sched.trivial.default", "sched.simple.default", "sched.activated.default",
            "sched.activated.testmode.allowed", "sched.activated.testmode.pilots", "batchsubmit.condorec2.proxy",
        ])
        #expect(c.diagnostics(.noQueues).count == 1)
        #expect(c.diagnostics(.unknownKey).isEmpty)
    }

    /// Mirrors the whole etc/ directory of the same commit (autopyfactory.conf, queues.conf, auth.conf, monitor.conf).
    @Test func apfPublishedEtcDirectoryPasses() {
        let c = loadFixture("apf-2.4-etc")
        #expect(c.isValid, "\(c.errors)")
        #expect(c.files.map(\.kind) == [.factory, .auth, .monitor, .queues])
        #expect(c.factory.factoryId == "TESTSITE-host-operator")
        #expect(c.factory.panda.sleep == 120 && c.factory.panda.maxAge == 300)
        #expect(c.monitors.map(\.name) == ["test-monitor", "apfmon-test"])
        // queueConf = file:///etc/autopyfactory/queues.conf does not exist here: the directory's file is used.
        #expect(c.diagnostics(.notRead).contains { $0.key == "queueConf" })
        // proxymanager keys and mappingsConf are reported as ignored, not unknown.
        #expect(c.diagnostics(.unknownKey).isEmpty)
        #expect(Set(c.diagnostics(.ignoredKey).compactMap(\.key)).isSuperset(of: ["proxyConf", "mappingsConf"]))
    }

    /// Mirrors etc/queues.conf with its five commented example queues uncommented.
    @Test func apfExampleQueuesAreAllListedWithTheirOwnProblems() throws {
        let c = loadFixture("apf-2.4-examples")
        #expect(c.queues.map(\.name) == ["TEST_LOCAL-pool", "TEST_SLURM_SSH", "TEST_GRAM_1", "TEST-CREAM-ce01-pbs-1", "TEST_ARC"])
        #expect(c.queues.allSatisfy { !$0.enabled })
        let byName = Dictionary(uniqueKeysWithValues: c.queues.map { ($0.name, $0) })
        // `batchsubmit = CondorLocal` is not a key: the queue inherits CondorOSGCE from [DEFAULT].
        let local = try #require(byName["TEST_LOCAL-pool"])
        #expect(local.submitPlugin == "CondorOSGCE")
        #expect(c.diagnostics(.unknownKey).contains { $0.key == "batchsubmit" && $0.suggestion == "batchsubmitplugin" })
        // The GRAM example never names its submitter either.
        #expect(byName["TEST_GRAM_1"]?.submitPlugin == "CondorOSGCE")
        #expect(byName["TEST-CREAM-ce01-pbs-1"]?.submitPlugin == "CondorCREAM")
        #expect(byName["TEST_ARC"]?.submitPlugin == "CondorNordugrid")
        let notYet = c.diagnostics(.notSupportedYet).compactMap(\.section)
        #expect(Set(notYet) == ["TEST_LOCAL-pool", "TEST_GRAM_1", "TEST-CREAM-ce01-pbs-1", "TEST_ARC"])
        // The CondorSSH example names an auth profile the example auth.conf does not define.
        let ssh = c.diagnostics(.unknownProfile)
        #expect(ssh.map(\.section) == ["TEST_SLURM_SSH"])
        // Every chain builds; the CondorSSH example sets none and inherits `Ready` from [DEFAULT].
        #expect(c.queues.map { $0.chain?.names.count } == [4, 1, 4, 4, 4])
        // auth.conf: the SSH example inherits plugin = X509 (APF.md §11); osgvo lacks its proxy file.
        #expect(c.diagnostics(.conflict).contains { $0.section == "ssh-apftest-login" })
        #expect(c.diagnostics(.missingKey).contains { $0.section == "testosg" && $0.key == "x509.proxyfile" })
        #expect(!c.isValid)
    }

    /// Mirrors etc/queues-dev.conf: a local HTCondor queue with KeepNRunning and a negative MinPerCycle.
    @Test func apfDevQueuePasses() throws {
        let c = loadFixture("apf-2.4-dev/queues-dev.conf")
        #expect(c.isValid, "\(c.errors)")
        let q = try #require(c.queues.first)
        #expect(q.name == "dev-localcondor")
        #expect(q.wmsQueue == nil)
        #expect(q.wmsStatus == WMSStatusConfig.none)
        #expect(q.submit == .local(batch: "condor"))
        #expect(q.retire.mode == .floor)
        #expect(q.cycleInterval == 45)
        let d = try #require(q.chain).decide(.simulated(activated: 0, pending: 0, running: 1))
        // KeepNRunning 4 − 1 = 3 → MinPerCycle max(3, −3) = 3 → MaxPerCycle min(3, 3) → MaxPending (no pending) 3.
        #expect(d.final == 3)
    }

    /// Mirrors etc/agisdefaults.conf as the [DEFAULT] of a generated queue.
    @Test func agisDefaultsAreCheckedWithTheirDuplicateLine() {
        let c = loadFixture("apf-2.4-dev/agis-generated.conf")
        #expect(c.diagnostics(.duplicateKey).map(\.key) == ["schedplugin"])
        #expect(c.queues.first?.schedPlugins == [
            "Ready", "Scale", "MaxPerCycle", "MinPerCycle", "StatusTest", "StatusOffline", "MaxPending",
        ])
        #expect(c.queues.first?.extraAttributes.map(\.key) == ["requirements", "periodic_hold", "periodic_remove", "+maxMemory", "+xcount"])
        #expect(c.diagnostics(.notSupportedYet).first?.message.contains("CondorOSGCE") == true)
        #expect(Set(c.diagnostics(.ignoredKey).compactMap(\.key)).isSuperset(of: ["status", "override"]))
    }

    /// Mirrors vc3-project/example-configurations @ f64b4f26, midway_coreos_september_demo/apf/.
    @Test func vc3DeploymentRunsUnchanged() throws {
        let c = loadFixture("vc3-midway")
        #expect(c.isValid, "\(c.errors)")
        #expect(c.queues.map(\.name) == ["TEST-CLUSTER-SSH", "TEST-POOL-SSH", "TEST-CLUSTER-SSH-WATCH"])
        #expect(c.mappedTargets.map(\.name) == ["apftest@login1.example.org:22/pbs", "apftest@pool.example.org:2222/condor"])
        #expect(c.mappedTargets.map(\.profile) == ["apftest-cluster", "apftest-pool"])
        let pool = try #require(c.queue(named: "TEST-POOL-SSH"))
        #expect(pool.extraAttributes.first?.key == "transfer_input_files")
        #expect(pool.arguments?.contains("-c collector.example.org -C collector.example.org") == true)
        // The watching queue reads an HTCondor pool; its queryargs were ignored by APF 2.4 and are reported.
        #expect(c.queue(named: "TEST-CLUSTER-SSH-WATCH")?.wmsStatusPlugin == "Condor")
        #expect(c.diagnostics(.ignoredKey).contains { $0.key == "wmsstatus.condor.queryargs" })
        // VC3's config and monitor plugins are recognised and reported, not unknown.
        #expect(c.diagnostics(.notSupportedYet).contains { $0.value == "VC3" && $0.key == "config.queues.plugin" })
        #expect(c.diagnostics(.unknownKey).isEmpty)
        // An RSA key is flagged for libssh2 1.10.
        #expect(c.diagnostics(.keyType).map(\.section) == ["apftest-cluster"])
    }

    /// Mirrors condor-static-apf-ssh-slurm-glideins-midway/apf/ of the same commit, plus vc3defaults.conf and the
    /// CondorSSHRemoteManager keys vc3-master wrote.
    @Test func vc3StaticAndGeneratedQueuesRunUnchanged() throws {
        let c = loadFixture("vc3-static/queues.conf", "vc3-static/vc3-generated.conf", "vc3-static/auth.conf")
        #expect(c.isValid, "\(c.errors)")
        let q = try #require(c.queue(named: "TEST_CLUSTER1"))
        #expect(q.enabled)  // `enabled = true`, lower case
        #expect(q.batchQueue == nil)  // `None`
        #expect(q.schedPlugins == ["Ready", "Scale", "MaxPerCycle", "MaxPending"])
        #expect(c.authProfiles.first.map { p -> String? in
            if case .ssh(let s)? = p.kind { return s.privateKeyFile }
            return nil
        } == "/home/tester/.ssh/id_login2")
        let g = try #require(c.queue(named: "request1.nodes1"))
        #expect(g.executable == "/opt/test/vc3-builder")
        #expect(g.retire.mode == .cancel)
        #expect(g.retire.order == .oldest)
        #expect(g.extraAttributes.count == 4)
        #expect(c.mappedTargets.map(\.name) == ["apftest@login2.example.org:22/slurm", "apftest@login3.example.org:22/slurm"])
    }

    @Test func jsonHasTheDocumentedShape() throws {
        let c = loadFixture("apf-2.4-examples")
        let text = ConfigReport.json(c).rendered()
        #expect(text.hasPrefix("{\"queues\":[{\"name\":\"TEST_LOCAL-pool\",\"enabled\":false,\"wmsstatus\":\"Panda\",\"batchstatus\":\"Condor\",\"sched\":[\"Ready\",\"MinPerCycle\",\"MaxPerCycle\",\"MaxPending\"],\"submit\":\"CondorOSGCE\"}"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["queues", "errors", "warnings"])
        let queues = try #require(object["queues"] as? [[String: Any]])
        #expect(queues.count == 5)
        #expect(queues.allSatisfy { Set($0.keys) == ["name", "enabled", "wmsstatus", "batchstatus", "sched", "submit"] })
        let errors = try #require(object["errors"] as? [[String: Any]])
        #expect(errors.count == c.errors.count)
        #expect(errors.allSatisfy { $0["file"] is String && $0["line"] is Int && $0["message"] is String })
    }

    @Test func textReportListsQueuesThenProblemsThenVerdict() {
        let text = ConfigReport.text(loadFixture("apf-2.4-examples"))
        #expect(text.contains("TEST_ARC"))
        #expect(text.contains("errors:"))
        #expect(text.contains("queues.conf:"))
        #expect(text.hasSuffix("INVALID"))
    }
}

/// `apf-agent config check` itself, when the build produced the executable next to the tests.
@Suite(.enabled(if: BuiltCLI.available, "the apf-agent executable was not built next to the tests"))
struct ConfigCheckCLITests {
    @Test func exitStatusIs0WhenValidAnd2Otherwise() throws {
        let ok = try BuiltCLI.run(["config", "check", Fixture.path("apf-2.4-etc/queues.conf")])
        #expect(ok.status == 0, "\(ok.out)\(ok.err)")
        #expect(ok.out.contains("valid"))
        let bad = try BuiltCLI.run(["config", "check", "--json", Fixture.path("apf-2.4-examples")])
        #expect(bad.status == 2)
        let object = try JSONSerialization.jsonObject(with: Data(bad.out.utf8)) as? [String: Any]
        #expect((object?["queues"] as? [Any])?.count == 5)
    }
}

/// The real published files, read in place when someone provides them (they are not checked in; see
/// Fixtures/SOURCES.md): `APF_PUBLISHED_CONFIGS=<dir>` or /work/shared/fixtures/apf-config with etc/queues.conf.
@Suite(.enabled(if: PublishedFiles.dir != nil, "no directory of published APF configs (APF_PUBLISHED_CONFIGS)"))
struct PublishedConfigTests {
    @Test func publishedExampleQueuesConfPasses() throws {
        let dir = try #require(PublishedFiles.dir)
        let c = ConfigLoader().load(paths: [dir + "/etc/queues.conf"])
        #expect(c.isValid, "\(c.errors)")
    }
}

enum PublishedFiles {
    static let dir: String? = {
        let candidates = [ProcessInfo.processInfo.environment["APF_PUBLISHED_CONFIGS"], "/work/shared/fixtures/apf-config"]
        return candidates.compactMap { $0 }.first { FileManager.default.fileExists(atPath: $0 + "/etc/queues.conf") }
    }()
}
