/// Every plugin name APF 2.4 (and VC3's extensions) used, what apf-agent does with it, and the parameters each
/// reads. Plugin names are case-sensitive, as in APF.
public enum PluginCatalog {
    // MARK: WMS status

    public enum WMSStatusKind: String, Sendable, CaseIterable {
        case panda = "Panda"
        case condor = "Condor"
        case queue = "Queue"
        case none = "None"
        /// apf-agent: a local command printing demand as JSON.
        case command = "Command"
        /// apf-agent: an HTTP(S) URL returning demand as JSON.
        case http = "HTTP"
        /// apf-agent: pending jobs of a batch system (a SLURM partition, an HTCondor schedd) as demand.
        case batch = "Batch"
    }

    // MARK: Batch status

    public enum BatchStatusKind: String, Sendable, CaseIterable {
        /// APF's poller of a local/remote schedd; apf-agent reads the queue's target instead (same counts).
        case condor = "Condor"
        /// apf-agent: the journal plus one shared status query per target per cycle.
        case target = "Target"
    }

    // MARK: Scheduler plugins (APF.md §4)

    /// The scheduler plugins apf-agent runs, with their parameters (`sched.<name lower>.<param>`).
    public static let schedPlugins: [String: [String: KeyType]] = [
        "Ready": ["offset": .int()],
        "Fixed": ["pilotspercycle": .int()],
        "KeepNRunning": ["keep_running": .int()],
        "Scale": ["factor": .double(min: 0)],
        "MaxPerCycle": ["maximum": .int()],
        "MinPerCycle": ["minimum": .int()],
        "MaxPending": ["maximum": .int(), "allow_negative": .bool],
        "MinPending": ["minimum": .int()],
        "MaxToRun": ["maximum": .int()],
        "MaxPerFactory": [:],
        "StatusTest": ["pilots": .int()],
        "StatusOffline": ["pilots": .int()],
        "Throttle": [
            "interval": .int(min: 1), "maxtime": .int(min: 0), "ratio": .double(min: 0, max: 1), "submit": .int(),
        ],
        "WeightedActivated": ["activated": .double(), "pending": .double()],
        "Fillactivated": ["default": .int()],
        "Null": [:],
    ]

    /// Scheduler plugins APF shipped as broken or empty stubs: recognised, not ported.
    public static let schedNotPorted: [String: String] = [
        "KeepNQueueLife": "a broken stub in APF 2.4 (it imported a module that does not exist)",
        "MaxToSubmit": "an empty stub in APF 2.4",
        "MinToSubmit": "an empty stub in APF 2.4",
    ]

    /// Scheduler plugins removed before APF 2.4: recognised, with their replacement.
    public static let schedRemoved: [String: String] = [
        "Activated": "removed in APF 2.x; use Ready with MaxPerCycle, MinPerCycle, MaxPending and StatusTest",
        "Simple": "removed in APF 2.x; use Ready with MaxPerCycle and MaxPending",
        "Trivial": "removed in APF 2.x; use Ready",
        "SimpleNQueue": "removed in APF 2.x; use Ready with MaxPending",
    ]

    /// Parameters that APF's own examples set but no APF 2.4 plugin reads.
    static let schedIgnoredParams: [String: String] = [
        "sched.statustest.allowed": "APF 2.4 never read it; StatusTest applies whenever it is in the chain",
        "sched.statusoffline.allowed": "APF 2.4 never read it; StatusOffline applies whenever it is in the chain",
    ]

    /// Lower-case plugin name → configured spelling.
    static let schedByLowercase: [String: String] = {
        var m: [String: String] = [:]
        for n in schedPlugins.keys { m[n.lowercased()] = n }
        for n in schedNotPorted.keys { m[n.lowercased()] = n }
        for n in schedRemoved.keys { m[n.lowercased()] = n }
        return m
    }()

    // MARK: Submitters (APF.md §5)

    /// What a submitter name means to apf-agent.
    public enum SubmitterSupport: Sendable, Hashable {
        /// Mapped onto an SSH target (CondorSSH, VC3's CondorSSHRemoteManager, apf-agent's SSH).
        case ssh
        /// Local mode: the batch system's commands run on this host.
        case local(batch: String?)
        /// A Condor-G grid or cloud submitter: recognised, not supported yet.
        case notSupportedYet
        /// An intermediate class of APF's submitter tree, not selectable.
        case abstract
        /// Broken in APF and not ported.
        case broken(String)
    }

    public struct Submitter: Sendable {
        public let name: String
        /// Key prefix: `batchsubmit.<id>.`.
        public let id: String
        public let parent: String?
        public let params: [String: KeyType]
        /// Parameter prefixes that take any suffix (`condor_attributes.` → `condor_attributes.+maxMemory`).
        public let paramPrefixes: [String]
        public let support: SubmitterSupport
    }

    private static let killorder = KeyType.choice(["newest", "oldest"])
    private static let port = KeyType.int(min: 1, max: 65535)
    /// Bosco's remote batch systems (`grid_resource = batch <lrms> ...`).
    public static let boscoBatchSystems = ["slurm", "pbs", "lsf", "sge", "condor"]
    /// Batch systems apf-agent drives (SSH or local).
    public static let supportedBatchSystems = ["slurm", "pbs", "sge", "condor"]

    public static let submitters: [Submitter] = [
        Submitter(
            name: "CondorBase", id: "condorbase", parent: nil,
            params: [
                "submitargs": .string, "environ": .string, "condor_attributes": .string,
                "overlay.peaceful": .bool, "overlay.killorder": killorder,
                // The keys APF's examples write (and APF 2.4 silently ignored, APF.md §11): accepted and used.
                "peaceful": .bool, "killorder": killorder,
            ],
            paramPrefixes: ["condor_attributes."], support: .abstract),
        Submitter(
            name: "CondorGrid", id: "condorgrid", parent: "condorbase",
            params: ["proxy": .list, "proxyfile": .string], paramPrefixes: [], support: .abstract),
        Submitter(name: "CondorCE", id: "condorce", parent: "condorgrid", params: [:], paramPrefixes: [], support: .abstract),
        Submitter(
            name: "CondorOSGCE", id: "condorosgce", parent: "condorce",
            params: [
                "gridresource": .string, "port": port, "remote_condor_collector": .string,
                "remote_condor_schedd": .string,
            ], paramPrefixes: [], support: .notSupportedYet),
        Submitter(
            name: "CondorGRAM", id: "condorgram", parent: "condorce", params: [:], paramPrefixes: ["gram."],
            support: .abstract),
        Submitter(
            name: "CondorGT2", id: "condorgt2", parent: "condorgram",
            params: ["gridresource": .string, "globusrsl": .string, "globusrsladd": .string], paramPrefixes: [],
            support: .notSupportedYet),
        Submitter(
            name: "CondorGT5", id: "condorgt5", parent: "condorgram",
            params: ["gridresource": .string, "globusrsl": .string, "globusrsladd": .string], paramPrefixes: [],
            support: .notSupportedYet),
        Submitter(
            name: "CondorCREAM", id: "condorcream", parent: "condorce",
            params: [
                "gridresource": .string, "webservice": .string, "port": port, "batch": .string, "queue": .string,
            ], paramPrefixes: [], support: .notSupportedYet),
        Submitter(
            name: "CondorNordugrid", id: "condornordugrid", parent: "condorce", params: ["gridresource": .string],
            paramPrefixes: [], support: .notSupportedYet),
        Submitter(
            name: "CondorLSF", id: "condorlsf", parent: "condorgrid", params: [:], paramPrefixes: [],
            support: .local(batch: "lsf")),
        Submitter(
            name: "CondorPBS", id: "condorpbs", parent: "condorgrid", params: [:], paramPrefixes: [],
            support: .local(batch: "pbs")),
        Submitter(
            name: "CondorLocal", id: "condorlocal", parent: "condorbase", params: ["proxy": .list],
            paramPrefixes: [], support: .local(batch: "condor")),
        Submitter(
            name: "CondorSSH", id: "condorssh", parent: "condorbase",
            params: [
                "batch": .choice(boscoBatchSystems), "host": .string, "port": port, "user": .string,
                "authprofile": .name,
            ], paramPrefixes: [], support: .ssh),
        Submitter(
            name: "CondorSSHRemoteManager", id: "condorsshremotemanager", parent: "condorbase",
            params: [
                "batch": .choice(boscoBatchSystems), "method": .choice(["ssh", "sshproxy", "gsissh"]),
                "host": .string, "port": port, "user": .string, "authprofile": .name, "sandboxdir": .string,
            ], paramPrefixes: [], support: .ssh),
        Submitter(
            name: "CondorEC2", id: "condorec2", parent: "condorbase",
            params: [
                "gridresource": .string, "ami_id": .string, "instance_type": .string, "security_groups": .string,
                "spot_price": .double(min: 0), "user_data": .string, "user_data_file": .string,
                "access_key_id": .string, "secret_access_key": .string, "usessh": .bool, "peaceful": .bool,
            ], paramPrefixes: [], support: .notSupportedYet),
        Submitter(
            name: "CondorDeltaCloud", id: "condordeltacloud", parent: "condorbase",
            params: [
                "gridresource": .string, "hardware_profile": .string, "hardware_profile_cpu": .string,
                "hardware_profile_memory": .string, "hardware_profile_storage": .string, "image_id": .string,
                "keyname": .string, "password_file": .string, "realm_id": .string, "user_data": .string,
                "username": .string,
            ], paramPrefixes: [], support: .notSupportedYet),
        Submitter(
            name: "Exec", id: "exec", parent: nil, params: [:], paramPrefixes: [],
            support: .broken("APF 2.4's Exec module defines no class named Exec, so it could never load")),
        // apf-agent's own submitters.
        Submitter(
            name: "SSH", id: "ssh", parent: "condorbase", params: [:], paramPrefixes: [], support: .ssh),
        Submitter(
            name: "Local", id: "local", parent: "condorbase", params: ["batch": .choice(supportedBatchSystems)],
            paramPrefixes: [], support: .local(batch: nil)),
    ]

    static let submitterByName: [String: Submitter] = Dictionary(
        uniqueKeysWithValues: submitters.map { ($0.name, $0) })
    static let submitterByID: [String: Submitter] = Dictionary(uniqueKeysWithValues: submitters.map { ($0.id, $0) })

    /// The class chain from `id` up to the root (`condorosgce` → `condorce` → `condorgrid` → `condorbase`).
    static func lineage(of id: String) -> [Submitter] {
        var out: [Submitter] = []
        var cur = submitterByID[id]
        while let c = cur {
            out.append(c)
            cur = c.parent.flatMap { submitterByID[$0] }
        }
        return out
    }

    /// The type of `batchsubmit.<id>.<param>`, looking up the class tree like APF's `filterkeys` renaming.
    static func submitParam(_ id: String, _ param: String) -> KeyType? {
        for c in lineage(of: id) {
            if let t = c.params[param] { return t }
            if c.paramPrefixes.contains(where: { param.hasPrefix($0) && param.count > $0.count }) { return .string }
        }
        return nil
    }

    /// Every parameter a class accepts (its own and inherited), for suggestions.
    static func submitParams(_ id: String) -> [String] {
        lineage(of: id).flatMap { $0.params.keys }
    }

    // MARK: Auth and monitor plugins

    public enum AuthKind: String, Sendable, CaseIterable {
        case x509 = "X509"
        case ssh = "SSH"
        case gsissh = "GSISSH"
        case cloudTenant = "CloudTenant"
        case password = "Password"
        /// VC3's placeholder for resources that need no credential.
        case noop = "Noop"
    }

    public static let monitorPlugins = ["APF", "Dummy"]
    /// Config-source plugins (`config.queues.plugin`, `config.auth.plugin`).
    public static let configSourcePlugins = ["File", "Agis", "VC3"]
}
