import Foundation
public import Logging
public import SSHSubmit

/// An error of the factory runtime, with a stable code and a message saying what to do (STYLE §6).
public struct FactoryError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let id: String
        public init(_ id: String) { self.id = id }
        public var description: String { id }

        /// The configuration has errors; nothing was started or changed.
        public static let invalidConfig = Code("factory.invalid-config")
        /// A queue's target cannot be resolved (unknown target, no profile, no store).
        public static let target = Code("factory.target")
        /// A queue names another tenant's target or profile.
        public static let tenancy = Code("factory.tenancy")
        /// A queue's pilot wrapper cannot be read.
        public static let payload = Code("factory.payload")
        /// The journal cannot be read or written.
        public static let journal = Code("factory.journal")
        /// Something the runtime cannot do yet for this queue (a WMS source without a driver, an LRMS).
        public static let unsupported = Code("factory.unsupported")
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "[\(code.id)] \(message)" }
    public static func == (a: Self, b: Self) -> Bool { a.code == b.code }
}

/// Tunables of the factory runtime. The defaults suit a production factory (cycles of minutes); tests and the
/// demo shorten them.
public struct FactoryOptions: Sendable {
    /// A pilot absent from the queue listing **and** from accounting becomes `lost` only after this long
    /// (LESSONS §3).
    public var lostGrace: Duration = .seconds(600)
    /// An intent in doubt (unknown submit outcome, or a crash during a submit) that is not found on its target by
    /// client ID after this long becomes `missed`; until then it counts as a pilot, so nothing is submitted twice.
    public var missedGrace: Duration = .seconds(600)
    /// Each queue's cycle is its interval plus a random part of up to this fraction of it.
    public var jitter: Double = 0.1
    /// Replaces every queue's `apfqueue.sleep` (tests, the demo); nil = the configured interval.
    public var cycleInterval: Duration?
    /// A transiently rejected pilot is submitted again (same client ID) after this delay, doubling per attempt up
    /// to `retryMax`, at most `maxAttempts` times; then it is `failed`.
    public var retryDelay: Duration = .seconds(60)
    public var retryMax: Duration = .seconds(1800)
    public var maxAttempts: Int = 5
    /// A queue whose pilots the target refuses for good (bad options) pauses for this long, doubling up to
    /// `queueBackoffMax`.
    public var queueBackoffBase: Duration = .seconds(60)
    public var queueBackoffMax: Duration = .seconds(3600)
    /// Defaults for targets without a `[target:NAME]` section in the factory file.
    public var targetConcurrency: Int = 4
    public var statusTTL: Duration = .seconds(60)
    public var backoffBase: Duration = .seconds(30)
    public var backoffMax: Duration = .seconds(1800)
    /// Timeouts of the batch drivers' remote calls.
    public var batchTimeouts = BatchTimeouts()

    public init() {}
}

/// What a factory runs with besides its configuration: the journal, where targets and profiles come from, time,
/// logging, and (for tests, simulations and embedders) replacements for the batch drivers and demand sources.
public struct FactoryEnvironment: Sendable {
    public var journal: AgentStore
    /// Targets and SSH profiles (the installation's store) with the process's SSH pools; needed for every queue that
    /// submits over SSH (named targets, and CondorSSH queues for the known_hosts file).
    public var resolver: TargetResolver?
    public var clock: StatusClock
    public var logger: Logger
    /// Builds a target's batch driver. Nil: the real drivers, over SSH or in local mode.
    public var makeBackend: (@Sendable (TargetPlan) throws(FactoryError) -> any BatchBackend)?
    /// Supplies a queue's demand. Nil: the configured WMS status plugin. Returning nil falls back to it too.
    public var makeDemandSource: (@Sendable (QueueConfig) -> (any WMSStatusSource)?)?
    /// A number in [0, 1) for jitter.
    public var random: @Sendable () -> Double

    public init(
        journal: AgentStore, resolver: TargetResolver? = nil, clock: StatusClock = .system, logger: Logger,
        makeBackend: (@Sendable (TargetPlan) throws(FactoryError) -> any BatchBackend)? = nil,
        makeDemandSource: (@Sendable (QueueConfig) -> (any WMSStatusSource)?)? = nil,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.journal = journal
        self.resolver = resolver
        self.clock = clock
        self.logger = logger
        self.makeBackend = makeBackend
        self.makeDemandSource = makeDemandSource
        self.random = random
    }
}

extension Duration {
    static func seconds(double s: Double) -> Duration { .milliseconds(Int64((s * 1000).rounded())) }

    func times(_ f: Double) -> Duration { .seconds(double: seconds * f) }
}

extension Date {
    func adding(_ d: Duration) -> Date { addingTimeInterval(d.seconds) }
}
