/// APF's scheduler chain (APF.md §4): `n = 0`, then each plugin in `schedplugin` order turns the previous output
/// into its own. No final clamp: `n > 0` submits n, `n < 0` retires |n|, 0 does nothing. Each step leaves a trace
/// `Name:in=<n>,<fields>,ret=<out>`; joined with `;` they form the string shown in logs, status and the monitor.
///
/// A step that needs a fact the cycle does not have (stale or missing WMS or batch status) blocks the chain: the
/// decision is `blocked`, never a silent 0.
public struct SchedulerChain: Sendable {
    public let steps: [any SchedulerStep]

    public init(_ steps: [any SchedulerStep]) { self.steps = steps }

    public var names: [String] { steps.map(\.name) }

    public func decide(_ facts: CycleFacts) -> ChainDecision {
        var n = 0
        var out: [ChainDecision.Step] = []
        for step in steps {
            let r = step.apply(n, facts)
            let fields = r.fields.map { "\($0.key)=\(Self.clean($0.value))" }
            switch r.outcome {
            case .value(let v):
                let message = "\(step.name):" + (["in=\(n)"] + fields + ["ret=\(v)"]).joined(separator: ",")
                out.append(ChainDecision.Step(plugin: step.name, input: n, output: v, message: message, blockedBy: []))
                n = v
            case .blocked(let reasons):
                let what = reasons.map { Self.clean(String($0.prefix(while: { $0 != ":" }))) }.joined(separator: "+")
                let message =
                    "\(step.name):" + (["in=\(n)"] + fields + ["missing=\(what)", "ret=blocked"]).joined(separator: ",")
                out.append(
                    ChainDecision.Step(plugin: step.name, input: n, output: nil, message: message, blockedBy: reasons))
                return ChainDecision(steps: out, outcome: .blocked(plugin: step.name, reasons: reasons))
            }
        }
        let outcome: ChainDecision.Outcome = n > 0 ? .submit(n) : n < 0 ? .retire(-n) : .nothing
        return ChainDecision(steps: out, outcome: outcome)
    }

    /// Trace values never contain the separators `,` and `;`.
    static func clean(_ s: String) -> String {
        String(s.map { $0 == "," || $0 == ";" ? " " : $0 })
    }
}

/// The result of one run of the chain, with every step's input, output and trace message.
public struct ChainDecision: Sendable, Hashable {
    public struct Step: Sendable, Hashable {
        public var plugin: String
        public var input: Int
        /// nil when this step blocked the chain.
        public var output: Int?
        /// This step's part of the trace, e.g. `Scale:in=28,factor=0.25,ret=7`.
        public var message: String
        /// Why the step blocked (empty when it returned a number).
        public var blockedBy: [String]
    }

    public enum Outcome: Sendable, Hashable {
        case submit(Int)
        case retire(Int)
        case nothing
        /// A step needed information that is missing or stale; nothing is submitted or retired this cycle.
        case blocked(plugin: String, reasons: [String])
    }

    public var steps: [Step]
    public var outcome: Outcome

    /// The steps' messages joined with `;` (APF's trace string).
    public var trace: String { steps.map(\.message).joined(separator: ";") }

    /// The chain's number (negative = retire), or nil when blocked.
    public var final: Int? {
        switch outcome {
        case .submit(let n): n
        case .retire(let n): -n
        case .nothing: 0
        case .blocked: nil
        }
    }
}
