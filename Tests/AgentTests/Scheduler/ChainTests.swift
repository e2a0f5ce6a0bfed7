import Agent
import Foundation
import Testing

struct ChainTests {
    /// APF.md §4's example: Ready (40 ready, 12 pending) → Scale 0.25 → MaxPerCycle 50.
    @Test func apfExampleTrace() {
        let chain = SchedulerChain([Ready(), Scale(factor: 0.25), MaxPerCycle(maximum: 50)])
        let d = chain.decide(facts(ready: 40, pending: 12))
        #expect(d.outcome == .submit(7))
        #expect(d.steps.map(\.output) == [28, 7, 7])
        // The field names are those APF 2.4's plugins print (Ready: activated=, MaxPerCycle: maxpercycle=).
        #expect(
            d.trace
                == "Ready:in=0,activated=40,offset=0,pending=12,ret=28;Scale:in=28,factor=0.25,ret=7;MaxPerCycle:in=7,maxpercycle=50,ret=7"
        )
        // APF.md writes the same trace with two fields renamed; nothing else differs.
        let paraphrase = d.trace.replacingOccurrences(of: "activated=", with: "ready=")
            .replacingOccurrences(of: "maxpercycle=", with: "max=")
        #expect(
            paraphrase
                == "Ready:in=0,ready=40,offset=0,pending=12,ret=28;Scale:in=28,factor=0.25,ret=7;MaxPerCycle:in=7,max=50,ret=7")
    }

    /// The production default chain of generated queues (APF.md §4).
    private let production = SchedulerChain([
        Ready(), Scale(factor: 1.0), MaxPerCycle(maximum: 50), MinPerCycle(minimum: 0), StatusTest(pilots: 1),
        StatusOffline(pilots: 0), MaxPending(maximum: 100),
    ])

    @Test(arguments: [
        // ready, pending, status, expected final
        (500, 20, SiteStatus.online, 50), (30, 20, .online, 10), (30, 20, .test, 1), (500, 0, .offline, 0),
        (0, 150, .online, -50), (10, 95, .online, 0),
    ])
    func productionDefaultChain(ready: Int, pending: Int, status: SiteStatus, expected: Int) {
        #expect(production.decide(facts(ready: ready, pending: pending, status: status)).final == expected)
    }

    @Test func negativeRetiresAndOrderMatters() {
        // MaxPending last goes negative when pending exceeds its cap: retire 50.
        #expect(production.decide(facts(ready: 0, pending: 150)).outcome == .retire(50))
        // MinPerCycle after MaxPerCycle guarantees a trickle; before it, the cap wins.
        let trickle = SchedulerChain([Ready(), MaxPerCycle(maximum: 0), MinPerCycle(minimum: 1)])
        let capped = SchedulerChain([Ready(), MinPerCycle(minimum: 1), MaxPerCycle(maximum: 0)])
        #expect(trickle.decide(facts(ready: 100)).final == 1)
        #expect(capped.decide(facts(ready: 100)).final == 0)
    }

    @Test func missingInformationBlocksTheDecision() {
        var f = facts(ready: 40, pending: 12)
        f.wms = .missing("PanDA status is 412 s old (maxage 360 s)")
        let chain = SchedulerChain([MinPerCycle(minimum: 5), Ready(), Scale(factor: 0.5)])
        let d = chain.decide(f)
        #expect(d.final == nil)
        #expect(d.outcome == .blocked(plugin: "Ready", reasons: ["wms: PanDA status is 412 s old (maxage 360 s)"]))
        #expect(d.steps.count == 2)  // Scale never ran
        #expect(d.trace == "MinPerCycle:in=0,minpercycle=5,ret=5;Ready:in=5,missing=wms,ret=blocked")
    }

    @Test func emptyChainDoesNothing() {
        #expect(SchedulerChain([]).decide(facts(ready: 10)).outcome == .nothing)
    }
}

/// APF's apf-simulate-scheds, reproduced from a file that holds only the queue's chain (Fixtures/simulate/sim.conf
/// mirrors the example in APF's tools documentation; SOURCES.md).
struct SimulatorTests {
    private func run(_ f: CycleFacts) throws -> ChainSimulator.Run {
        let config = ConfigLoader(expander: testExpander).loadQueues(paths: [Fixture.path("simulate/sim.conf")])
        return try ChainSimulator.run(config, queue: "FAKE_QUEUE", facts: f)
    }

    @Test func reproducesTheDocumentedExample() throws {
        // apf-simulate-scheds --activated=1234 --pending=5 --running=50: 1229, 615, 100, 100, 100, 100, 5.
        let r = try run(.simulated(activated: 1234, pending: 5, running: 50))
        #expect(r.decision.steps.map(\.plugin) == [
            "Ready", "Scale", "MaxPerCycle", "MinPerCycle", "StatusTest", "StatusOffline", "MaxPending",
        ])
        #expect(r.decision.steps.map(\.output) == [1229, 615, 100, 100, 100, 100, 5])
        #expect(r.decision.final == 5)
        let text = ChainSimulator.text(r)
        #expect(text.contains("sched plugin Scale\n   configuration:\n      sched.scale.factor = 0.5 \n   output 615 "))
        #expect(text.hasSuffix("Final output 5"))
    }

    @Test func statusChangesTheOutcome() throws {
        #expect(try run(.simulated(activated: 1234, pending: 5, running: 50, status: .test)).decision.final == 3)
        #expect(try run(.simulated(activated: 1234, pending: 5, running: 50, status: .offline)).decision.final == 0)
    }

    @Test func jsonShape() throws {
        let r = try run(.simulated(activated: 1234, pending: 5, running: 50))
        let text = ChainSimulator.json(r).rendered()
        #expect(
            text.hasPrefix(
                "{\"steps\":[{\"plugin\":\"Ready\",\"out\":1229,\"msg\":\"Ready:in=0,activated=1234,offset=0,pending=5,ret=1229\"},"))
        #expect(text.hasSuffix("],\"final\":5}"))
        let o = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        #expect((o?["steps"] as? [[String: Any]])?.count == 7)
    }

    @Test func aChainErrorStopsTheSimulatorButOtherMissingKeysDoNot() {
        let good = loadMemory(["/s.conf": "[Q]\nschedplugin = Ready, MaxPerCycle\nsched.maxpercycle.maximum = 3\n"])
        #expect(throws: Never.self) { try ChainSimulator.run(good, queue: nil, facts: facts(ready: 10)) }
        let bad = loadMemory(["/s.conf": "[Q]\nschedplugin = Ready, MaxPerCylce\n"])
        #expect(throws: ConfigError.self) { try ChainSimulator.run(bad, queue: nil, facts: facts(ready: 10)) }
        do {
            _ = try ChainSimulator.run(bad, queue: nil, facts: facts(ready: 10))
        } catch {
            #expect(error.diagnostics.first?.suggestion == "MaxPerCycle")
        }
        #expect(throws: ConfigError.self) { try ChainSimulator.run(good, queue: "NOPE", facts: facts()) }
    }
}

@Suite(.enabled(if: BuiltCLI.available, "the apf-agent executable was not built next to the tests"))
struct SchedSimulateCLITests {
    @Test func printsEachPluginAndTheFinalNumber() throws {
        let r = try BuiltCLI.run([
            "sched", "simulate", "--config", "file://" + Fixture.path("simulate/sim.conf"), "--queue", "FAKE_QUEUE",
            "--activated", "1234", "--pending", "5", "--running", "50",
        ])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("output 1229"))
        #expect(r.out.contains("Final output 5"))
        let j = try BuiltCLI.run([
            "sched", "simulate", "--json", "--config", Fixture.path("simulate/sim.conf"), "--activated", "1234",
            "--pending", "5", "--running", "50", "--status", "test",
        ])
        #expect(j.out.hasSuffix("\"final\":3}\n"))
        let bad = try BuiltCLI.run(["sched", "simulate", "--config", Fixture.path("simulate/sim.conf"), "--status", "down"])
        #expect(bad.status != 0)
    }
}
