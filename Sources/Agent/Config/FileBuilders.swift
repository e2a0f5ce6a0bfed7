import AuthProfiles

/// Builders for `autopyfactory.conf`, `auth.conf` and `monitor.conf` sections.
enum FileBuilders {
    // MARK: Factory

    static func factory(_ sections: [ResolvedSection]) -> (
        FactoryConfig, [TenantLimits], [TargetLimits], [ConfigDiagnostic]
    ) {
        var diags: [ConfigDiagnostic] = []
        var config = FactoryConfig.default
        var tenants: [TenantLimits] = []
        var targets: [TargetLimits] = []
        for section in sections {
            if section.name == "Factory" {
                let r = SectionReader(section, kind: .factory, lookup: KeyCatalog.lookupFactoryKey)
                diags += r.diagnostics
                config.location = section.location
                for e in section.entries { config.keyLocations[e.key] = e.location }
                config.factoryId = r.string("factoryId")
                config.adminEmail = r.string("factoryAdminEmail")
                config.factoryUser = r.string("factoryUser")
                config.enableQueues = r.bool("enablequeues") ?? true
                config.cycles = r.int("cycles")
                config.tenant = r.string("tenant") ?? "default"
                config.journalPath = r.string("journal")
                if let tag = r.string("tag") {
                    if tag.count <= 4, let first = tag.first, first.isASCII, first.isLowercase,
                        tag.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber) })
                    {
                        config.clientTag = tag
                    } else {
                        diags.append(
                            ConfigDiagnostic(
                                .error, .badName, at: r.location("tag"), section: "Factory", key: "tag", value: tag,
                                "tag '\(tag)' must be 1-4 characters: a lower-case letter, then lower-case letters or digits (it starts every pilot's client ID)"
                            ))
                    }
                }
                config.baseLogDir = r.string("baseLogDir")
                config.baseLogDirURL = r.string("baseLogDirUrl")
                config.maxPerFactory = r.int("maxperfactory.maximum")
                config.panda.url = r.string("wmsstatus.panda.url") ?? config.panda.url
                config.panda.sleep = r.int("wmsstatus.panda.sleep") ?? config.panda.sleep
                config.panda.maxAge = r.int("wmsstatus.panda.maxage") ?? config.panda.maxAge
                config.panda.timeout = r.int("wmsstatus.panda.timeout") ?? config.panda.timeout
                config.panda.retries = r.int("wmsstatus.panda.retries") ?? config.panda.retries
                config.panda.siteSpecs = r.bool("wmsstatus.panda.sitespecs") ?? config.panda.siteSpecs
                config.condorSleep = r.int("wmsstatus.condor.sleep") ?? config.condorSleep
                config.condorMaxAge = r.int("wmsstatus.condor.maxage") ?? config.condorMaxAge
                config.queueSources = r.list("queueConf") ?? []
                config.queueDir = r.string("queueDirConf")
                config.authSources = r.list("authConf") ?? []
                config.monitorSources = r.list("monitorConf") ?? []
                if config.panda.maxAge < config.panda.sleep {
                    diags.append(
                        ConfigDiagnostic(
                            .warning, .outOfRange, at: r.location("wmsstatus.panda.maxage"), section: "Factory",
                            key: "wmsstatus.panda.maxage",
                            "wmsstatus.panda.maxage (\(config.panda.maxAge) s) is shorter than wmsstatus.panda.sleep (\(config.panda.sleep) s): PanDA information will be refused between polls"
                        ))
                }
                for key in ["config.queues.plugin", "config.auth.plugin"] {
                    for plugin in r.list(key) ?? [] where plugin != "File" {
                        let known = PluginCatalog.configSourcePlugins.contains(plugin)
                        diags.append(
                            ConfigDiagnostic(
                                .warning, known ? .notSupportedYet : .unknownPlugin, at: r.location(key),
                                section: "Factory", key: key, value: plugin,
                                known
                                    ? "config source '\(plugin)' is recognised but not supported yet: only the File sources are read"
                                    : "'\(plugin)' is not a config source plugin; only the File sources are read",
                                choices: PluginCatalog.configSourcePlugins,
                                suggestion: known ? nil : EditDistance.nearest(plugin, in: PluginCatalog.configSourcePlugins)))
                    }
                }
                if let monitor = r.string("monitor") {
                    diags.append(
                        ConfigDiagnostic(
                            .warning, .notSupportedYet, at: r.location("monitor"), section: "Factory", key: "monitor",
                            value: monitor,
                            "factory monitor plugin '\(monitor)' is recognised but not supported yet; queue monitors come from monitorsection"
                        ))
                }
            } else if let name = suffix(section.name, "tenant:") {
                let r = SectionReader(section, kind: .factory) { KeyCatalog.lookup($0, in: KeyCatalog.tenantLimitKeys) }
                diags += r.diagnostics
                tenants.append(
                    TenantLimits(
                        tenant: name, idle: r.int("limit.idle"), running: r.int("limit.running"),
                        held: r.int("limit.held"), submitPerCycle: r.int("limit.submit_per_cycle"),
                        location: section.location))
            } else if let name = suffix(section.name, "target:") {
                let r = SectionReader(section, kind: .factory) { KeyCatalog.lookup($0, in: KeyCatalog.targetLimitKeys) }
                diags += r.diagnostics
                let base = r.int("backoff.base") ?? 30
                let cap = r.int("backoff.max") ?? 1800
                if cap < base {
                    diags.append(
                        ConfigDiagnostic(
                            .error, .outOfRange, at: r.location("backoff.max"), section: section.name,
                            key: "backoff.max", value: String(cap),
                            "backoff.max (\(cap) s) is below backoff.base (\(base) s)"))
                }
                targets.append(
                    TargetLimits(
                        target: name, concurrency: r.int("limit.concurrency") ?? 4,
                        submitPerCycle: r.int("limit.submit_per_cycle"), backoffBase: base, backoffMax: cap,
                        statusTTL: r.int("status.ttl") ?? 60, location: section.location))
            } else {
                diags.append(
                    ConfigDiagnostic(
                        .warning, .unknownKey, at: section.location, section: section.name,
                        "section [\(section.name)] is not read: the factory file holds [Factory], [tenant:NAME] and [target:NAME]",
                        suggestion: EditDistance.nearest(section.name, in: ["Factory"])))
            }
        }
        return (config, tenants, targets, diags)
    }

    private static func suffix(_ name: String, _ prefix: String) -> String? {
        guard name.hasPrefix(prefix), name.count > prefix.count else { return nil }
        return String(name.dropFirst(prefix.count))
    }

    // MARK: Auth

    static func auth(_ section: ResolvedSection, defaultTenant: String) -> (AuthProfileConfig, [ConfigDiagnostic]) {
        let r = SectionReader(section, kind: .auth, lookup: KeyCatalog.lookupAuthKey)
        var diags = r.diagnostics
        let tenant = r.string("tenant") ?? defaultTenant
        func add(_ s: ConfigDiagnostic.Severity, _ key: String, _ code: ConfigDiagnostic.Code, _ m: String) {
            diags.append(
                ConfigDiagnostic(
                    s, code, at: r.location(key), section: section.name, key: key, value: r.entry(key)?.raw, m))
        }
        let plugin = r.string("plugin")
        var kind: AuthProfileConfig.Kind?
        switch plugin.flatMap(PluginCatalog.AuthKind.init(rawValue:)) {
        case nil:
            if !r.isInvalid("plugin") {
                add(
                    .error, "plugin", .missingKey,
                    "auth profile [\(section.name)] has no 'plugin' (X509, SSH, ...); APF skipped such sections")
            }
        case .ssh?:
            let privateFile = r.string("ssh.privatekeyfile")
            let inline = r.string("ssh.privatekey")
            if privateFile == nil, inline == nil {
                add(
                    .error, "ssh.privatekeyfile", .missingKey,
                    "SSH profile [\(section.name)] needs 'ssh.privatekeyfile' (or an inline base64 'ssh.privatekey')")
            }
            if let type = r.string("ssh.type"), type == "rsa" || type == "dsa" {
                add(
                    .warning, "ssh.type", .keyType,
                    "ssh.type = \(type): libssh2 1.10 signs RSA only with SHA-1, which OpenSSH ≥ 8.8 refuses by default (DSA is gone); use an ed25519 or ecdsa key (docs/ssh.md)"
                )
            }
            kind = .ssh(
                SSHProfileDescription(
                    name: section.name, tenant: tenant, keyType: r.string("ssh.type"), privateKeyFile: privateFile,
                    publicKeyFile: r.string("ssh.publickeyfile"), passphraseFile: r.string("ssh.privkeypassfile"),
                    inlinePrivateKey: inline.map { Secret($0) }, inlinePublicKey: r.string("ssh.publickey"),
                    inlinePassphrase: r.string("ssh.privkeypass").map { Secret($0) }, baseDir: r.string("authbasedir"),
                    location: section.location))
        case .x509?:
            let flavor = r.string("x509.flavor") ?? "voms"
            let renew = r.bool("x509.renew") ?? true
            if r.string("x509.proxyfile") == nil, !r.isInvalid("x509.proxyfile") {
                add(.error, "x509.proxyfile", .missingKey, "X509 profile [\(section.name)] needs 'x509.proxyfile'")
            }
            if renew, flavor == "voms" {
                if r.string("x509.vorole") == nil {
                    add(.error, "x509.vorole", .missingKey, "a renewed voms proxy needs 'x509.vorole' (e.g. atlas:/atlas)")
                }
                if r.string("x509.baseproxy") == nil, r.string("x509.usercert") == nil || r.string("x509.userkey") == nil {
                    add(
                        .error, "x509.usercert", .missingKey,
                        "a renewed voms proxy needs 'x509.usercert' and 'x509.userkey', or 'x509.baseproxy'")
                }
            }
            if renew, flavor == "myproxy" {
                for key in ["x509.myproxy_hostname", "x509.myproxy_username"] where r.string(key) == nil {
                    add(.error, key, .missingKey, "a myproxy profile needs '\(key)'")
                }
            }
            if r.string("x509.myproxy_passphrase") != nil {
                add(
                    .warning, "x509.myproxy_passphrase", .ignoredKey,
                    "a passphrase written in auth.conf is readable by anyone who can read the file; keep it in a 0600 file instead")
            }
            kind = .x509(
                X509ProfileDescription(
                    name: section.name, tenant: tenant, proxyFile: r.string("x509.proxyfile"),
                    voRole: r.string("x509.vorole"), flavor: flavor, lifetime: r.int("x509.lifetime") ?? 604800,
                    checkTime: r.int("x509.checktime") ?? 3600, minLife: r.int("x509.minlife") ?? 259200,
                    renew: renew, userCert: r.string("x509.usercert"), userKey: r.string("x509.userkey"),
                    baseProxy: r.string("x509.baseproxy"), location: section.location))
        case let other?:
            add(
                .warning, "plugin", .notSupportedYet,
                "auth plugin \(other.rawValue) is recognised but not usable yet; queues cannot use [\(section.name)]")
            kind = .other(other.rawValue)
        }
        // APF's shipped example: an SSH section that silently inherited plugin = X509 from [DEFAULT] (APF.md §11).
        if let p = r.entry("plugin"), p.inherited, plugin != "SSH",
            section.entries.contains(where: { !$0.inherited && $0.key.hasPrefix("ssh.") })
        {
            add(
                .warning, "plugin", .conflict,
                "[\(section.name)] sets ssh.* keys but inherits plugin = \(plugin ?? "?") from [DEFAULT] (\(p.location)); add plugin = SSH"
            )
        }
        let profile = AuthProfileConfig(
            name: section.name, tenant: tenant, plugin: plugin, kind: kind, location: section.location,
            errorCount: diags.filter(\.isError).count)
        return (profile, diags)
    }

    // MARK: Monitor

    static func monitor(_ section: ResolvedSection) -> (MonitorConfig, [ConfigDiagnostic]) {
        let r = SectionReader(section, kind: .monitor, lookup: KeyCatalog.lookupMonitorKey)
        var diags = r.diagnostics
        let plugin = r.string("monitorplugin")
        if let plugin {
            if !PluginCatalog.monitorPlugins.contains(plugin) {
                diags.append(
                    ConfigDiagnostic(
                        .warning, .unknownPlugin, at: r.location("monitorplugin"), section: section.name,
                        key: "monitorplugin", value: plugin,
                        "monitor plugin '\(plugin)' is not supported; queues naming [\(section.name)] are not published",
                        choices: PluginCatalog.monitorPlugins,
                        suggestion: EditDistance.nearest(plugin, in: PluginCatalog.monitorPlugins)))
            } else if plugin == "APF", r.string("monitorURL") == nil {
                diags.append(
                    ConfigDiagnostic(
                        .error, .missingKey, at: section.location, section: section.name, key: "monitorURL",
                        "monitorplugin = APF needs 'monitorURL' (the apfmon API URL)"))
            }
        } else {
            diags.append(
                ConfigDiagnostic(
                    .error, .missingKey, at: section.location, section: section.name, key: "monitorplugin",
                    "monitor section [\(section.name)] has no 'monitorplugin'", choices: PluginCatalog.monitorPlugins))
        }
        return (
            MonitorConfig(name: section.name, plugin: plugin, url: r.string("monitorURL"), location: section.location),
            diags
        )
    }
}
