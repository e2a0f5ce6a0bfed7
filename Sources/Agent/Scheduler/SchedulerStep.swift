/// One plugin of the scheduler chain (APF.md §4): a pure function of its input and the cycle's facts.
public protocol SchedulerStep: Sendable {
    /// The plugin name as APF spells it (`Ready`, `MaxPerCycle`, ...); it starts the step's trace.
    var name: String { get }
    /// The step's output for input `n`; no I/O, no clock.
    func apply(_ n: Int, _ facts: CycleFacts) -> StepResult
}

/// What a step returned: a number (negative = retire) or "blocked" because a fact it needs is missing, plus the
/// `key=value` fields of its trace between `in=` and `ret=`, named as APF's plugins name them.
public struct StepResult: Sendable, Hashable {
    public enum Outcome: Sendable, Hashable {
        case value(Int)
        /// The step needs facts that are missing; the reasons say which and why.
        case blocked([String])
    }

    public var outcome: Outcome
    public var fields: [Field]

    public struct Field: Sendable, Hashable {
        public var key: String
        public var value: String
        public init(_ key: String, _ value: String) {
            self.key = key
            self.value = value
        }
    }

    public static func value(_ n: Int, _ fields: [(String, String)] = []) -> StepResult {
        StepResult(outcome: .value(n), fields: fields.map { Field($0.0, $0.1) })
    }

    public static func blocked(_ reasons: [String], _ fields: [(String, String)] = []) -> StepResult {
        StepResult(outcome: .blocked(reasons), fields: fields.map { Field($0.0, $0.1) })
    }

    public var count: Int? {
        if case .value(let n) = outcome { return n }
        return nil
    }
}

/// Python's `str()` of an optional number, as APF's traces print unset parameters (`maxpending=None`).
func py(_ v: Int?) -> String { v.map(String.init) ?? "None" }

/// Python's `repr()` of a float for the common cases (`1.0`, `0.25`, `1e-05`).
func py(_ d: Double) -> String { "\(d)" }

extension Fact {
    /// `what: reason` for a blocked step (`wms: PanDA status is 400 s old (maxage 360 s)`); `what` is a short word
    /// that also appears in the trace (`missing=wms`).
    func reason(_ what: String) -> String? { missingReason.map { "\(what): \($0)" } }
}
