/// Steps that produce a number from the facts (APF.md §4): `Ready`, `Fixed`, `KeepNRunning`, `WeightedActivated`,
/// `Fillactivated`, `Null`. Formulas and trace fields are APF 2.4's; parameters are `sched.<name lower>.<param>`.

/// `max(0, wms.ready − offset − batch.pending)`; ignores its input. Blocks if WMS or batch status is missing.
public struct Ready: SchedulerStep {
    public let name = "Ready"
    /// `sched.ready.offset` (0): ready jobs to leave for others (costlier clouds start only past their offset).
    public var offset: Int

    public init(offset: Int = 0) { self.offset = offset }

    public func apply(_ n: Int, _ facts: CycleFacts) -> StepResult {
        guard let wms = facts.wms.value, let batch = facts.batch.value else {
            return .blocked([facts.wms.reason("wms"), facts.batch.reason("batch")].compactMap { $0 })
        }
        let out = max(0, (wms.ready - offset) - batch.pending)
        return .value(out, [("activated", "\(wms.ready)"), ("offset", "\(offset)"), ("pending", "\(batch.pending)")])
    }
}

/// A constant; ignores its input. Unset (or 0) gives 0.
public struct Fixed: SchedulerStep {
    public let name = "Fixed"
    /// `sched.fixed.pilotspercycle` (unset).
    public var pilotsPerCycle: Int?

    public init(pilotsPerCycle: Int?) { self.pilotsPerCycle = pilotsPerCycle }

    public func apply(_ n: Int, _ facts: CycleFacts) -> StepResult {
        if let p = pilotsPerCycle, p != 0 { return .value(p) }
        return .value(0, [("comment", "nosetup")])
    }
}

/// `T − (running + pending)` with `T = keep_running`, or `max(0, n)` when unset; may be negative (retire).
public struct KeepNRunning: SchedulerStep {
    public let name = "KeepNRunning"
    /// `sched.keepnrunning.keep_running` (unset: the input is the target).
    public var keepRunning: Int?

    public init(keepRunning: Int?) { self.keepRunning = keepRunning }

    public func apply(_ n: Int, _ facts: CycleFacts) -> StepResult {
        guard let batch = facts.batch.value else { return .blocked([facts.batch.reason("batch")!]) }
        let pending = max(0, batch.pending)
        let running = max(0, batch.running)
        let retiring = max(0, batch.retiring)
        let target = keepRunning ?? max(0, n)
        let out = target - (running + pending)
        return .value(
            out,
            [("keep", py(keepRunning)), ("running", "\(running)"), ("pending", "\(pending)"), ("retiring", "\(retiring)")])
    }
}

/// `max(0, ⌊ready·activated⌋ − ⌊pending·pending⌋)`; ignores its input.
public struct WeightedActivated: SchedulerStep {
    public let name = "WeightedActivated"
    /// `sched.weightedactivated.activated` (1.0) and `.pending` (1.0).
    public var activatedWeight: Double
    public var pendingWeight: Double

    public init(activatedWeight: Double = 1.0, pendingWeight: Double = 1.0) {
        self.activatedWeight = activatedWeight
        self.pendingWeight = pendingWeight
    }

    public func apply(_ n: Int, _ facts: CycleFacts) -> StepResult {
        guard let wms = facts.wms.value, let batch = facts.batch.value else {
            return .blocked([facts.wms.reason("wms"), facts.batch.reason("batch")].compactMap { $0 })
        }
        let aw = Int((Double(wms.ready) * activatedWeight).rounded(.down))
        let pw = Int((Double(batch.pending) * pendingWeight).rounded(.down))
        let out = max(0, aw - pw)
        return .value(
            out,
            [
                ("activated", "\(wms.ready)"), ("weightedactivated", "\(aw)"), ("pending", "\(batch.pending)"),
                ("weightedpending", "\(pw)"),
            ])
    }
}

/// `max(0, ready − pending)`: what APF's Fillactivated intended (it crashed in the original); ignores its input.
public struct Fillactivated: SchedulerStep {
    public let name = "Fillactivated"
    /// `sched.fillactivated.default`: APF returned it when information was missing; apf-agent blocks instead.
    public var defaultValue: Int?

    public init(defaultValue: Int? = nil) { self.defaultValue = defaultValue }

    public func apply(_ n: Int, _ facts: CycleFacts) -> StepResult {
        guard let wms = facts.wms.value, let batch = facts.batch.value else {
            return .blocked([facts.wms.reason("wms"), facts.batch.reason("batch")].compactMap { $0 })
        }
        let out = max(0, wms.ready - batch.pending)
        return .value(
            out, [("activated", "\(wms.ready)"), ("pending", "\(batch.pending)"), ("running", "\(batch.running)")])
    }
}

/// Always 0.
public struct Null: SchedulerStep {
    public let name = "Null"
    public init() {}
    public func apply(_ n: Int, _ facts: CycleFacts) -> StepResult { .value(0) }
}
