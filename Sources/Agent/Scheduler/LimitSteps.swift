/// Steps that transform or clamp their input (APF.md §4): `Scale`, `MaxPerCycle`, `MinPerCycle`, `MaxPending`,
/// `MinPending`, `MaxToRun`, `MaxPerFactory`. An unset limit passes the input through (and needs no facts).

/// `ceil(n × factor)`.
public struct Scale: SchedulerStep {
    public let name = "Scale"
    /// `sched.scale.factor` (1.0). Redundant factories and CEs split one site's demand with it (APF.md §3.3).
    public var factor: Double

    public init(factor: Double = 1.0) { self.factor = factor }

    public func apply(_ n: Int, _ facts: CycleFacts) -> StepResult {
        .value(Int((Double(n) * factor).rounded(.up)), [("factor", py(factor))])
    }
}

/// `min(n, maximum)`.
public struct MaxPerCycle: SchedulerStep {
    public let name = "MaxPerCycle"
    /// `sched.maxpercycle.maximum` (unset: pass through).
    public var maximum: Int?

    public init(maximum: Int?) { self.maximum = maximum }

    public func apply(_ n: Int, _ facts: CycleFacts) -> StepResult {
        guard let maximum else { return .value(n, [("comment", "not set")]) }
        return .value(min(n, maximum), [("maxpercycle", "\(maximum)")])
    }
}

/// `max(n, minimum)`: a steady trickle even with no work; after MaxPerCycle it guarantees one.
public struct MinPerCycle: SchedulerStep {
    public let name = "MinPerCycle"
    /// `sched.minpercycle.minimum` (unset: pass through).
    public var minimum: Int?

    public init(minimum: Int?) { self.minimum = minimum }

    public func apply(_ n: Int, _ facts: CycleFacts) -> StepResult {
        guard let minimum else { return .value(n, [("comment", "not set")]) }
        return .value(max(n, minimum), [("minpercycle", "\(minimum)")])
    }
}

/// pending = 0 → n; else `min(n, maximum − pending)`, that difference floored at 0 unless `allow_negative`.
public struct MaxPending: SchedulerStep {
    public let name = "MaxPending"
    /// `sched.maxpending.maximum` (unset: pass through) and `.allow_negative` (True).
    public var maximum: Int?
    public var allowNegative: Bool

    public init(maximum: Int?, allowNegative: Bool = true) {
        self.maximum = maximum
        self.allowNegative = allowNegative
    }

    public func apply(_ n: Int, _ facts: CycleFacts) -> StepResult {
        guard let maximum else { return .value(n, [("comment", "not set")]) }
        guard let batch = facts.batch.value else { return .blocked([facts.batch.reason("batch")!]) }
        var out = n
        if batch.pending != 0 {
            var toSubmit = maximum - batch.pending
            if !allowNegative, toSubmit < 0 { toSubmit = 0 }
            out = min(n, toSubmit)
        }
        return .value(out, [("pending", "\(batch.pending)"), ("maxpending", "\(maximum)")])
    }
}

/// `max(n, minimum − pending)`.
public struct MinPending: SchedulerStep {
    public let name = "MinPending"
    /// `sched.minpending.minimum` (unset: pass through).
    public var minimum: Int?

    public init(minimum: Int?) { self.minimum = minimum }

    public func apply(_ n: Int, _ facts: CycleFacts) -> StepResult {
        guard let minimum else { return .value(n, [("comment", "not set")]) }
        guard let batch = facts.batch.value else { return .blocked([facts.batch.reason("batch")!]) }
        return .value(
            max(n, minimum - batch.pending), [("minpending", "\(minimum)"), ("pending", "\(batch.pending)")])
    }
}

/// `min(n, maximum − (pending + running))`; may be negative (retire).
public struct MaxToRun: SchedulerStep {
    public let name = "MaxToRun"
    /// `sched.maxtorun.maximum` (unset: pass through).
    public var maximum: Int?

    public init(maximum: Int?) { self.maximum = maximum }

    public func apply(_ n: Int, _ facts: CycleFacts) -> StepResult {
        guard let maximum else { return .value(n, [("comment", "not set")]) }
        guard let batch = facts.batch.value else { return .blocked([facts.batch.reason("batch")!]) }
        return .value(
            min(n, maximum - (batch.pending + batch.running)),
            [("maxtorun", "\(maximum)"), ("pending", "\(batch.pending)"), ("running", "\(batch.running)")])
    }
}

/// S = Σ(pending + running) of every queue of this factory on the same schedd/target: S ≥ max → 0, else
/// `min(n, max − S)`. Unset = no limit (APF returned 0, i.e. no pilots at all; APF.md §11).
public struct MaxPerFactory: SchedulerStep {
    public let name = "MaxPerFactory"
    /// `[Factory] maxperfactory.maximum`.
    public var maximum: Int?

    public init(maximum: Int?) { self.maximum = maximum }

    public func apply(_ n: Int, _ facts: CycleFacts) -> StepResult {
        guard let maximum else { return .value(n, [("comment", "not set")]) }
        guard let total = facts.factoryTotal.value else {
            return .blocked([facts.factoryTotal.reason("factorytotal")!])
        }
        let out = total >= maximum ? 0 : min(n, maximum - total)
        return .value(out, [("total", "\(total)"), ("maxperfactory", "\(maximum)")])
    }
}
