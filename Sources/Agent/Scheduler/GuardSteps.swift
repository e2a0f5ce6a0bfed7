import Foundation

/// Steps that override the number on a condition (APF.md §4): `StatusTest`, `StatusOffline`, `Throttle`.

/// Site status `test` → `pilots`, else n.
public struct StatusTest: SchedulerStep {
    public let name = "StatusTest"
    /// `sched.statustest.pilots` (0).
    public var pilots: Int

    public init(pilots: Int = 0) { self.pilots = pilots }

    public func apply(_ n: Int, _ facts: CycleFacts) -> StepResult {
        guard let status = facts.site.value else { return .blocked([facts.site.reason("site")!]) }
        if status == .test { return .value(pilots, [("comment", "test")]) }
        return .value(n, [("comment", "not test")])
    }
}

/// Site status `offline` → `pilots`, else n.
public struct StatusOffline: SchedulerStep {
    public let name = "StatusOffline"
    /// `sched.statusoffline.pilots` (0).
    public var pilots: Int

    public init(pilots: Int = 0) { self.pilots = pilots }

    public func apply(_ n: Int, _ facts: CycleFacts) -> StepResult {
        guard let status = facts.site.value else { return .blocked([facts.site.reason("site")!]) }
        if status == .offline { return .value(pilots, [("comment", "offline")]) }
        return .value(n, [("comment", "not offline")])
    }
}

/// The black-hole guard: of the pilots that started in the last `interval` seconds (and finished), if the fraction
/// whose wall time was under `maxtime` exceeds `ratio`, submit only `submit`; else n. No such pilots → n.
public struct Throttle: SchedulerStep {
    public let name = "Throttle"
    /// `sched.throttle.interval` (3600 s), `.maxtime` (10 s), `.ratio` (0.5), `.submit` (1).
    public var interval: Int
    public var maxTime: Int
    public var ratio: Double
    public var submit: Int

    public init(interval: Int = 3600, maxTime: Int = 10, ratio: Double = 0.5, submit: Int = 1) {
        self.interval = interval
        self.maxTime = maxTime
        self.ratio = ratio
        self.submit = submit
    }

    public func apply(_ n: Int, _ facts: CycleFacts) -> StepResult {
        guard let history = facts.history.value else { return .blocked([facts.history.reason("history")!]) }
        let since = history.now.addingTimeInterval(-Double(interval))
        let window = history.runs.filter { $0.startedAt > since }
        guard !window.isEmpty else { return .value(n) }
        let short = window.filter { $0.wallSeconds < Double(maxTime) }.count
        let observed = Double(short) / Double(window.count)
        let out = observed > ratio ? submit : n
        return .value(
            out,
            [("total", "\(window.count)"), ("short", "\(short)"), ("ratio", py(ratio)), ("submit", "\(submit)")])
    }
}
