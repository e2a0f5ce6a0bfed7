import AuthProfiles
import Foundation
import Synchronization
public import SSHSubmit

/// Where a queue's pilots go: a target with its batch system, how it is reached and its limits. Every queue of the
/// same target shares one `TargetPlan` (and, at run time, one driver, status listing, concurrency limit and back-off).
public struct TargetPlan: Sendable, Hashable {
    public enum Access: Sendable, Hashable {
        /// A target of the installation's store (`apf-agent target add`), over SSH with its tenant's profile (or the
        /// queue's `profile`, which must be the same tenant's).
        case store(name: String, profileOverride: String?)
        /// A target described by APF's CondorSSH keys, logging in with an auth.conf SSH profile.
        case mapped(TargetDescription)
        /// This machine: the batch system's commands run locally (local mode).
        case local
    }

    public struct Limits: Sendable, Hashable {
        /// Remote operations in flight at once on the target.
        public var concurrency: Int
        /// One status listing per target is reused by all its queues for this long.
        public var statusTTL: Duration
        public var backoffBase: Duration
        public var backoffMax: Duration
        /// Submissions per cycle (`[target:NAME] limit.submit_per_cycle`, or the store's `--max-submit-per-cycle`).
        public var submitPerCycle: Int?
        /// Pilots that have not ended, and of those not yet running (the store's `--max-pilots`, `--max-queued`).
        public var maxPilots: Int?
        public var maxQueued: Int?
    }

    /// The target's name: the store name, the mapped `user@host:port/batch` name, or `local:<batch>`.
    public var name: String
    /// The owning tenant; nil for the implicit local target (the agent's own account).
    public var tenant: String?
    public var system: BatchSystem
    public var access: Access
    /// Defaults from the store's target (`--partition`, `--account`).
    public var partition: String?
    public var account: String?
    public var limits: Limits
}

/// A queue ready to run: its configuration, target and the spec its driver prepares.
struct QueuePlan: Sendable {
    var config: QueueConfig
    var target: TargetPlan
    var spec: QueueSpec
    var interval: Duration
    /// Changes when anything that matters to the running queue changes (reload restarts nothing else).
    var fingerprint: String

    var name: String { config.name }
    var tenant: String { config.tenant }
}

/// Turns a checked configuration into queue and target plans: resolves targets (store, CondorSSH, local), enforces
/// tenancy, reads pilot wrappers and builds each queue's `QueueSpec`. A queue that cannot be planned gets an error
/// of its own; the others are unaffected.
struct Planner {
    let config: AgentConfig
    let store: ProfileStore?
    let options: FactoryOptions
    /// Wrappers read once per plan and shared by the queues that name the same file.
    private let wrappers = WrapperCache()

    init(config: AgentConfig, store: ProfileStore?, options: FactoryOptions) {
        self.config = config
        self.store = store
        self.options = options
    }

    static func batchSystem(_ name: String) -> BatchSystem? {
        switch name {
        case "slurm": .slurm
        case "pbs": .pbs
        case "sge": .sge
        case "condor", "htcondor": .htcondor
        default: nil
        }
    }

    func plan() -> [String: Result<QueuePlan, FactoryError>] {
        var out: [String: Result<QueuePlan, FactoryError>] = [:]
        for q in config.queues {
            do throws(FactoryError) {
                out[q.name] = .success(try plan(q))
            } catch {
                out[q.name] = .failure(error)
            }
        }
        return out
    }

    func plan(_ q: QueueConfig) throws(FactoryError) -> QueuePlan {
        guard q.isUsable else {
            throw FactoryError(.invalidConfig, "queue \(q.name) has \(q.errorCount) configuration error(s); see `apf-agent config check`")
        }
        guard let submit = q.submit else { throw FactoryError(.invalidConfig, "queue \(q.name) has no usable submitter") }
        let target = try targetPlan(q, submit)
        let tag: FactoryTag
        do throws(BatchError) {
            tag = try FactoryTag(config.factory.clientTag)
        } catch {
            throw FactoryError(.invalidConfig, error.message)
        }
        let (payload, digest) = try payload(q)
        let p = q.pilot
        let options = BatchOptions(
            walltime: p.walltime.map { .seconds($0) }, cores: p.cores, memoryMB: p.memoryMB,
            partition: p.partition ?? target.partition, account: p.account ?? target.account,
            sgeParallelEnvironment: p.sgeParallelEnvironment, extra: p.extra)
        let spec = QueueSpec(
            name: q.name, factory: config.factory.factoryId ?? "apf-agent", tag: tag, payload: payload, options: options,
            workDirectory: p.workDirectory ?? ".apf-agent/work/\(Self.safeName(q.name))")
        let interval = options_interval(q)
        let fingerprint = [
            q.name, q.tenant, "\(q.enabled)", q.wmsStatusPlugin ?? "", q.wmsQueue ?? "", q.schedPlugins.joined(separator: ","),
            q.schedParameters.map { "\($0.key)=\($0.value)" }.joined(separator: ";"), "\(q.submit.map { "\($0)" } ?? "")",
            "\(q.wmsStatus.map { "\($0)" } ?? "")", "\(q.pilot)", q.executable ?? "", q.arguments ?? "", q.environ ?? "",
            "\(q.retire)", "\(interval)", digest, "\(target)",
        ].joined(separator: "|")
        return QueuePlan(config: q, target: target, spec: spec, interval: interval, fingerprint: fingerprint)
    }

    private func options_interval(_ q: QueueConfig) -> Duration {
        options.cycleInterval ?? .seconds(max(1, q.cycleInterval))
    }

    static func safeName(_ s: String) -> String {
        String(s.map { c in c.isASCII && (c.isLetter || c.isNumber || c == "." || c == "_" || c == "-") ? c : "_" })
    }

    // MARK: - Targets

    func limits(for name: String, store target: Target?) -> TargetPlan.Limits {
        let section = config.targetLimits.first { $0.target == name }
        return TargetPlan.Limits(
            concurrency: max(1, section?.concurrency ?? options.targetConcurrency),
            statusTTL: section.map { .seconds($0.statusTTL) } ?? options.statusTTL,
            backoffBase: section.map { .seconds($0.backoffBase) } ?? options.backoffBase,
            backoffMax: section.map { .seconds($0.backoffMax) } ?? options.backoffMax,
            submitPerCycle: section?.submitPerCycle ?? target?.limits.maxSubmitPerCycle,
            maxPilots: target?.limits.maxPilots, maxQueued: target?.limits.maxQueued)
    }

    /// A target of the installation's store, checked to belong to the queue's tenant.
    func storeTarget(_ name: String, for q: QueueConfig) throws(FactoryError) -> Target {
        guard let store else {
            throw FactoryError(.target, "queue \(q.name) names target '\(name)' but no installation store is open; run with --home (or $APF_HOME)")
        }
        let t: Target
        do throws(AuthError) {
            t = try store.target(name)
        } catch {
            throw FactoryError(.target, "queue \(q.name): \(error.message)")
        }
        guard t.tenant == q.tenant else {
            throw FactoryError(.tenancy, "queue \(q.name) of tenant '\(q.tenant)' may not use target '\(name)', which belongs to tenant '\(t.tenant)'")
        }
        return t
    }

    func targetPlan(_ q: QueueConfig, _ submit: SubmitMode) throws(FactoryError) -> TargetPlan {
        switch submit {
        case .ssh(.named(let name, let profile)):
            let t = try storeTarget(name, for: q)
            guard t.batch != .local, t.host != nil else {
                throw FactoryError(.target, "target '\(name)' is a local target (this machine, no SSH): use batchsubmitplugin = Local with batchsubmit.local.batch = slurm|pbs|sge|condor and target = \(name)")
            }
            guard let system = Self.batchSystem(t.batch.rawValue) else {
                throw FactoryError(.unsupported, "target '\(name)' has batch system \(t.batch.rawValue), which has no driver")
            }
            return TargetPlan(name: name, tenant: t.tenant, system: system, access: .store(name: name, profileOverride: profile),
                              partition: t.partition, account: t.account, limits: limits(for: name, store: t))
        case .ssh(.mapped(let d)):
            guard d.tenant == q.tenant else {
                throw FactoryError(.tenancy, "queue \(q.name) of tenant '\(q.tenant)' may not use target \(d.name) of tenant '\(d.tenant)'")
            }
            guard let system = Self.batchSystem(d.batch) else {
                throw FactoryError(.unsupported, "batch system '\(d.batch)' has no driver yet")
            }
            guard let profile = config.authProfiles.first(where: { $0.name == d.profile }) else {
                throw FactoryError(.target, "queue \(q.name): auth profile '\(d.profile)' is not in auth.conf")
            }
            guard profile.tenant == q.tenant else {
                throw FactoryError(.tenancy, "queue \(q.name) of tenant '\(q.tenant)' may not use auth profile '\(d.profile)' of tenant '\(profile.tenant)'")
            }
            guard case .ssh? = profile.kind else {
                throw FactoryError(.target, "auth profile '\(d.profile)' is not an SSH profile")
            }
            return TargetPlan(name: d.name, tenant: d.tenant, system: system, access: .mapped(d), partition: nil, account: nil,
                              limits: limits(for: d.name, store: nil))
        case .local(let batch):
            guard let system = Self.batchSystem(batch) else {
                throw FactoryError(.unsupported, "local batch system '\(batch)' has no driver yet")
            }
            if let name = q.localTarget {
                let t = try storeTarget(name, for: q)
                guard t.batch == .local else {
                    throw FactoryError(.target, "target '\(name)' is a remote \(t.batch.rawValue) target: use batchsubmitplugin = SSH with target = \(name)")
                }
                return TargetPlan(name: name, tenant: t.tenant, system: system, access: .local, partition: t.partition,
                                  account: t.account, limits: limits(for: name, store: t))
            }
            let name = "local:\(batch)"
            return TargetPlan(name: name, tenant: nil, system: system, access: .local, partition: nil, account: nil,
                              limits: limits(for: name, store: nil))
        }
    }

    // MARK: - Payload

    /// The pilot wrapper: `executable` (a file on this host, staged to the target), `executable.arguments` (split
    /// like a shell line, never run by one), `environ` (`NAME=value` words) plus APF's pilot variables.
    func payload(_ q: QueueConfig) throws(FactoryError) -> (Payload, String) {
        guard let path = q.executable else {
            throw FactoryError(.payload, "queue \(q.name) has no 'executable'")
        }
        guard let (data, digest) = wrappers.read(path) else {
            throw FactoryError(.payload, "queue \(q.name): cannot read the pilot wrapper '\(path)' (executable); it must be a readable file on this host")
        }
        func literal(_ s: String) -> String { s.replacingOccurrences(of: "{", with: "{{").replacingOccurrences(of: "}", with: "}}") }
        var arguments: [String] = []
        if let a = q.arguments {
            guard let argv = ArgvSplitter.split(a) else {
                throw FactoryError(.payload, "queue \(q.name): 'executable.arguments' has an unbalanced quote")
            }
            arguments = argv.map(literal)
        }
        let factory = config.factory.factoryId ?? "apf-agent"
        var environment: [(String, String)] = [
            ("PANDA_JSID", literal(factory)), ("APFFID", literal(factory)), ("APFCID", "{client_id}"),
            ("FACTORYQUEUE", "{queue}"), ("FACTORYUSER", literal(config.factory.factoryUser ?? "apf-agent")),
        ]
        if let e = q.environ {
            guard let words = ArgvSplitter.split(e) else {
                throw FactoryError(.payload, "queue \(q.name): 'environ' has an unbalanced quote")
            }
            for w in words {
                guard let eq = w.firstIndex(of: "="), eq != w.startIndex else {
                    throw FactoryError(.payload, "queue \(q.name): 'environ' word '\(w)' is not NAME=value")
                }
                environment.append((String(w[..<eq]), literal(String(w[w.index(after: eq)...]))))
            }
        }
        var name = Self.safeName((path as NSString).lastPathComponent)
        if name.hasPrefix(".") || name.isEmpty { name = "pilot" + name }
        return (.wrapper(PilotWrapper(name: name, content: data, arguments: arguments, environment: environment)), digest)
    }
}

/// Pilot wrapper files by path: read once, shared (copy-on-write) by every queue that names them.
final class WrapperCache: Sendable {
    private let files = Mutex<[String: ([UInt8], String)]>([:])

    func read(_ path: String) -> ([UInt8], String)? {
        if let hit = files.withLock({ $0[path] }) { return hit }
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let bytes = [UInt8](data)
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a: only to notice a changed wrapper on reload
        for b in bytes { hash = (hash ^ UInt64(b)) &* 0x100_0000_01b3 }
        let entry = (bytes, String(hash, radix: 16))
        files.withLock { $0[path] = entry }
        return entry
    }
}
