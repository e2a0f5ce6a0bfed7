public import Foundation
import Synchronization

/// What one queue cycle did.
public struct CycleSummary: Sendable, Hashable {
    public enum Action: Sendable, Hashable {
        /// Pilots submitted: accepted with a batch ID, refused for good, waiting for a retry, in doubt.
        case submitted(accepted: Int, failed: Int, retrying: Int, inDoubt: Int)
        /// Pilots asked to leave: cancels requested, intents dropped before submission.
        case retired(cancelled: Int, dropped: Int)
        case nothing
        /// The decision or the action could not be taken (missing information, a target backing off, a limit).
        case blocked(String)
        /// The queue is disabled, or could not be started.
        case skipped(String)
    }

    public var queue: String
    public var at: Date
    /// The chain's number (negative = retire), nil when it blocked or did not run.
    public var decision: Int?
    /// APF's trace string plus the runtime's limit notes.
    public var trace: String
    public var action: Action
    /// Idle pilots cancelled because demand is gone (roadmap 2.5).
    public var idleCancelled: Int

    public init(queue: String, at: Date, decision: Int?, trace: String, action: Action, idleCancelled: Int = 0) {
        self.queue = queue
        self.at = at
        self.decision = decision
        self.trace = trace
        self.action = action
        self.idleCancelled = idleCancelled
    }
}

/// What start-up reconciliation found for intents in doubt (LESSONS §1).
public struct ReconciliationSummary: Sendable, Hashable {
    /// Intents examined.
    public var inDoubt = 0
    /// Found on their target by client ID (queue listing or accounting) and recorded.
    public var found = 0
    /// Not found and past the grace period: `missed`.
    public var missed = 0
    /// Not found yet, within the grace period: still counted as pilots, looked up again later.
    public var waiting = 0
    /// Targets that could not be asked (unreachable, or no longer configured), with why.
    public var unreachable: [String: String] = [:]

    public init() {}
}

/// Events of a running factory, for embedders and tests (`Factory.events()`).
public enum FactoryEvent: Sendable {
    case reconciled(ReconciliationSummary)
    case cycle(CycleSummary)
    /// A target's health changed (`backingOff` with the reason and the next try, or back to healthy).
    case targetHealth(target: String, state: TargetHealthState)
    /// Pilots changed state after a status poll of a target.
    case pilotsChanged(target: String, changes: [String: PilotState])
    /// A new configuration was applied (queues started, stopped, changed).
    case configApplied(started: [String], stopped: [String], changed: [String])
    /// A new configuration was refused; the previous one keeps running.
    case configRejected(reason: String)
    /// A queue could not be started (its own error; the others run).
    case queueProblem(queue: String, error: FactoryError)
    case stopped
}

/// A target's health: healthy, or backing off after failures (capped exponential back-off with jitter).
public enum TargetHealthState: Sendable, Hashable, CustomStringConvertible {
    case healthy
    case backingOff(reason: String, failures: Int, nextTry: Date)

    public var description: String {
        switch self {
        case .healthy: "ok"
        case .backingOff(let reason, _, let next): "backing off: \(reason), next try \(StatusFormat.time(next))"
        }
    }
}

/// Fans events out to every subscriber; a slow subscriber loses the oldest events, never blocks the factory.
final class EventHub: Sendable {
    private let subscribers = Mutex<[Int: AsyncStream<FactoryEvent>.Continuation]>([:])
    private let next = Atomic<Int>(0)

    func subscribe(buffer: Int = 4096) -> AsyncStream<FactoryEvent> {
        let (stream, continuation) = AsyncStream<FactoryEvent>.makeStream(bufferingPolicy: .bufferingNewest(buffer))
        let id = next.add(1, ordering: .relaxed).newValue
        subscribers.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in self?.subscribers.withLock { _ = $0.removeValue(forKey: id) } }
        return stream
    }

    func emit(_ event: FactoryEvent) {
        let all = subscribers.withLock { $0.isEmpty ? [] : Array($0.values) }
        if all.isEmpty { return }
        for c in all { c.yield(event) }
    }

    func finish() {
        let all = subscribers.withLock { s -> [AsyncStream<FactoryEvent>.Continuation] in
            let v = Array(s.values)
            s.removeAll()
            return v
        }
        for c in all { c.finish() }
    }
}

/// Time formatting for status lines and messages: UTC, ISO 8601, seconds.
public enum StatusFormat {
    public static func time(_ d: Date) -> String {
        let (y, m, day, rem) = JournalDate.civil(Int(d.timeIntervalSince1970.rounded(.down)))
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(two(m))-\(two(day))T\(two(rem / 3600)):\(two(rem % 3600 / 60)):\(two(rem % 60))Z"
    }
}
