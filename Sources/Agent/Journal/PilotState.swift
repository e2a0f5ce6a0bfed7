/// A pilot's state in the journal. States only move forward (LESSONS §16): an earlier state reported by a later poll
/// is ignored; skipped states are recorded as synthesized. `held` is not terminal.
///
/// `submitting → {pending ⇄ held} → running → exiting → {completed, failed, timeout, cancelled, removed, missing,
/// lost, missed}`.
public enum PilotState: String, Sendable, Hashable, CaseIterable, Codable {
    /// The intent is committed; the submit has not returned a batch ID (in doubt after a crash).
    case submitting
    /// Queued in the batch system.
    case pending
    /// Held by the batch system (counted as pending, shown apart).
    case held
    case running
    /// Finishing (the pilot wrapper reported it is exiting, or the batch system is completing it).
    case exiting
    case completed
    case failed
    /// Ended at its walltime: normal for pilots.
    case timeout
    /// Cancelled by apf-agent.
    case cancelled
    /// Removed by someone else (the site, an operator).
    case removed
    /// Ran, but never reported to the monitor (feeds the black-hole guard).
    case missing
    /// Absent from the queue listing and from accounting after the grace period.
    case lost
    /// A submit that never got a batch ID and was not found on the target after the grace period.
    case missed

    /// Order of the lifecycle; a move to a lower rank is ignored. pending and held share a rank.
    public var rank: Int {
        switch self {
        case .submitting: 0
        case .pending, .held: 1
        case .running: 2
        case .exiting: 3
        case .completed, .failed, .timeout, .cancelled, .removed, .missing, .lost, .missed: 4
        }
    }

    public var isTerminal: Bool { rank == 4 }

    /// Ended well (apfmon's DONE): completed, at walltime, or cancelled by us.
    public var isDone: Bool { self == .completed || self == .timeout || self == .cancelled }

    /// Ended badly (apfmon's FAULT).
    public var isFault: Bool { isTerminal && !isDone }

    /// The states `self` must have passed through: running and anything after it implies it was queued; exiting,
    /// completed, timeout and missing imply it ran.
    private var implied: [PilotState] {
        switch self {
        case .running: [.pending]
        case .exiting, .completed, .timeout, .missing: [.pending, .running]
        default: []
        }
    }

    /// The states a move from `self` to `next` skipped, in order (e.g. pending → completed skipped running).
    func skipped(to next: PilotState) -> [PilotState] {
        next.implied.filter { $0.rank > rank }
    }
}

/// What happened to a requested state change.
public enum TransitionResult: Sendable, Hashable {
    case applied(from: PilotState, synthesized: [PilotState])
    /// Same state: nothing changed but the native details.
    case unchanged
    /// The journal already has a later state (a late poll, or a listing that lags).
    case ignoredBackward(current: PilotState)
    /// The pilot already ended.
    case ignoredTerminal(current: PilotState)
    case notFound
}
