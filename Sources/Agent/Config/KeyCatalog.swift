/// The type of a configuration key's value. `None` is accepted for every key and means "unset".
public enum KeyType: Sendable, Hashable {
    case string
    /// A name: letters, digits, `.`, `_`, `-`, `@`, `+`.
    case name
    case bool
    case int(min: Int? = nil, max: Int? = nil)
    case double(min: Double? = nil, max: Double? = nil)
    case choice([String])
    /// A comma-separated list.
    case list

    var describe: String {
        switch self {
        case .string, .list: "text"
        case .name: "a name"
        case .bool: "True or False"
        case .int(let lo, let hi): "a whole number" + Self.range(lo.map(String.init), hi.map(String.init))
        case .double(let lo, let hi): "a number" + Self.range(lo.map { "\($0)" }, hi.map { "\($0)" })
        case .choice(let c): "one of \(c.joined(separator: ", "))"
        }
    }

    private static func range(_ lo: String?, _ hi: String?) -> String {
        switch (lo, hi) {
        case let (l?, h?): " from \(l) to \(h)"
        case let (l?, nil): " ≥ \(l)"
        case let (nil, h?): " ≤ \(h)"
        default: ""
        }
    }
}

/// What the checker knows about a key.
enum KeyLookup {
    case known(KeyType)
    /// Recognised, but nothing reads it; the reason is shown as a warning.
    case ignored(String)
    case unknown(suggestion: String?)
}

/// The kinds of APF configuration file.
public enum ConfigFileKind: String, Sendable, Hashable, Codable {
    case factory
    case queues
    case auth
    case monitor
}

/// The keys each kind of file may hold (APF 2.4's, VC3's and apf-agent's own), with their types.
enum KeyCatalog {
    // MARK: queues.conf

    static let queueKeys: [String: KeyType] = [
        "enabled": .bool,
        "wmsqueue": .string,
        "batchqueue": .string,
        "apfqueue.sleep": .int(min: 1),
        "cleanlogs.keepdays": .int(min: 0),
        "monitorsection": .list,
        "executable": .string,
        "executable.arguments": .string,
        "executable.defaultarguments": .string,
        "vo": .string,
        "grid": .string,
        "wmsstatusplugin": .string,
        "batchstatusplugin": .string,
        "schedplugin": .list,
        "batchsubmitplugin": .string,
        "wmsstatus.condor.scheddhost": .string,
        "wmsstatus.condor.scheddport": .int(min: 1, max: 65535),
        "wmsstatus.condor.collectorhost": .string,
        "wmsstatus.condor.collectorport": .int(min: 1, max: 65535),
        "wmsstatus.condor.queueskey": .string,
        "wmsstatus.queue.qname": .string,
        "batchstatus.condor.scheddhost": .string,
        "batchstatus.condor.scheddport": .int(min: 1, max: 65535),
        "batchstatus.condor.collectorhost": .string,
        "batchstatus.condor.collectorport": .int(min: 1, max: 65535),
        // apf-agent's own keys.
        "tenant": .name,
        "target": .name,
        "profile": .name,
        "retire.policy": .choice(RetirePolicy.Mode.allCases.map(\.rawValue)),
        "retire.order": .choice(["newest", "oldest"]),
        "retire.idle_after": .int(min: 0),
        "retire.max_per_cycle": .int(min: 0),
        "wmsstatus.command.run": .string,
        "wmsstatus.command.timeout": .int(min: 1),
        "wmsstatus.command.sleep": .int(min: 1),
        "wmsstatus.command.maxage": .int(min: 1),
        "wmsstatus.http.url": .string,
        "wmsstatus.http.timeout": .int(min: 1),
        "wmsstatus.http.retries": .int(min: 0, max: 10),
        "wmsstatus.http.sleep": .int(min: 1),
        "wmsstatus.http.maxage": .int(min: 1),
        "wmsstatus.batch.target": .name,
        "wmsstatus.batch.partition": .string,
        "wmsstatus.batch.constraint": .string,
        "wmsstatus.batch.sleep": .int(min: 1),
        "wmsstatus.batch.maxage": .int(min: 1),
        // apf-agent's pilot options (the agent runtime, issue 7).
        "pilot.walltime": .int(min: 60),
        "pilot.cores": .int(min: 1, max: 4096),
        "pilot.memory": .int(min: 1),
        "pilot.partition": .name,
        "pilot.account": .name,
        "pilot.sge_pe": .name,
        "pilot.extra": .string,
        "pilot.workdir": .string,
    ]

    static let queueIgnored: [String: String] = [
        "override": "APF 2 never applied it (later sources always win); it is ignored",
        "status": "an APF 1.x queue setting; the site status now comes from the WMS status plugin",
        "wmsstatus.condor.queryargs":
            "commented out in APF 2.4 and ignored; name the pool with wmsstatus.condor.scheddhost/collectorhost",
        "batchstatus.condor.queryargs":
            "commented out in APF 2.4 and ignored; name the pool with batchstatus.condor.scheddhost/collectorhost",
        "wmsstatus.condor.password_file": "commented out in APF 2.4 and ignored",
    ]

    /// Top-level prefixes that take any suffix: RSL attributes of the GRAM and ARC submitters.
    static let queuePrefixes: [String: String] = [
        "globusrsl.gram2.": "CondorGT2", "globusrsl.gram5.": "CondorGT5", "nordugridrsl.": "CondorNordugrid",
    ]

    static func lookupQueueKey(_ key: String) -> KeyLookup {
        if let t = queueKeys[key] { return .known(t) }
        if let why = queueIgnored[key] { return .ignored(why) }
        if let why = PluginCatalog.schedIgnoredParams[key] { return .ignored(why) }
        if queuePrefixes.keys.contains(where: { key.hasPrefix($0) && key.count > $0.count }) { return .known(.string) }
        let parts = key.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        if parts.count == 3, parts[0] == "sched" {
            if let plugin = PluginCatalog.schedByLowercase[parts[1]] {
                if let params = PluginCatalog.schedPlugins[plugin] {
                    if let t = params[parts[2]] { return .known(t) }
                    let suggestion = EditDistance.nearest(parts[2], in: params.keys).map { "sched.\(parts[1]).\($0)" }
                    return .unknown(suggestion: suggestion)
                }
                let why = PluginCatalog.schedRemoved[plugin] ?? PluginCatalog.schedNotPorted[plugin] ?? ""
                return .ignored("a parameter of \(plugin), which apf-agent does not run (\(why))")
            }
        }
        if parts.count == 3, parts[0] == "batchsubmit" {
            let id = parts[1]
            if let sub = PluginCatalog.submitterByID[id] {
                if let t = PluginCatalog.submitParam(id, parts[2]) { return .known(t) }
                let chain = PluginCatalog.lineage(of: id).map(\.id).joined(separator: " → ")
                let suggestion = EditDistance.nearest(parts[2], in: PluginCatalog.submitParams(id)).map {
                    "batchsubmit.\(id).\($0)"
                }
                if suggestion == nil {
                    return .ignored(
                        "\(sub.name) does not read '\(parts[2])' (its keys come from \(chain)); the value is ignored")
                }
                return .unknown(suggestion: suggestion)
            }
        }
        return .unknown(suggestion: EditDistance.nearest(key, in: allQueueKeys))
    }

    /// Every concrete queue key, for suggestions.
    static let allQueueKeys: [String] = {
        var keys = Array(queueKeys.keys)
        for (plugin, params) in PluginCatalog.schedPlugins {
            for p in params.keys { keys.append("sched.\(plugin.lowercased()).\(p)") }
        }
        for s in PluginCatalog.submitters {
            for p in PluginCatalog.submitParams(s.id) { keys.append("batchsubmit.\(s.id).\(p)") }
        }
        return keys.sorted()
    }()

    // MARK: autopyfactory.conf / factory.conf

    static let factoryKeys: [String: KeyType] = [
        "factoryId": .string,
        "factoryAdminEmail": .string,
        "factorySMTPServer": .string,
        "factoryMinEmailRepeatSeconds": .int(min: 0),
        "factoryUser": .string,
        "enablequeues": .bool,
        "queueConf": .list,
        "queueDirConf": .string,
        "authConf": .list,
        "monitorConf": .list,
        "cycles": .int(min: 0),
        "cleanlogs.keepdays": .int(min: 0),
        "factory.sleep": .int(min: 1),
        "wmsstatus.panda.sleep": .int(min: 1),
        "wmsstatus.panda.maxage": .int(min: 1),
        "wmsstatus.condor.sleep": .int(min: 1),
        "wmsstatus.condor.maxage": .int(min: 1),
        "wmsstatus.queue.sleep": .int(min: 1),
        "wmsstatus.queue.maxage": .int(min: 1),
        "batchstatus.condor.sleep": .int(min: 1),
        "batchstatus.condor.maxage": .int(min: 1),
        "baseLogDir": .string,
        "baseLogDirUrl": .string,
        "baseLogHttpPort": .int(min: 1, max: 65535),
        "logserver.enabled": .bool,
        "logserver.index": .bool,
        "logserver.allowrobots": .bool,
        "monitor": .string,
        "monitor.section": .string,
        "monitor.interval": .int(min: 1),
        "maxperfactory.maximum": .int(min: 0),
        "config.reconfig": .bool,
        "config.reconfig.interval": .int(min: 1),
        "config.queues.plugin": .list,
        "config.auth.plugin": .list,
        "config.queues.agis.baseurl": .string,
        "config.queues.agis.defaultsfile": .string,
        "config.queues.agis.defaultsfiles": .string,
        "config.queues.agis.sleep": .int(min: 1),
        "config.queues.agis.vos": .list,
        "config.queues.agis.clouds": .list,
        "config.queues.agis.activities": .list,
        "config.queues.agis.pilotmanager": .string,
        "config.queues.agis.jobsperpilot": .double(min: 0),
        "config.queues.agis.numfactories": .int(min: 1),
        "authmanager.enabled": .bool,
        "authmanager.sleep": .int(min: 1),
        "versionTag": .string,
        "abort_no_queues": .bool,
        // apf-agent's own keys.
        "tenant": .name,
        "journal": .string,
        "tag": .name,
        "wmsstatus.panda.url": .string,
        "wmsstatus.panda.sitespecs": .bool,
        "wmsstatus.panda.timeout": .int(min: 1),
        "wmsstatus.panda.retries": .int(min: 0, max: 10),
    ]

    static let factoryIgnored: [String: String] = [
        "proxyConf": "APF ≤ 2.3's proxymanager file; X509 profiles now live in auth.conf",
        "proxymanager.enabled": "APF ≤ 2.3's proxymanager; X509 profiles now live in auth.conf",
        "proxymanager.sleep": "APF ≤ 2.3's proxymanager; X509 profiles now live in auth.conf",
        "mappingsConf": "apf-agent's state tables are built in (APF.md §3); mappings.conf is not read",
        "factoryOwner": "an APF 1.x key; use factoryAdminEmail",
    ]

    /// VC3's config and monitor plugin settings (`config.queues.vc3.vc3clientconf`, `monitor.vc3....`).
    static let factoryPrefixes = ["config.queues.vc3.", "config.auth.vc3.", "monitor.vc3."]

    static func lookupFactoryKey(_ key: String) -> KeyLookup {
        if let t = factoryKeys[key] { return .known(t) }
        if let why = factoryIgnored[key] { return .ignored(why) }
        if factoryPrefixes.contains(where: { key.hasPrefix($0) }) {
            return .ignored("a setting of VC3's plugin, which apf-agent does not run")
        }
        return .unknown(suggestion: EditDistance.nearest(key, in: factoryKeys.keys))
    }

    /// Keys of apf-agent's `[tenant:NAME]` sections in the factory file.
    static let tenantLimitKeys: [String: KeyType] = [
        "limit.idle": .int(min: 0), "limit.running": .int(min: 0), "limit.held": .int(min: 0),
        "limit.submit_per_cycle": .int(min: 0),
    ]

    /// Keys of apf-agent's `[target:NAME]` sections in the factory file.
    static let targetLimitKeys: [String: KeyType] = [
        "limit.concurrency": .int(min: 1), "limit.submit_per_cycle": .int(min: 0), "backoff.base": .int(min: 1),
        "backoff.max": .int(min: 1), "status.ttl": .int(min: 1),
    ]

    static func lookup(_ key: String, in table: [String: KeyType]) -> KeyLookup {
        if let t = table[key] { return .known(t) }
        return .unknown(suggestion: EditDistance.nearest(key, in: table.keys))
    }

    // MARK: auth.conf

    static let authKeys: [String: KeyType] = [
        "plugin": .choice(PluginCatalog.AuthKind.allCases.map(\.rawValue)),
        "authbasedir": .string,
        "tenant": .name,
        "x509.proxyfile": .string,
        "x509.vorole": .string,
        "x509.flavor": .choice(["voms", "myproxy"]),
        "x509.lifetime": .int(min: 1),
        "x509.checktime": .int(min: 1),
        "x509.minlife": .int(min: 0),
        "x509.renew": .bool,
        "x509.usercert": .string,
        "x509.userkey": .string,
        "x509.baseproxy": .string,
        "x509.owner": .string,
        "x509.voms.args": .string,
        "x509.myproxy_hostname": .string,
        "x509.myproxy_username": .string,
        "x509.myproxy_passphrase": .string,
        "x509.retriever_list": .list,
        "x509.initdelay": .int(min: 0),
        "x509.interruptcheck": .int(min: 0),
        "x509.remote_host": .string,
        "x509.remote_user": .string,
        "x509.remote_owner": .string,
        "x509.remote_group": .string,
        "ssh.type": .choice(["rsa", "dsa", "ecdsa", "ed25519"]),
        "ssh.publickey": .string,
        "ssh.privatekey": .string,
        "ssh.publickeyfile": .string,
        "ssh.privatekeyfile": .string,
        "ssh.privkeypass": .string,
        "ssh.privkeypassfile": .string,
    ]

    static let authIgnored: [String: String] = [
        "ssh.passwordfile": "APF's SSH plugin never read it (commented out); passwords are not used",
        "ssh.passphrasefile": "not an APF key (VC3 defaults set it); the passphrase file key is ssh.privkeypassfile",
    ]

    static func lookupAuthKey(_ key: String) -> KeyLookup {
        if let t = authKeys[key] { return .known(t) }
        if let why = authIgnored[key] { return .ignored(why) }
        return .unknown(suggestion: EditDistance.nearest(key, in: authKeys.keys))
    }

    // MARK: monitor.conf

    static let monitorKeys: [String: KeyType] = ["monitorplugin": .string, "monitorURL": .string]

    static func lookupMonitorKey(_ key: String) -> KeyLookup { lookup(key, in: monitorKeys) }
}
