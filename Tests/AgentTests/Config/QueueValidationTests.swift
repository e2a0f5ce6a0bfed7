import AuthProfiles
@testable import Agent
import Foundation
import Testing

/// A minimal valid queue in our own terms, to vary one key at a time.
private let base = """
    [DEFAULT]
    enabled = True
    wmsqueue = SITE
    wmsstatusplugin = Panda
    batchstatusplugin = Condor
    schedplugin = Ready, MaxPerCycle
    sched.maxpercycle.maximum = 10
    batchsubmitplugin = Local
    batchsubmit.local.batch = slurm
    executable = /opt/pilot.sh

    """

private func queues(_ body: String, auth: String? = nil, monitor: String? = nil) -> AgentConfig {
    var files = ["/c/queues.conf": base + body]
    if let auth { files["/c/auth.conf"] = auth }
    if let monitor { files["/c/monitor.conf"] = monitor }
    return loadMemory(files)
}

struct TypedValidationTests {
    @Test func validQueueIsTyped() {
        let c = queues("[Q]\napfqueue.sleep = 120\nsched.ready.offset = 5\n")
        #expect(c.isValid, "\(c.errors)")
        let q = c.queues[0]
        #expect(q.enabled)
        #expect(q.cycleInterval == 120)
        #expect(q.wmsStatus == .panda(site: "SITE"))
        #expect(q.submit == .local(batch: "slurm"))
        #expect(q.chain?.names == ["Ready", "MaxPerCycle"])
        #expect((q.chain?.steps[0] as? Ready)?.offset == 5)
        #expect((q.chain?.steps[1] as? MaxPerCycle)?.maximum == 10)
        #expect(q.tenant == "default")
    }

    @Test func notANumberNamesFileLineKeyValue() {
        let c = queues("[Q]\nsched.maxpercycle.maximum = fifty\n")
        let e = c.diagnostics(.notANumber)
        #expect(e.count == 1)
        #expect(e[0].file == "/c/queues.conf")
        #expect(e[0].line == 12)
        #expect(e[0].section == "Q")
        #expect(e[0].key == "sched.maxpercycle.maximum")
        #expect(e[0].value == "fifty")
        #expect(e[0].isError)
        #expect(!c.isValid)
        #expect(c.queues[0].chain == nil)
        #expect(!c.queues[0].isUsable)
    }

    @Test func badChoiceListsTheValidChoices() {
        let c = queues("[Q]\nretire.policy = sometimes\n")
        let e = c.diagnostics(.badChoice)
        #expect(e.count == 1)
        #expect(e[0].choices == ["cancel-idle", "cancel", "floor"])
        #expect(e[0].description.contains("(valid: cancel-idle, cancel, floor)"))
    }

    @Test func booleanAndRangeErrors() {
        let c = queues("[Q]\nenabled = perhaps\napfqueue.sleep = 0\nsched.throttle.ratio = 1.5\n")
        #expect(c.diagnostics(.notABoolean).map(\.key) == ["enabled"])
        #expect(Set(c.diagnostics(.outOfRange).compactMap(\.key)) == ["apfqueue.sleep", "sched.throttle.ratio"])
    }

    @Test func noneMeansUnset() {
        let c = queues("[Q]\nsched.maxpercycle.maximum = None\nwmsstatusplugin = None\nschedplugin = KeepNRunning\n")
        #expect(c.isValid, "\(c.errors)")
        #expect(c.queues[0].wmsStatus == WMSStatusConfig.none)
        #expect(c.queues[0].wmsStatusPlugin == "None")
    }

    @Test func badValueInDefaultIsReportedOnceForAllQueues() {
        let c = loadMemory([
            "/c/queues.conf": base.replacingOccurrences(of: "maximum = 10", with: "maximum = ten") + "[A]\n[B]\n[C]\n"
        ])
        let e = c.diagnostics(.notANumber)
        #expect(e.count == 1)
        #expect(e[0].section == "DEFAULT")
        #expect(e[0].line == 7)
        #expect(c.queues.count == 3)
        #expect(c.queues.allSatisfy { !$0.isUsable })
    }
}

struct UnknownKeyTests {
    @Test func unknownKeyIsAWarningWithTheNearestKey() {
        let c = queues("[Q]\nbatchsubmit.local.peacefull = True\nwmsqueu = X\n")
        #expect(c.isValid)
        let w = c.diagnostics(.unknownKey)
        #expect(w.map(\.suggestion) == ["batchsubmit.local.peaceful", "wmsqueue"])
        #expect(w.allSatisfy { $0.severity == .warning })
        #expect(w[0].description.contains("did you mean 'batchsubmit.local.peaceful'?"))
    }

    @Test func apfsOwnTypoBatchsubmitSuggestsBatchsubmitplugin() {
        let c = queues("[Q]\nbatchsubmit = CondorLocal\n")
        #expect(c.diagnostics(.unknownKey).first?.suggestion == "batchsubmitplugin")
    }

    @Test func keysUsedAsInterpolationVariablesAreNotUnknown() {
        let c = queues("[Q]\ncollector = pool.example.org\nexecutable.arguments = -c %(collector)s\n")
        #expect(c.diagnostics(.unknownKey).isEmpty)
        #expect(c.queues[0].arguments == "-c pool.example.org")
    }

    @Test func removedPluginParametersAreIgnoredWithAReason() {
        let c = queues("[Q]\nsched.activated.default = 0\nsched.statustest.allowed = True\n")
        let w = c.diagnostics(.ignoredKey)
        #expect(w.count == 2)
        #expect(w[0].message.contains("Activated"))
        #expect(w[1].message.contains("never read it"))
    }

    @Test func misspeltPluginParameterGetsItsPlugin() {
        let c = queues("[Q]\nsched.maxpercycle.maximun = 3\n")
        #expect(c.diagnostics(.unknownKey).first?.suggestion == "sched.maxpercycle.maximum")
    }
}

struct LeafPrefixedKeyTests {
    @Test func genericKeysWrittenUnderTheLeafAreAccepted() {
        // condorosgce → condorce → condorgrid → condorbase: environ, proxy, condor_attributes are parents' keys.
        for key in [
            "batchsubmit.condorosgce.environ", "batchsubmit.condorosgce.proxy", "batchsubmit.condorgt2.submitargs",
            "batchsubmit.condorcream.condor_attributes", "batchsubmit.condorlsf.proxyfile",
            "batchsubmit.condorssh.killorder", "batchsubmit.condorlocal.condor_attributes.+maxMemory",
            "batchsubmit.condorgram.gram.queue", "globusrsl.gram5.max_wall_time", "nordugridrsl.addenv.X",
        ] {
            if case .known = KeyCatalog.lookupQueueKey(key) {} else { Issue.record("\(key) not accepted") }
        }
    }

    @Test func keysOutsideTheClassTreeAreNot() {
        guard case .ignored(let why) = KeyCatalog.lookupQueueKey("batchsubmit.condorec2.proxy") else {
            Issue.record("batchsubmit.condorec2.proxy should be ignored with a reason")
            return
        }
        #expect(why.contains("condorec2 → condorbase"))
        guard case .ignored(let why2) = KeyCatalog.lookupQueueKey("batchsubmit.condorlocal.gridresource") else {
            Issue.record("gridresource is not a CondorLocal key")
            return
        }
        #expect(why2.contains("CondorLocal does not read 'gridresource'"))
    }

    @Test func leafValueWinsOverParentValueForEnvironAndAttributes() {
        let c = queues(
            """
            [Q]
            batchsubmitplugin = CondorLocal
            batchsubmit.condorbase.environ = A=parent
            batchsubmit.condorlocal.environ = A=leaf
            batchsubmit.condorlocal.condor_attributes = request_memory = 1000, +Note = "a\\, b"
            batchsubmit.condorlocal.condor_attributes.+maxWallTime = 600

            """)
        let q = c.queues[0]
        #expect(q.environ == "A=leaf")
        #expect(q.extraAttributes.map(\.key) == ["request_memory", "+Note", "+maxWallTime"])
        #expect(q.extraAttributes.map(\.value) == ["1000", "\"a, b\"", "600"])
        #expect(q.submit == .local(batch: "condor"))
    }
}

struct PluginRecognitionTests {
    @Test(arguments: PluginCatalog.schedPlugins.keys.sorted())
    func everyPortedSchedulerPluginBuilds(name: String) {
        let c = queues("[Q]\nschedplugin = \(name)\nsched.fixed.pilotspercycle = 1\nsched.maxpercycle.maximum = 1\n")
        #expect(c.errors.isEmpty, "\(c.errors)")
        #expect(c.queues[0].chain?.names == [name])
    }

    @Test(arguments: ["KeepNQueueLife", "MaxToSubmit", "MinToSubmit", "Activated", "Simple", "Trivial", "SimpleNQueue"])
    func stubsAndRemovedPluginsAreRecognisedNotUnknown(name: String) {
        let c = queues("[Q]\nschedplugin = Ready, \(name)\n")
        #expect(c.diagnostics(.removedPlugin).count == 1)
        #expect(c.diagnostics(.unknownPlugin).isEmpty)
    }

    @Test func pluginNamesAreCaseSensitive() {
        let c = queues("[Q]\nschedplugin = ready\n")
        let e = c.diagnostics(.unknownPlugin)
        #expect(e.first?.suggestion == "Ready")
        #expect(e.first?.choices?.contains("MaxPerCycle") == true)
    }

    @Test(arguments: [
        "CondorOSGCE", "CondorGT2", "CondorGT5", "CondorCREAM", "CondorNordugrid", "CondorEC2", "CondorDeltaCloud",
    ])
    func condorGSubmittersAreNotSupportedYetNeverUnknown(name: String) {
        let c = queues("[Q]\nbatchsubmitplugin = \(name)\n")
        let e = c.diagnostics(.notSupportedYet)
        #expect(e.count == 1)
        #expect(e[0].message.contains("not supported yet"))
        #expect(c.diagnostics(.unknownPlugin).isEmpty)
        #expect(c.queues[0].submitPlugin == name)
        #expect(c.queues[0].submit == nil)
    }

    @Test(arguments: [("CondorLocal", "condor"), ("CondorPBS", "pbs")])
    func localCondorSubmittersMapToLocalMode(name: String, batch: String) {
        let c = queues("[Q]\nbatchsubmitplugin = \(name)\n")
        #expect(c.isValid, "\(c.errors)")
        #expect(c.queues[0].submit == .local(batch: batch))
    }

    @Test func condorLSFMapsToLocalModeButHasNoDriverYet() {
        let c = queues("[Q]\nbatchsubmitplugin = CondorLSF\n")
        #expect(c.diagnostics(.notSupportedYet).first?.message.contains("LSF") == true)
    }

    @Test func abstractAndBrokenSubmitters() {
        let c = queues("[A]\nbatchsubmitplugin = CondorGrid\n[B]\nbatchsubmitplugin = Exec\n[C]\nbatchsubmitplugin = CondorSsh\n")
        #expect(c.errors.count == 3)
        #expect(c.errors[0].message.contains("intermediate class"))
        #expect(c.errors[1].message.contains("could never load"))
        #expect(c.errors[2].suggestion == "CondorSSH")
    }

    @Test func wmsStatusPlugins() {
        let c = queues(
            """
            [P]
            wmsstatusplugin = Panda
            [C]
            wmsstatusplugin = Condor
            wmsstatus.condor.scheddhost = schedd.example.org
            wmsstatus.condor.collectorport = 9619
            [Q]
            wmsstatusplugin = Queue
            [X]
            wmsstatusplugin = Command
            wmsstatus.command.run = /usr/bin/demand --queue 'my queue'
            [H]
            wmsstatusplugin = HTTP
            wmsstatus.http.url = https://demand.example.org/q.json
            [B]
            wmsstatusplugin = Batch
            wmsstatus.batch.partition = waiting
            target = cluster1
            [U]
            wmsstatusplugin = Pandas

            """)
        let byName = Dictionary(uniqueKeysWithValues: c.queues.map { ($0.name, $0) })
        #expect(byName["P"]?.wmsStatus == .panda(site: "SITE"))
        #expect(
            byName["C"]?.wmsStatus
                == .condor(
                    CondorPool(
                        scheddHost: "schedd.example.org", scheddPort: 9618, collectorHost: "localhost",
                        collectorPort: 9619, groupBy: "MATCH_APF_QUEUE"), label: "SITE"))
        #expect(byName["Q"]?.wmsStatus == nil)
        #expect(byName["X"]?.wmsStatus == .command(argv: ["/usr/bin/demand", "--queue", "my queue"], timeout: 30, sleep: 150, maxAge: 360))
        #expect(byName["H"]?.wmsStatus == .http(url: "https://demand.example.org/q.json", timeout: 30, retries: 2, sleep: 150, maxAge: 360))
        #expect(byName["B"]?.wmsStatus == .batch(target: "cluster1", selector: PendingJobSelector(partition: "waiting"), sleep: 150, maxAge: 360))
        #expect(byName["U"]?.wmsStatus == nil)
        #expect(c.diagnostics(.notSupportedYet).map(\.section) == ["Q"])
        #expect(c.diagnostics(.unknownPlugin).first?.suggestion == "Panda")
    }

    @Test func chainNeedingDemandWithoutWMSIsRejected() {
        let c = queues("[Q]\nwmsstatusplugin = None\nschedplugin = Ready, StatusTest\n")
        let e = c.diagnostics(.chainBlocks)
        #expect(e.count == 1)
        #expect(e[0].message.contains("Ready, StatusTest"))
    }

    @Test func limitsWithoutParameterPassThroughWithAWarning() {
        let c = queues("[Q]\nschedplugin = Ready, MaxPending, MaxPerFactory\n")
        #expect(c.isValid)
        #expect(c.diagnostics(.passThrough).count == 2)
    }
}

struct OneBadQueueTests {
    @Test func everyQueueIsListedAndOnlyTheBadOneIsUnusable() {
        let c = queues(
            """
            [GOOD1]
            [BAD]
            schedplugin = Ready, Magic
            sched.ready.offset = x
            [GOOD2]
            wmsqueue = OTHER

            """)
        #expect(c.queues.map(\.name) == ["GOOD1", "BAD", "GOOD2"])
        #expect(c.queues.map(\.isUsable) == [true, false, true])
        #expect(c.queues[1].errorCount == 2)
        #expect(c.errors.allSatisfy { $0.section == "BAD" })
    }

    @Test func oneBadAuthSectionDoesNotHideTheOthers() {
        let auth = """
            [broken]
            ssh.type = ed25519
            [good]
            plugin = SSH
            ssh.privatekeyfile = ~/.ssh/id_good

            """
        let c = queues(
            "[Q]\nbatchsubmitplugin = CondorSSH\nbatchsubmit.condorssh.batch = slurm\nbatchsubmit.condorssh.host = h\nbatchsubmit.condorssh.user = u\nbatchsubmit.condorssh.authprofile = good\n",
            auth: auth)
        #expect(c.authProfiles.map(\.name) == ["broken", "good"])
        #expect(c.authProfiles.map(\.errorCount) == [1, 0])
        #expect(c.queues[0].isUsable, "\(c.errors)")
    }
}

struct CondorSSHMappingTests {
    private let auth = """
        [site-key]
        plugin = SSH
        ssh.type = ed25519
        ssh.privatekeyfile = ~/.ssh/id_site
        ssh.publickeyfile = ~/.ssh/id_site.pub
        ssh.privkeypassfile = ~/.ssh/id_site.pass
        ssh.privkeypass = inline-secret

        [other-tenant]
        plugin = SSH
        tenant = cms
        ssh.privatekeyfile = /keys/cms

        [a-proxy]
        plugin = X509
        x509.proxyfile = /tmp/p
        x509.renew = False

        """

    private func ssh(_ extra: String = "", authprofile: String = "site-key") -> String {
        """
        [Q]
        batchsubmitplugin = CondorSSH
        batchsubmit.condorssh.batch = slurm
        batchsubmit.condorssh.host = login.example.org
        batchsubmit.condorssh.port = 2222
        batchsubmit.condorssh.user = apftest
        batchsubmit.condorssh.authprofile = \(authprofile)
        \(extra)
        """
    }

    @Test func condorSSHBecomesATargetAndAnSSHProfile() {
        let c = queues(ssh(), auth: auth)
        #expect(c.isValid, "\(c.errors)")
        let target = TargetDescription(
            name: "apftest@login.example.org:2222/slurm", tenant: "default", host: "login.example.org", port: 2222,
            user: "apftest", batch: "slurm", profile: "site-key", origin: ConfigLocation(file: "/c/queues.conf", line: 14),
            mappedFrom: "CondorSSH")
        #expect(c.queues[0].submit == .ssh(.mapped(target)))
        #expect(c.mappedTargets == [target])
        guard case .ssh(let p)? = c.authProfiles[0].kind else {
            Issue.record("site-key should be an SSH profile")
            return
        }
        #expect(p.privateKeyFile == "/home/tester/.ssh/id_site")
        #expect(p.publicKeyFile == "/home/tester/.ssh/id_site.pub")
        #expect(p.passphraseFile == "/home/tester/.ssh/id_site.pass")
        #expect(p.keyType == "ed25519")
        #expect(p.inlinePassphrase?.count == 13)
        #expect("\(p.inlinePassphrase!)" == "<redacted>")
    }

    @Test func portDefaultsTo22AndQueuesShareATarget() {
        let body = ssh().replacingOccurrences(of: "batchsubmit.condorssh.port = 2222\n", with: "")
        let c = queues(body + "\n" + body.replacingOccurrences(of: "[Q]", with: "[Q2]"), auth: auth)
        #expect(c.mappedTargets.count == 1)
        #expect(c.mappedTargets[0].port == 22)
    }

    @Test(arguments: ["host", "user", "batch", "authprofile"])
    func missingTargetKeysAreErrors(param: String) {
        let body = ssh().split(separator: "\n").filter { !$0.hasPrefix("batchsubmit.condorssh.\(param) ") }
            .joined(separator: "\n")
        let c = queues(body, auth: auth)
        let e = c.diagnostics(.missingKey)
        #expect(e.map(\.key) == ["batchsubmit.condorssh.\(param)"])
    }

    @Test func batchSystemsAreChecked() {
        let lsf = queues(ssh().replacingOccurrences(of: "batch = slurm", with: "batch = lsf"), auth: auth)
        #expect(lsf.diagnostics(.notSupportedYet).first?.choices == ["slurm", "pbs", "sge", "condor"])
        let bad = queues(ssh().replacingOccurrences(of: "batch = slurm", with: "batch = torque"), auth: auth)
        #expect(bad.diagnostics(.badChoice).first?.choices == ["slurm", "pbs", "lsf", "sge", "condor"])
    }

    @Test func profileMustExistBeSSHAndBelongToTheTenant() {
        let missing = queues(ssh(authprofile: "site-kye"), auth: auth)
        #expect(missing.diagnostics(.unknownProfile).first?.suggestion == "site-key")
        let x509 = queues(ssh(authprofile: "a-proxy"), auth: auth)
        #expect(x509.diagnostics(.wrongProfileKind).count == 1)
        let cross = queues(ssh(authprofile: "other-tenant"), auth: auth)
        let e = cross.diagnostics(.crossTenant)
        #expect(e.count == 1)
        #expect(e[0].message.contains("'default'") && e[0].message.contains("'cms'"))
        let same = queues(ssh("tenant = cms", authprofile: "other-tenant"), auth: auth)
        #expect(same.isValid, "\(same.errors)")
        #expect(same.mappedTargets.first?.tenant == "cms")
    }

    @Test func vc3RemoteManagerIsCondorSSHAndGsisshIsNotYet() {
        let rm = """
            [R]
            batchsubmitplugin = CondorSSHRemoteManager
            batchsubmit.condorsshremotemanager.batch = pbs
            batchsubmit.condorsshremotemanager.method = ssh
            batchsubmit.condorsshremotemanager.host = h.example.org
            batchsubmit.condorsshremotemanager.user = u
            batchsubmit.condorsshremotemanager.authprofile = site-key

            """
        let c = queues(rm, auth: auth)
        #expect(c.isValid, "\(c.errors)")
        #expect(c.mappedTargets.first?.mappedFrom == "CondorSSHRemoteManager")
        let g = queues(rm.replacingOccurrences(of: "method = ssh", with: "method = gsissh"), auth: auth)
        #expect(g.diagnostics(.notSupportedYet).first?.key == "batchsubmit.condorsshremotemanager.method")
    }

    @Test func namedTargetsUseOurSSHSubmitter() {
        let c = queues("[Q]\nbatchsubmitplugin = SSH\ntarget = cluster1\nprofile = site-key\n", auth: auth)
        #expect(c.isValid, "\(c.errors)")
        #expect(c.queues[0].submit == .ssh(.named("cluster1", profile: "site-key")))
        let noTarget = queues("[Q]\nbatchsubmitplugin = SSH\n")
        #expect(noTarget.diagnostics(.missingKey).map(\.key) == ["target"])
        let both = queues(ssh("target = cluster1"), auth: auth)
        #expect(both.diagnostics(.conflict).map(\.key) == ["target"])
    }

    @Test func sshSectionInheritingX509PluginIsFlagged() {
        let c = queues("[Q]\n", auth: "[DEFAULT]\nplugin = X509\n[key]\nssh.privatekeyfile = /k\n")
        #expect(c.diagnostics(.conflict).first?.message.contains("inherits plugin = X509") == true)
    }
}

struct RetirePolicyTests {
    @Test(arguments: [
        ("", RetirePolicy.Mode.cancelIdle, RetirePolicy.Order.newest),
        ("batchsubmit.local.peaceful = True\n", .floor, .newest),
        ("batchsubmit.local.peaceful = False\nbatchsubmit.local.killorder = oldest\n", .cancel, .oldest),
        ("batchsubmit.condorbase.overlay.peaceful = no\n", .cancel, .newest),
        ("retire.policy = floor\nretire.order = oldest\n", .floor, .oldest),
    ])
    func apfPeacefulAndKillorderMapOntoThePolicy(keys: String, mode: RetirePolicy.Mode, order: RetirePolicy.Order) {
        let c = queues("[Q]\n" + keys)
        #expect(c.queues[0].retire.mode == mode)
        #expect(c.queues[0].retire.order == order)
    }

    @Test func idleCancellationAndCap() {
        let c = queues("[Q]\nretire.idle_after = 1800\nretire.max_per_cycle = 20\n")
        #expect(c.queues[0].retire.idleAfter == 1800)
        #expect(c.queues[0].retire.maxPerCycle == 20)
    }
}

struct MiscFileTests {
    @Test func apf1FormatIsRecognisedAndReported() {
        let c = loadFixture("apf-1.3/factory.conf")
        let e = c.diagnostics(.oldFormat)
        #expect(e.count == 1)
        #expect(e[0].message.contains("APF 1.x"))
        #expect(e[0].message.contains("[Pilots]") && e[0].message.contains("[QueueDefaults]"))
        #expect(e[0].line == 8)
        #expect(c.queues.isEmpty)
    }

    @Test func unreadableFileIsAnError() {
        let c = loadMemory([:], paths: ["/nowhere/queues.conf"])
        #expect(c.diagnostics(.unreadable).count == 1)
        #expect(!c.isValid)
    }

    @Test func enabledMissingDisablesWithAWarning() {
        let c = loadMemory([
            "/c/queues.conf": base.replacingOccurrences(of: "enabled = True\n", with: "") + "[Q]\n"
        ])
        #expect(!c.queues[0].enabled)
        #expect(c.diagnostics(.missingKey).first?.severity == .warning)
    }

    @Test func monitorSectionsAreChecked() {
        let c = queues("[Q]\nmonitorsection = mon1, nope\n", monitor: "[mon1]\nmonitorplugin = Dummy\n")
        let w = c.diagnostics(.unknownMonitor)
        #expect(w.count == 1)
        #expect(w[0].message.contains("'nope'"))
        #expect(c.queues[0].monitorSections == ["mon1", "nope"])
    }

    @Test func factoryLimitsSections() {
        let c = loadMemory([
            "/c/autopyfactory.conf": """
                [Factory]
                factoryId = T
                tenant = atlas
                maxperfactory.maximum = 500
                [tenant:atlas]
                limit.running = 1000
                limit.idle = 100
                [target:cluster1]
                limit.concurrency = 2
                backoff.base = 60
                backoff.max = 30

                """
        ])
        #expect(c.factory.tenant == "atlas")
        #expect(c.factory.maxPerFactory == 500)
        #expect(c.tenantLimits.first?.running == 1000)
        #expect(c.targetLimits.first?.concurrency == 2)
        #expect(c.diagnostics(.outOfRange).first?.key == "backoff.max")
    }
}
