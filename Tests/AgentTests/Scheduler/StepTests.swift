import Agent
import Foundation
import Testing

/// Facts with known counts; `ready`/`pending`/`running` as APF's inputs.
func facts(
    ready: Int = 0, pending: Int = 0, running: Int = 0, status: SiteStatus = .online, total: Int? = nil,
    history: PilotHistory? = nil
) -> CycleFacts {
    .simulated(
        activated: ready, pending: pending, running: running, status: status, factoryTotal: total, history: history)
}

/// Facts where one input is missing.
func facts(missing: String, ready: Int = 10, pending: Int = 2, running: Int = 3) -> CycleFacts {
    var f = facts(ready: ready, pending: pending, running: running)
    switch missing {
    case "wms": f.wms = .missing("PanDA status is 400 s old (maxage 360 s)")
    case "batch": f.batch = .missing("no listing of target t1 yet")
    case "site": f.site = .missing("site specs unavailable")
    case "total": f.factoryTotal = .missing("schedd listing failed")
    default: f.history = .missing("journal unavailable")
    }
    return f
}

/// The trace line of one step alone (`Name:in=n,…,ret=…`).
func trace(_ step: any SchedulerStep, _ n: Int, _ f: CycleFacts) -> String {
    SchedulerChain([Passthrough(n), step]).decide(f).steps[1].message
}

/// A test step that outputs a fixed number, to feed a step under test a given input.
struct Passthrough: SchedulerStep {
    let name = "Input"
    let n: Int
    init(_ n: Int) { self.n = n }
    func apply(_ n: Int, _ facts: CycleFacts) -> StepResult { .value(self.n) }
}

struct ReadyTests {
    @Test(arguments: [
        (40, 12, 0, 28), (10, 12, 0, 0), (40, 12, 5, 23), (5, 0, 10, 0), (0, 0, 0, 0), (1234, 5, 0, 1229),
    ])
    func formula(ready: Int, pending: Int, offset: Int, expected: Int) {
        let step = Ready(offset: offset)
        #expect(step.apply(0, facts(ready: ready, pending: pending)).count == expected)
        #expect(step.apply(999, facts(ready: ready, pending: pending)).count == expected)  // ignores its input
    }

    @Test func trace() {
        #expect(
            AgentTests.trace(Ready(), 0, facts(ready: 40, pending: 12))
                == "Ready:in=0,activated=40,offset=0,pending=12,ret=28")
    }

    @Test(arguments: ["wms", "batch"])
    func missingInformationBlocks(missing: String) {
        let r = Ready().apply(0, facts(missing: missing))
        #expect(r.count == nil)
        guard case .blocked(let reasons) = r.outcome else { return }
        #expect(reasons.count == 1)
        #expect(reasons[0].hasPrefix(missing + ": "))
    }
}

struct FixedAndKeepNRunningTests {
    @Test(arguments: [(5, 5), (0, 0), (-2, -2)])
    func fixedIgnoresItsInput(pilots: Int, expected: Int) {
        #expect(Fixed(pilotsPerCycle: pilots).apply(17, facts()).count == expected)
    }

    @Test func fixedUnsetIsZeroWithAComment() {
        #expect(AgentTests.trace(Fixed(pilotsPerCycle: nil), 3, facts()) == "Fixed:in=3,comment=nosetup,ret=0")
        #expect(AgentTests.trace(Fixed(pilotsPerCycle: 4), 3, facts()) == "Fixed:in=3,ret=4")
    }

    @Test(arguments: [
        (Optional(10), 0, 3, 2, 5), (Optional(2), 0, 5, 0, -3), (nil, 8, 1, 1, 6), (nil, -4, 2, 1, -3),
        (Optional(0), 5, 0, 0, 0),
    ])
    func keepNRunning(keep: Int?, input: Int, running: Int, pending: Int, expected: Int) {
        let r = KeepNRunning(keepRunning: keep).apply(input, facts(pending: pending, running: running))
        #expect(r.count == expected)
    }

    @Test func keepNRunningTraceAndMissingBatch() {
        #expect(
            AgentTests.trace(KeepNRunning(keepRunning: 10), 0, facts(pending: 2, running: 3))
                == "KeepNRunning:in=0,keep=10,running=3,pending=2,retiring=0,ret=5")
        #expect(
            AgentTests.trace(KeepNRunning(keepRunning: nil), 7, facts(pending: 2, running: 3))
                == "KeepNRunning:in=7,keep=None,running=3,pending=2,retiring=0,ret=2")
        #expect(KeepNRunning(keepRunning: 5).apply(0, facts(missing: "batch")).count == nil)
    }
}

struct LimitStepTests {
    @Test(arguments: [(28, 0.25, 7), (7, 0.5, 4), (-5, 0.5, -2), (0, 3.0, 0), (1229, 0.5, 615), (3, 1.0, 3)])
    func scaleRoundsUp(input: Int, factor: Double, expected: Int) {
        #expect(Scale(factor: factor).apply(input, facts()).count == expected)
    }

    @Test(arguments: [(7, Optional(50), 7), (100, 50, 50), (-3, 50, -3), (9, nil, 9)])
    func maxPerCycle(input: Int, maximum: Int?, expected: Int) {
        #expect(MaxPerCycle(maximum: maximum).apply(input, facts()).count == expected)
    }

    @Test(arguments: [(0, Optional(1), 1), (5, 1, 5), (-10, -2, -2), (-4, nil, -4)])
    func minPerCycle(input: Int, minimum: Int?, expected: Int) {
        #expect(MinPerCycle(minimum: minimum).apply(input, facts()).count == expected)
    }

    @Test(arguments: [
        (30, 0, 100, true, 30), (30, 90, 100, true, 10), (30, 120, 100, true, -20), (30, 120, 100, false, 0),
        (-5, 120, 100, false, -5), (100, 5, 10, true, 5),
    ])
    func maxPendingCapsAtHeadroom(input: Int, pending: Int, maximum: Int, allowNegative: Bool, expected: Int) {
        let step = MaxPending(maximum: maximum, allowNegative: allowNegative)
        #expect(step.apply(input, facts(pending: pending)).count == expected)
    }

    @Test func maxPendingUnsetPassesThroughWithoutNeedingBatch() {
        #expect(MaxPending(maximum: nil).apply(12, facts(missing: "batch")).count == 12)
        #expect(MaxPending(maximum: 10).apply(12, facts(missing: "batch")).count == nil)
    }

    @Test(arguments: [(0, 5, 2, 3), (10, 5, 2, 10), (-3, 1, 4, -3)])
    func minPending(input: Int, minimum: Int, pending: Int, expected: Int) {
        #expect(MinPending(minimum: minimum).apply(input, facts(pending: pending)).count == expected)
    }

    @Test(arguments: [(10, 20, 5, 10, 5), (10, 12, 5, 10, -3), (2, 100, 0, 0, 2)])
    func maxToRun(input: Int, maximum: Int, pending: Int, running: Int, expected: Int) {
        #expect(MaxToRun(maximum: maximum).apply(input, facts(pending: pending, running: running)).count == expected)
    }

    @Test func maxToRunMissingBatchBlocksInsteadOfZero() {
        #expect(MaxToRun(maximum: 10).apply(5, facts(missing: "batch")).count == nil)
        #expect(MaxToRun(maximum: nil).apply(5, facts(missing: "batch")).count == 5)
    }

    @Test(arguments: [
        (10, Optional(100), 95, 5), (10, 100, 100, 0), (10, 100, 120, 0), (-5, 100, 50, -5), (10, nil, 10_000, 10),
        (10, 100, 0, 10),
    ])
    func maxPerFactory(input: Int, maximum: Int?, total: Int, expected: Int) {
        #expect(MaxPerFactory(maximum: maximum).apply(input, facts(total: total)).count == expected)
    }

    @Test func maxPerFactoryMissingTotalBlocks() {
        #expect(MaxPerFactory(maximum: 10).apply(5, facts(missing: "total")).count == nil)
    }

    @Test func traces() {
        let f = facts(pending: 5, running: 10, total: 95)
        #expect(AgentTests.trace(Scale(factor: 0.25), 28, f) == "Scale:in=28,factor=0.25,ret=7")
        #expect(AgentTests.trace(Scale(), 3, f) == "Scale:in=3,factor=1.0,ret=3")
        #expect(AgentTests.trace(MaxPerCycle(maximum: 50), 7, f) == "MaxPerCycle:in=7,maxpercycle=50,ret=7")
        #expect(AgentTests.trace(MaxPerCycle(maximum: nil), 7, f) == "MaxPerCycle:in=7,comment=not set,ret=7")
        #expect(AgentTests.trace(MinPerCycle(minimum: 1), 0, f) == "MinPerCycle:in=0,minpercycle=1,ret=1")
        #expect(AgentTests.trace(MaxPending(maximum: 10), 100, f) == "MaxPending:in=100,pending=5,maxpending=10,ret=5")
        #expect(AgentTests.trace(MinPending(minimum: 8), 0, f) == "MinPending:in=0,minpending=8,pending=5,ret=3")
        #expect(
            AgentTests.trace(MaxToRun(maximum: 20), 10, f) == "MaxToRun:in=10,maxtorun=20,pending=5,running=10,ret=5")
        #expect(
            AgentTests.trace(MaxPerFactory(maximum: 100), 10, f) == "MaxPerFactory:in=10,total=95,maxperfactory=100,ret=5")
    }
}

struct StatusAndThrottleTests {
    @Test(arguments: [
        (SiteStatus.test, 3, 1), (.online, 50, 50), (.offline, 50, 50), (.ok, 7, 7), ("brokeroff", 7, 7),
    ])
    func statusTest(status: SiteStatus, input: Int, expected: Int) {
        #expect(StatusTest(pilots: 1).apply(input, facts(status: status)).count == expected)
    }

    @Test(arguments: [(SiteStatus.offline, 50, 0), (.test, 50, 50), (.online, 5, 5)])
    func statusOffline(status: SiteStatus, input: Int, expected: Int) {
        #expect(StatusOffline(pilots: 0).apply(input, facts(status: status)).count == expected)
    }

    @Test func statusTracesAndMissingSite() {
        #expect(AgentTests.trace(StatusTest(pilots: 3), 9, facts(status: .test)) == "StatusTest:in=9,comment=test,ret=3")
        #expect(AgentTests.trace(StatusTest(pilots: 3), 9, facts()) == "StatusTest:in=9,comment=not test,ret=9")
        #expect(
            AgentTests.trace(StatusOffline(), 9, facts(status: .offline)) == "StatusOffline:in=9,comment=offline,ret=0")
        #expect(StatusTest().apply(9, facts(missing: "site")).count == nil)
        #expect(StatusOffline().apply(9, facts(missing: "site")).count == nil)
    }

    private func history(_ runs: [(ageSeconds: Double, wall: Double)]) -> PilotHistory {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        return PilotHistory(
            now: now, runs: runs.map { .init(startedAt: now.addingTimeInterval(-$0.ageSeconds), wallSeconds: $0.wall) })
    }

    @Test func throttleSubmitsOneWhenMostRecentPilotsDiedQuickly() {
        let h = history([(100, 2), (200, 3), (300, 9.9), (400, 600)])  // 3 of 4 under 10 s: 0.75 > 0.5
        #expect(Throttle().apply(40, facts(history: h)).count == 1)
        #expect(
            AgentTests.trace(Throttle(), 40, facts(history: h)) == "Throttle:in=40,total=4,short=3,ratio=0.5,submit=1,ret=1")
    }

    @Test func throttleRatioMustBeExceeded() {
        let h = history([(100, 2), (200, 3), (300, 100), (400, 600)])  // exactly 0.5: not above
        #expect(Throttle().apply(40, facts(history: h)).count == 40)
    }

    @Test func throttleOnlyCountsPilotsStartedInTheInterval() {
        let h = history([(100, 500), (4000, 1), (5000, 1), (6000, 1)])  // the short ones started over 1 h ago
        #expect(Throttle().apply(40, facts(history: h)).count == 40)
        #expect(Throttle(interval: 7200).apply(40, facts(history: h)).count == 1)
    }

    @Test func throttleWithNoRecentPilotsPassesThroughAndMissingHistoryBlocks() {
        #expect(AgentTests.trace(Throttle(), 40, facts()) == "Throttle:in=40,ret=40")
        #expect(Throttle().apply(40, facts(missing: "history")).count == nil)
    }
}

struct SourceStepTests {
    @Test(arguments: [(10, 3, 0.5, 2.0, 0), (11, 2, 0.5, 1.0, 3), (10, 0, 1.0, 1.0, 10), (7, 3, 1.5, 0.5, 9)])
    func weightedActivated(ready: Int, pending: Int, wa: Double, wp: Double, expected: Int) {
        let step = WeightedActivated(activatedWeight: wa, pendingWeight: wp)
        #expect(step.apply(0, facts(ready: ready, pending: pending)).count == expected)
    }

    @Test func weightedActivatedTrace() {
        #expect(
            AgentTests.trace(WeightedActivated(activatedWeight: 0.5, pendingWeight: 1.0), 0, facts(ready: 11, pending: 2))
                == "WeightedActivated:in=0,activated=11,weightedactivated=5,pending=2,weightedpending=2,ret=3")
    }

    @Test(arguments: [(10, 4, 6), (3, 4, 0)])
    func fillactivated(ready: Int, pending: Int, expected: Int) {
        #expect(Fillactivated().apply(50, facts(ready: ready, pending: pending)).count == expected)
    }

    @Test func nullIsZero() {
        #expect(AgentTests.trace(Null(), 12, facts()) == "Null:in=12,ret=0")
    }

    @Test func sourcesBlockOnMissingDemand() {
        #expect(WeightedActivated().apply(0, facts(missing: "wms")).count == nil)
        #expect(Fillactivated().apply(0, facts(missing: "batch")).count == nil)
    }
}
