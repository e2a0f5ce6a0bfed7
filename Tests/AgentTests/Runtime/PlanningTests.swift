import Agent
import AuthProfiles
import Foundation
import Logging
import SSHSubmit
import Synchronization
import Testing
import TestSupport

/// How queue descriptions become targets: APF's CondorSSH keys, local submitters, store targets (named, local),
/// and tenancy.
@Suite(.timeLimit(.minutes(1)))
struct PlanningTests {
    final class Plans: Sendable {
        let m = Mutex<[String: TargetPlan]>([:])
        var all: [String: TargetPlan] { m.withLock { $0 } }
    }

    static func factory(_ config: AgentConfig, store: ProfileStore? = nil) throws -> (Factory, Plans) {
        let plans = Plans()
        let env = FactoryEnvironment(
            journal: try AgentStore.inMemory(),
            resolver: store.map { TargetResolver(store: $0, pools: SSHPools(logger: .silent)) },
            clock: ManualClock().status, logger: .silent,
            makeBackend: { (plan) throws(FactoryError) -> any BatchBackend in
                plans.m.withLock { $0[plan.name] = plan }
                return SimulatedBatchBackend(target: plan.name, tag: try! FactoryTag("sim"), system: plan.system)
            },
            makeDemandSource: { _ in InMemoryDemandSource() })
        return (try Factory(config: config, environment: env), plans)
    }

    /// VC3's CondorSSH queue becomes a target `user@host:port/batch` with the auth.conf profile; two queues with the
    /// same description share it.
    @Test func condorSSHQueuesMapOntoOneSharedTarget() throws {
        let queues = """
            [Q1]
            wmsqueue = Q1
            batchsubmit.condorssh.host = login.example.org
            batchsubmit.condorssh.port = 2222
            batchsubmit.condorssh.batch = sge

            [Q2]
            wmsqueue = Q2
            batchsubmit.condorssh.host = login.example.org
            batchsubmit.condorssh.port = 2222
            batchsubmit.condorssh.batch = sge

            """
        let (f, plans) = try Self.factory(SimConfig.load(queues: queues))
        #expect(f.queueProblems.isEmpty)
        let p = try #require(plans.all["apftest@login.example.org:2222/sge"])
        #expect(plans.all.count == 1)
        #expect(p.system == .sge && p.tenant == "default")
        guard case .mapped(let d) = p.access else { Issue.record("\(p.access)"); return }
        #expect(d.profile == "sim-key" && d.port == 2222)
    }

    /// Local submitters run in local mode on an implicit `local:<batch>` target.
    @Test func localSubmittersMapToLocalMode() throws {
        let queues = """
            [L1]
            wmsqueue = L1
            batchsubmitplugin = Local
            batchsubmit.local.batch = slurm

            [L2]
            wmsqueue = L2
            batchsubmitplugin = CondorLocal

            """
        let (f, plans) = try Self.factory(SimConfig.load(queues: queues))
        #expect(f.queueProblems.isEmpty)
        #expect(plans.all["local:slurm"]?.access == .local && plans.all["local:slurm"]?.system == .slurm)
        #expect(plans.all["local:condor"]?.system == .htcondor && plans.all["local:condor"]?.tenant == nil)
    }

    /// Store targets: a named SSH target of the queue's tenant; a `local` target (this machine) reached by a Local
    /// queue with `target = NAME`; a local target named by an SSH queue, and another tenant's target, are refused with
    /// their own error while the other queues run.
    @Test func storeTargetsLocalTargetsAndTenancy() throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("apf-plan-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: home) }
        let store = ProfileStore(home: home)
        try store.addTenant(Tenant(name: "atlas"))
        try store.addTenant(Tenant(name: "cms"))
        try store.addTarget(Target(name: "here", tenant: "atlas", host: nil, user: nil, batch: .local, partition: "debug",
                                   profile: nil, limits: TargetLimits(maxPilots: 7)))
        let queues = """
            [OK-LOCAL]
            tenant = atlas
            wmsqueue = A
            batchsubmitplugin = Local
            batchsubmit.local.batch = slurm
            target = here

            [SSH-TO-LOCAL]
            tenant = atlas
            wmsqueue = B
            batchsubmitplugin = SSH
            target = here

            [OTHER-TENANT]
            tenant = cms
            wmsqueue = C
            batchsubmitplugin = Local
            batchsubmit.local.batch = slurm
            target = here

            [NO-SUCH]
            tenant = atlas
            wmsqueue = D
            batchsubmitplugin = SSH
            target = nowhere

            """
        let config = SimConfig.load(queues: queues)
        #expect(config.isValid, "\(config.errors)")
        let (f, plans) = try Self.factory(config, store: store)
        let p = try #require(plans.all["here"])
        #expect(p.access == .local && p.system == .slurm && p.tenant == "atlas" && p.partition == "debug")
        #expect(p.limits.maxPilots == 7)
        let problems = f.queueProblems
        #expect(problems["OK-LOCAL"] == nil)
        #expect(problems["SSH-TO-LOCAL"]?.code == .target)
        #expect(problems["SSH-TO-LOCAL"]?.message.contains("use batchsubmitplugin = Local") == true)
        #expect(problems["OTHER-TENANT"]?.code == .tenancy)
        #expect(problems["NO-SUCH"]?.code == .target)
        let status = try f.status()
        #expect(status.queues.first { $0.name == "OTHER-TENANT" }?.state == "not started")
        #expect(status.queues.first { $0.name == "OK-LOCAL" }?.state == "enabled")
    }

    /// An invalid configuration cannot build a factory; a reload with one keeps the running configuration, and a
    /// valid one starts, stops and changes queues.
    @Test func reloadAppliesOnlyValidConfigurations() async throws {
        let sim = try SimFactory(SimConfig.load(queues: "[Q1]\nwmsqueue = Q1\nbatchsubmit.condorssh.host = h1\n"))
        let broken = SimConfig.load(queues: "[Q1]\nwmsqueue = Q1\nbatchsubmit.condorssh.host = h1\nschedplugin = Redy\n")
        #expect(!broken.isValid)
        #expect(throws: FactoryError(.invalidConfig, "")) { try Factory(config: broken, environment: sim.factory.environment) }
        guard case .failure(let e) = sim.factory.reload(broken) else { Issue.record("accepted a broken config"); return }
        #expect(e.message.contains("Redy"))
        #expect(sim.factory.queueNames == ["Q1"])
        let next = SimConfig.load(queues: "[Q2]\nwmsqueue = Q2\nbatchsubmit.condorssh.host = h2\n")
        guard case .success(let r) = sim.factory.reload(next) else { Issue.record("refused a valid config"); return }
        #expect(r.started == ["Q2"] && r.stopped == ["Q1"])
        sim.demand.set("Q2", ready: 1)
        let cycles = await sim.cycle()
        #expect(Set(cycles.keys) == ["Q2"])
    }

    /// `queue disable` (a journal switch) stops a queue's cycles without touching the others; `enable` resumes it.
    @Test func queueSwitchesFromTheJournal() async throws {
        let sim = try SimFactory(SimConfig.load(queues: "[Q1]\nwmsqueue = Q1\nbatchsubmit.condorssh.host = h1\n\n[Q2]\nwmsqueue = Q2\nbatchsubmit.condorssh.host = h1\n"))
        sim.demand.set("Q1", ready: 1)
        sim.demand.set("Q2", ready: 1)
        try sim.journal.setQueueControl("Q1", enabled: false, note: "test", at: sim.manual.now)
        sim.factory.reloadQueueControls()
        #expect(Set(await sim.cycle().keys) == ["Q2"])
        #expect(try sim.factory.status().queues.first { $0.name == "Q1" }?.state == "disabled")
        try sim.journal.setQueueControl("Q1", enabled: true, note: nil, at: sim.manual.now)
        sim.factory.reloadQueueControls()
        #expect(Set(await sim.cycle().keys) == ["Q1", "Q2"])
    }
}
