/// A batch system driver for one target (a login node, or this machine) and one factory tag (LESSONS §15): the
/// small interface the agent core calls. One implementation per system: `SlurmBackend`, `PBSBackend`, `SGEBackend`,
/// `HTCondorBackend`.
///
/// Every method is one SSH round trip (two when the helper has to be uploaded first), runs only on its own target
/// and has its own timeout, so one target's outage never delays another's.
public protocol BatchBackend: Sendable {
    var system: BatchSystem { get }
    /// `user@host:port` or `local`.
    var target: String { get }
    /// Client IDs of this factory start with this tag; listings are narrowed to it.
    var tag: FactoryTag { get }

    /// Validates a queue's options and templates and stages its payload (checksum-named, atomically) in its work
    /// directory. Cheap to repeat: files already there are not uploaded again.
    func prepare(_ queue: QueueSpec) async throws(BatchError) -> PreparedQueue

    /// Submits one pilot per client ID. IDs minted together (contiguous) become one array job where the system
    /// has arrays. Never throws: every pilot gets an outcome, in the order given.
    func submit(_ pilots: [ClientID], to queue: PreparedQueue) async -> [SubmitResult]

    /// The state of every job of this factory on the target, in one round trip: the live listing (narrowed to the
    /// tag), then accounting for the `ids` the listing lacks. An ID in neither is in `notFound`; it is *not* done:
    /// the caller decides when it is lost. A failed listing throws and must not change any pilot's state.
    func status(_ ids: [NativeJobID]) async throws(BatchError) -> StatusReport

    /// Asks the batch system to remove jobs. A job that is already gone counts as success. Idempotent: call it
    /// again every cycle until a terminal state is seen.
    func cancel(_ ids: [NativeJobID]) async throws(BatchError) -> CancelReport

    /// Looks client IDs up in the listing and in accounting (after a crash, or after an `unknown` submit outcome),
    /// without native IDs.
    func find(_ clientIDs: [ClientID]) async throws(BatchError) -> [ClientID: JobRecord]
}

/// How one pilot's submission ended (LESSONS §2).
public enum SubmitOutcome: Sendable, CustomStringConvertible {
    /// Queued, with its native ID.
    case accepted(NativeJobID)
    /// Certainly not queued. `error.isPermanent`: the same request would fail again (bad account, bad option);
    /// otherwise it may succeed later (controller down, submit limit reached).
    case failed(BatchError)
    /// May or may not be queued (a timeout after the request was sent, output that could not be read). Never
    /// resubmit blindly: `find(_:)` the client ID first.
    case unknown(BatchError)

    public var description: String {
        switch self {
        case .accepted(let id): return "accepted(\(id))"
        case .failed(let e): return "failed(\(e))"
        case .unknown(let e): return "unknown(\(e))"
        }
    }

    public var nativeID: NativeJobID? { if case .accepted(let id) = self { return id } else { return nil } }
}

public struct SubmitResult: Sendable, CustomStringConvertible {
    public var clientID: ClientID
    public var outcome: SubmitOutcome
    public var description: String { "\(clientID): \(outcome)" }
}

/// One job as seen by a status or find call.
public struct JobRecord: Sendable, Hashable, CustomStringConvertible {
    public enum Source: String, Sendable, Hashable {
        /// The live queue listing (`squeue`, `qstat`, `condor_q`).
        case queue
        /// Accounting or history (`sacct`, `qacct`, `qstat -x`, `condor_history`).
        case accounting
    }

    public var id: NativeJobID
    /// From the job's name (or ClassAd), when it is one of this factory's.
    public var clientID: ClientID?
    public var status: JobStatus
    public var source: Source

    public init(id: NativeJobID, clientID: ClientID?, status: JobStatus, source: Source) {
        self.id = id
        self.clientID = clientID
        self.status = status
        self.source = source
    }

    public var description: String { "\(id)\(clientID.map { " [\($0)]" } ?? "") \(status) via \(source)" }
}

/// Whether a target can answer for jobs that left the queue.
public enum AccountingAvailability: Sendable, Hashable, CustomStringConvertible {
    case available
    /// The system has accounting but it is off here (SLURM without slurmdbd: "accounting storage is disabled").
    case disabled(String)
    /// The system (or flavour) has no query for finished jobs (Torque: jobs vanish after `keep_completed`).
    case unsupported
    /// Not needed this time (every ID was in the listing).
    case notQueried

    public var description: String {
        switch self {
        case .available: return "available"
        case .disabled(let why): return "disabled (\(why))"
        case .unsupported: return "unsupported"
        case .notQueried: return "not queried"
        }
    }
}

/// The answer of one status poll of a target.
public struct StatusReport: Sendable {
    public var target: String
    /// Every job seen: this factory's jobs in the listing, and the requested IDs found in accounting.
    public var records: [NativeJobID: JobRecord]
    /// Requested IDs in neither the listing nor accounting. Not "done": the caller applies its grace period.
    public var notFound: Set<NativeJobID>
    /// Requested IDs missing from the listing whose accounting look-up failed this time (e.g. slurmdbd down):
    /// their state is unknown; keep the previous one.
    public var unresolved: Set<NativeJobID> = []
    public var accounting: AccountingAvailability
    /// Why the accounting stage failed, when it did.
    public var accountingError: BatchError?
    /// Rows that did not have the expected shape (counted, never guessed at).
    public var malformedRows: Int

    public init(target: String, records: [NativeJobID: JobRecord] = [:], notFound: Set<NativeJobID> = [],
                accounting: AccountingAvailability = .notQueried, malformedRows: Int = 0) {
        self.target = target
        self.records = records
        self.notFound = notFound
        self.accounting = accounting
        self.malformedRows = malformedRows
    }

    public enum Observation: Sendable, Hashable {
        case seen(JobRecord)
        case notFound
        /// Missing from the listing, and accounting could not be asked: no information.
        case unresolved
        /// Not asked about and not listed.
        case notAsked
    }

    public func observation(_ id: NativeJobID) -> Observation {
        if let r = records[id] { return .seen(r) }
        if unresolved.contains(id) { return .unresolved }
        return notFound.contains(id) ? .notFound : .notAsked
    }

    /// The normalised state of `id`, if it was seen.
    public subscript(_ id: NativeJobID) -> JobStatus? { records[id]?.status }

    /// Sorts the requested IDs the records lack into `notFound` (accounting answered, or cannot ever answer) or
    /// `unresolved` (accounting failed this time).
    mutating func settle(requested: [NativeJobID]) {
        let answerable: Bool
        switch accounting {
        case .available, .notQueried, .disabled, .unsupported: answerable = accountingError == nil
        }
        for id in requested where records[id] == nil {
            if answerable { notFound.insert(id) } else { unresolved.insert(id) }
        }
    }
}

/// What a cancel call achieved, per ID.
public struct CancelReport: Sendable {
    /// The batch system accepted the removal request.
    public var requested: Set<NativeJobID> = []
    /// No such job, or already finished: nothing to do (success).
    public var alreadyGone: Set<NativeJobID> = []
    /// Could not be cancelled now; try again next cycle.
    public var failed: [NativeJobID: BatchError] = [:]

    public init() {}

    public var succeeded: Bool { failed.isEmpty }
}

/// A queue after `prepare`: validated options and the paths of its staged files on the target.
public struct PreparedQueue: Sendable {
    public let spec: QueueSpec
    /// Absolute work directory on the target.
    public let workDirectory: String
    /// Where the pilots' stdout and stderr go.
    public let logDirectory: String
    /// The staged launcher script (sets `APF_*`, then runs the wrapper or glidein).
    public let launcherPath: String
    /// The staged payload files (wrapper, or glidein start script and configuration).
    public let payloadPaths: [String]
    public let target: String
}
