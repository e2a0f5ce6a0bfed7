public import AuthProfiles

/// The whole configuration of a factory, typed, with every problem found while reading it.
public struct AgentConfig: Sendable {
    public var factory: FactoryConfig
    /// Every queue section parsed, in file order, including queues that have errors.
    public var queues: [QueueConfig]
    public var authProfiles: [AuthProfileConfig]
    public var monitors: [MonitorConfig]
    /// Targets derived from APF's CondorSSH keys (one per distinct host, port, user, batch system and profile).
    public var mappedTargets: [TargetDescription]
    public var tenantLimits: [TenantLimits]
    public var targetLimits: [TargetLimits]
    /// The files read, with their kind, in order.
    public var files: [(path: String, kind: ConfigFileKind)]
    public var diagnostics: [ConfigDiagnostic]

    public var errors: [ConfigDiagnostic] { diagnostics.filter(\.isError) }
    public var warnings: [ConfigDiagnostic] { diagnostics.filter { !$0.isError } }
    public var isValid: Bool { errors.isEmpty }

    public func queue(named name: String) -> QueueConfig? { queues.first { $0.name == name } }
}

/// One APF queue (a `queues.conf` section).
public struct QueueConfig: Sendable {
    public var name: String
    public var location: ConfigLocation
    /// `enabled` (APF: a missing value disables the queue), ANDed later with `[Factory] enablequeues`.
    public var enabled: Bool
    public var tenant: String
    public var wmsQueue: String?
    public var batchQueue: String?
    /// `apfqueue.sleep`: seconds between cycles (360).
    public var cycleInterval: Int
    /// Plugin names exactly as configured.
    public var wmsStatusPlugin: String?
    public var batchStatusPlugin: String?
    public var schedPlugins: [String]
    public var submitPlugin: String?
    /// Typed selections; nil when the setting has an error.
    public var wmsStatus: WMSStatusConfig?
    public var batchStatus: BatchStatusConfig?
    /// The scheduler chain; nil when a plugin name or parameter has an error.
    public var chain: SchedulerChain?
    /// Every `sched.*` key of the section (own or inherited), in order, as written.
    public var schedParameters: [(key: String, value: String)]
    public var submit: SubmitMode?
    public var executable: String?
    public var arguments: String?
    public var environ: String?
    /// `condor_attributes` lines and `condor_attributes.<Key>` keys, in order.
    public var extraAttributes: [(key: String, value: String)]
    public var retire: RetirePolicy
    public var monitorSections: [String]
    public var keepLogDays: Int?
    /// apf-agent's `pilot.*` keys: batch options and the remote work directory.
    public var pilot: PilotSettings = PilotSettings()
    /// Local mode only: the `target` key, naming a target of batch `local` (tenancy and limits); nil = the implicit
    /// `local:<batch>` target.
    public var localTarget: String?
    public var errorCount: Int

    /// False when the queue has an error: it is listed, but never started.
    public var isUsable: Bool { errorCount == 0 }
}

/// apf-agent's per-queue pilot options (`pilot.*`). Unset values fall back to the target's defaults (partition,
/// account) or the batch system's.
public struct PilotSettings: Sendable, Hashable {
    /// `pilot.walltime`, seconds.
    public var walltime: Int?
    public var cores: Int?
    /// `pilot.memory`, MiB.
    public var memoryMB: Int?
    public var partition: String?
    public var account: String?
    /// `pilot.sge_pe`: the SGE parallel environment for multi-core pilots.
    public var sgeParallelEnvironment: String?
    /// `pilot.extra`: raw batch options, split like a shell line (never run by a shell).
    public var extra: [String] = []
    /// `pilot.workdir`: the remote work directory (relative to the home directory); nil = `.apf-agent/work/<queue>`.
    public var workDirectory: String?

    public init() {}
}

/// Where a queue's demand comes from (`wmsstatusplugin`).
public enum WMSStatusConfig: Sendable, Hashable {
    /// `None`: no WMS input (chains that need demand are rejected at load).
    case none
    /// `Panda`: PanDA job statistics for the site `wmsqueue` (factory-wide poller).
    case panda(site: String)
    /// `Condor`: idle jobs of an HTCondor pool grouped by `queueskey` (APF's "one queue watches another").
    case condor(CondorPool, label: String)
    /// `Command`: a local command printing demand as JSON.
    case command(argv: [String], timeout: Int, sleep: Int, maxAge: Int)
    /// `HTTP`: a URL returning demand as JSON.
    case http(url: String, timeout: Int, retries: Int, sleep: Int, maxAge: Int)
    /// `Batch`: pending jobs of a batch system reached through a target.
    case batch(target: String?, selector: PendingJobSelector, sleep: Int, maxAge: Int)
}

/// An HTCondor schedd and collector (APF's `*.condor.scheddhost/scheddport/collectorhost/collectorport`).
public struct CondorPool: Sendable, Hashable {
    public var scheddHost: String
    public var scheddPort: Int
    public var collectorHost: String
    public var collectorPort: Int
    /// The ClassAd attribute jobs are grouped by (`MATCH_APF_QUEUE`, or `wmsstatus.condor.queueskey`).
    public var groupBy: String
}

/// Where a queue's pilot counts come from (`batchstatusplugin`).
public enum BatchStatusConfig: Sendable, Hashable {
    /// The journal plus one shared status query per target and cycle (APF's `Condor` maps here too: the counts
    /// come from the target the pilots were submitted to).
    case target(pool: CondorPool?)
}

/// How a queue submits (`batchsubmitplugin`).
public enum SubmitMode: Sendable, Hashable {
    /// Over SSH to a target: named (`target = NAME`, resolved against the target store) or mapped from APF keys.
    case ssh(TargetReference)
    /// Local mode: the batch system's commands run on this host.
    case local(batch: String)
}

public enum TargetReference: Sendable, Hashable {
    case named(String, profile: String?)
    case mapped(TargetDescription)

    public var name: String {
        switch self {
        case .named(let n, _): n
        case .mapped(let t): t.name
        }
    }
}

/// A remote cluster reached over SSH, as described by APF's CondorSSH keys. A plain value: the target store and
/// SSH submission consume it.
public struct TargetDescription: Sendable, Hashable {
    /// `user@host:port/batch`, unique per description.
    public var name: String
    public var tenant: String
    public var host: String
    public var port: Int
    public var user: String
    /// slurm, pbs, sge, condor (lsf is recognised, no driver yet).
    public var batch: String
    /// The auth profile (an SSH profile of the same tenant).
    public var profile: String
    /// The queue keys it was mapped from.
    public var origin: ConfigLocation
    public var mappedFrom: String
}

/// Retiring pilots when the chain's number is negative (APF's `peaceful`/`killorder`, made explicit).
public struct RetirePolicy: Sendable, Hashable {
    public enum Mode: String, Sendable, CaseIterable {
        /// Cancel pilots that have not started (pending, held), never running ones. The default.
        case cancelIdle = "cancel-idle"
        /// Cancel not-started pilots first, then running ones (APF `peaceful = False`).
        case cancel
        /// Never cancel: a negative number means 0 (APF `peaceful = True`, and APF's accidental behaviour).
        case floor
    }

    public enum Order: String, Sendable, CaseIterable {
        case newest
        case oldest
    }

    public var mode: Mode
    public var order: Order
    /// Cancel pilots pending longer than this many seconds while the chain asks for none (nil = off).
    public var idleAfter: Int?
    /// At most this many cancels per cycle (nil = no cap).
    public var maxPerCycle: Int?

    public static let `default` = RetirePolicy(mode: .cancelIdle, order: .newest, idleAfter: nil, maxPerCycle: nil)
}

/// A batch-demand selection: what "pending work" means in a batch system used as a WMS.
public struct PendingJobSelector: Sendable, Hashable, Codable {
    /// SLURM partition, PBS/SGE queue.
    public var partition: String?
    /// HTCondor constraint expression, or a job-name/label match for other systems.
    public var constraint: String?

    public init(partition: String? = nil, constraint: String? = nil) {
        self.partition = partition
        self.constraint = constraint
    }
}

/// `[Factory]` settings the agent uses (and APF's, checked and kept).
public struct FactoryConfig: Sendable {
    public var location: ConfigLocation?
    public var factoryId: String?
    public var adminEmail: String?
    public var factoryUser: String?
    public var enableQueues: Bool
    public var cycles: Int?
    /// Default tenant for queues and profiles that do not name one.
    public var tenant: String
    public var journalPath: String?
    /// `tag`: the client-ID tag of this factory's pilots (1-4 characters; `apf`).
    public var clientTag: String = "apf"
    public var baseLogDir: String?
    public var baseLogDirURL: String?
    public var maxPerFactory: Int?
    public var panda: PandaSettings
    public var condorSleep: Int
    public var condorMaxAge: Int
    public var queueSources: [String]
    public var queueDir: String?
    public var authSources: [String]
    public var monitorSources: [String]
    /// Where each key of [Factory] was written.
    public var keyLocations: [String: ConfigLocation] = [:]

    public static let `default` = FactoryConfig(
        location: nil, factoryId: nil, adminEmail: nil, factoryUser: nil, enableQueues: true, cycles: nil,
        tenant: "default", journalPath: nil, baseLogDir: nil, baseLogDirURL: nil, maxPerFactory: nil,
        panda: PandaSettings(), condorSleep: 150, condorMaxAge: 360, queueSources: [], queueDir: nil,
        authSources: [], monitorSources: [])
}

/// The PanDA poller's settings (`[Factory] wmsstatus.panda.*`).
public struct PandaSettings: Sendable, Hashable {
    /// Base URL of the PanDA server API (`PANDA_URL`'s default in APF's client).
    public var url: String = "http://pandaserver.cern.ch:25080/server/panda"
    /// Seconds between polls (150).
    public var sleep: Int = 150
    /// Older information is refused (360 s).
    public var maxAge: Int = 360
    /// Per-request timeout (30 s) and retries (2).
    public var timeout: Int = 30
    public var retries: Int = 2
    /// Also read site specs, for StatusTest/StatusOffline (True).
    public var siteSpecs: Bool = true

    public init() {}
}

/// apf-agent's per-tenant caps (`[tenant:NAME]` in the factory file).
public struct TenantLimits: Sendable, Hashable {
    public var tenant: String
    public var idle: Int?
    public var running: Int?
    public var held: Int?
    public var submitPerCycle: Int?
    public var location: ConfigLocation
}

/// apf-agent's per-target limits (`[target:NAME]` in the factory file).
public struct TargetLimits: Sendable, Hashable {
    public var target: String
    /// Remote operations in flight at once on this target (4).
    public var concurrency: Int
    public var submitPerCycle: Int?
    /// Capped exponential back-off after failures: base and cap in seconds (30, 1800).
    public var backoffBase: Int
    public var backoffMax: Int
    /// How long one status listing is reused by every queue on the target (60 s).
    public var statusTTL: Int
    public var location: ConfigLocation
}

/// An `auth.conf` section.
public struct AuthProfileConfig: Sendable {
    public enum Kind: Sendable {
        case ssh(SSHProfileDescription)
        case x509(X509ProfileDescription)
        /// GSISSH, CloudTenant, Password, Noop: recognised, not usable yet.
        case other(String)
    }

    public var name: String
    public var tenant: String
    /// `plugin` as configured.
    public var plugin: String?
    public var kind: Kind?
    public var location: ConfigLocation
    public var errorCount: Int
}

/// An SSH key pair profile as APF's `plugin = SSH` sections describe it. Inline secrets are `Secret`s.
public struct SSHProfileDescription: Sendable {
    public var name: String
    public var tenant: String
    /// `ssh.type`: rsa, dsa, ecdsa, ed25519 (as written; informative).
    public var keyType: String?
    public var privateKeyFile: String?
    public var publicKeyFile: String?
    /// `ssh.privkeypassfile`: a file holding the key's passphrase.
    public var passphraseFile: String?
    /// `ssh.privatekey` / `ssh.publickey`: base64 key material written inline.
    public var inlinePrivateKey: Secret?
    public var inlinePublicKey: String?
    /// `ssh.privkeypass`: an inline passphrase.
    public var inlinePassphrase: Secret?
    /// `authbasedir`: where APF materialised inline keys.
    public var baseDir: String?
    public var location: ConfigLocation
}

/// An X509 proxy profile (`plugin = X509`).
public struct X509ProfileDescription: Sendable, Hashable {
    public var name: String
    public var tenant: String
    public var proxyFile: String?
    public var voRole: String?
    public var flavor: String
    public var lifetime: Int
    public var checkTime: Int
    public var minLife: Int
    public var renew: Bool
    public var userCert: String?
    public var userKey: String?
    public var baseProxy: String?
    public var location: ConfigLocation
}

/// A `monitor.conf` section.
public struct MonitorConfig: Sendable, Hashable {
    public var name: String
    public var plugin: String?
    public var url: String?
    public var location: ConfigLocation
}
