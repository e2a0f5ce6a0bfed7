/// The normalised state of a pilot's batch job. Each driver maps its system's native states through an explicit
/// table (`StateTables`), keeping the native state, reason and exit code next to it (LESSONS §6).
///
/// `lost` is never produced by a driver: a job missing from both the queue listing and accounting is reported as
/// not found, and only the caller, after its grace period, calls it lost (LESSONS §3).
public enum PilotState: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case pending
    case running
    /// Finishing: SLURM COMPLETING, PBS E (exiting), HTCondor 6 (transferring output), SGE d (deletion pending).
    case completing
    case done
    case failed
    case cancelled
    /// Held or suspended; not terminal.
    case held
    /// A native state the table does not know. Never read as failed or done.
    case unknown
    case lost

    public var description: String { rawValue }

    public var isTerminal: Bool {
        switch self {
        case .done, .failed, .cancelled, .lost: return true
        case .pending, .running, .completing, .held, .unknown: return false
        }
    }
}

/// Why a job ended when the normalised state alone hides it. Pilots reaching their walltime or being pre-empted
/// ran normally as far as the factory is concerned (`done`), but they did not finish by themselves.
public enum JobEnding: String, Sendable, Hashable, CaseIterable {
    case timeout
    case preempted
    case nodeFailure
    case outOfMemory
    case deadline
}

/// One job's observed state.
public struct JobStatus: Sendable, Hashable, CustomStringConvertible {
    public var state: PilotState
    /// Exactly what the batch system said (`CANCELLED` without `by <uid>`, `qw`, `4`, `F`).
    public var nativeState: String
    public var reason: String?
    public var exitCode: Int?
    /// The signal that ended the job, when the system reports it separately (SLURM `ExitCode` `0:15`).
    public var signal: Int?
    public var ending: JobEnding?

    public init(state: PilotState, nativeState: String, reason: String? = nil, exitCode: Int? = nil, signal: Int? = nil,
                ending: JobEnding? = nil) {
        self.state = state
        self.nativeState = nativeState
        self.reason = reason
        self.exitCode = exitCode
        self.signal = signal
        self.ending = ending
    }

    public var description: String {
        var s = "\(state)(\(nativeState)"
        if let exitCode { s += " exit=\(exitCode)" }
        if let signal { s += " signal=\(signal)" }
        if let reason, !reason.isEmpty { s += " reason=\(reason)" }
        return s + ")"
    }
}

/// A table entry: the normalised state and, for endings the state hides, why.
public struct StateMapping: Sendable, Hashable {
    public var state: PilotState
    public var ending: JobEnding?
    /// The state is terminal and its real outcome depends on the exit code (0 → done, else failed).
    public var byExitCode: Bool

    public init(_ state: PilotState, ending: JobEnding? = nil, byExitCode: Bool = false) {
        self.state = state
        self.ending = ending
        self.byExitCode = byExitCode
    }

    static func exit(_ fallback: PilotState = .done) -> StateMapping { StateMapping(fallback, byExitCode: true) }

    /// Applies the exit code for `byExitCode` entries: 0 or unknown → the fallback state, anything else → failed.
    func resolve(exitCode: Int?) -> (PilotState, JobEnding?) {
        guard byExitCode, let code = exitCode, code != 0 else { return (state, ending) }
        return (.failed, ending)
    }
}

/// The native → normalised state tables, as data (LESSONS §6). Unlisted native states map to `unknown`.
public enum StateTables {
    /// SLURM job states (`squeue %T`, `sacct State`, `squeue --json job_state`), 22.05–25.11.
    public static let slurm: [String: StateMapping] = [
        "PENDING": .init(.pending), "CONFIGURING": .init(.pending), "REQUEUED": .init(.pending),
        "REQUEUE_FED": .init(.pending), "RESIZING": .init(.running),
        "RUNNING": .init(.running), "SIGNALING": .init(.running),
        "COMPLETING": .init(.completing), "STAGE_OUT": .init(.completing),
        "SUSPENDED": .init(.held), "STOPPED": .init(.held), "REQUEUE_HOLD": .init(.held),
        "RESV_DEL_HOLD": .init(.held), "SPECIAL_EXIT": .init(.held),
        "COMPLETED": .exit(),
        "TIMEOUT": .init(.done, ending: .timeout), "PREEMPTED": .init(.done, ending: .preempted),
        "DEADLINE": .init(.done, ending: .deadline),
        "CANCELLED": .init(.cancelled), "REVOKED": .init(.cancelled),
        "FAILED": .init(.failed), "NODE_FAIL": .init(.failed, ending: .nodeFailure),
        "BOOT_FAIL": .init(.failed, ending: .nodeFailure), "OUT_OF_MEMORY": .init(.failed, ending: .outOfMemory),
    ]

    /// PBS Pro / OpenPBS and Torque `job_state` letters. `F` (PBS Pro history), `C` (Torque completed) and `X`
    /// (finished array element) resolve by exit status; the Torque-on-SLURM wrappers report no exit status at all
    /// (and show a cancelled job as `C` too), so those read as `done`.
    public static let pbs: [String: StateMapping] = [
        "Q": .init(.pending), "W": .init(.pending), "T": .init(.pending), "M": .init(.pending),
        "R": .init(.running), "B": .init(.running),
        "E": .init(.completing),
        "H": .init(.held), "S": .init(.held), "U": .init(.held),
        "F": .exit(), "C": .exit(), "X": .exit(),
    ]

    /// SGE `qstat` state letters, in priority order: the first flag present in the state string decides
    /// (`Eqw` → failed, `dr` → completing, `s`/`S`/`T` (suspended) → held, `Rr` → running, `hr` (a hold on a
    /// running job, which only matters for a rerun) → running, `hqw` → held, `qw` → pending).
    public static let sgeFlags: [(flag: Character, mapping: StateMapping)] = [
        ("E", .init(.failed)),
        ("d", .init(.completing)),
        ("s", .init(.held)), ("S", .init(.held)), ("T", .init(.held)),
        ("r", .init(.running)), ("t", .init(.running)),
        ("h", .init(.held)),
        ("q", .init(.pending)), ("w", .init(.pending)),
    ]

    /// HTCondor `JobStatus` numbers. 4 (Completed) resolves by `ExitCode`; 3 is Removed.
    public static let htcondor: [Int: StateMapping] = [
        0: .init(.pending),  // Unexpanded (historic)
        1: .init(.pending),  // Idle
        2: .init(.running),
        3: .init(.cancelled),  // Removed
        4: .exit(),  // Completed
        5: .init(.held),
        6: .init(.completing),  // Transferring output
        7: .init(.held),  // Suspended
    ]

    public static func slurm(_ native: String) -> StateMapping { slurm[native] ?? .init(.unknown) }
    public static func pbs(_ native: String) -> StateMapping { pbs[native] ?? .init(.unknown) }
    public static func htcondor(_ native: Int) -> StateMapping { htcondor[native] ?? .init(.unknown) }

    public static func sge(_ native: String) -> StateMapping {
        for (flag, mapping) in sgeFlags where native.contains(flag) { return mapping }
        return .init(.unknown)
    }
}
