/// Turns one resolved `queues.conf` section into a typed `QueueConfig`, reporting every problem it finds. A bad
/// value makes this queue unusable but never stops the other queues from being read.
struct QueueBuilder {
    let factory: FactoryConfig
    /// Profiles by name, when an auth.conf was read (nil: references cannot be checked).
    let profiles: [String: AuthProfileConfig]?
    /// Monitor section names, when a monitor.conf was read.
    let monitors: Set<String>?

    struct Output {
        var queue: QueueConfig
        var diagnostics: [ConfigDiagnostic]
    }

    func build(_ section: ResolvedSection) -> Output {
        var ctx = Context(reader: SectionReader(section, kind: .queues, lookup: KeyCatalog.lookupQueueKey))
        ctx.diagnostics = ctx.reader.diagnostics
        let r = ctx.reader

        // enabled: APF reads it with getboolean and no default, so a queue without it never starts.
        let enabled: Bool
        if let b = r.bool("enabled") {
            enabled = b
        } else {
            if !r.has("enabled") {
                ctx.warn(
                    "enabled", .missingKey, "'enabled' is not set, so the queue is disabled (as in APF); add enabled = True")
            }
            enabled = false
        }
        let tenant = r.string("tenant") ?? factory.tenant
        let wmsQueue = r.string("wmsqueue")

        let (wmsPlugin, wms) = wmsStatus(&ctx, wmsQueue: wmsQueue)
        let (batchPlugin, batch) = batchStatus(&ctx)
        let (schedNames, chain) = schedChain(&ctx, wms: wms)
        let (submitPlugin, submit, submitter) = submitMode(&ctx, tenant: tenant)

        if submit != nil, r.string("executable") == nil, !r.isInvalid("executable") {
            ctx.error("executable", .missingKey, "'executable' is not set: name the pilot wrapper to run")
        }
        let (extra, environ) = submitExtras(r, submitter)
        let retire = retirePolicy(&ctx, submitter)

        let monitorSections = r.list("monitorsection") ?? []
        if let monitors {
            for m in monitorSections where !monitors.contains(m) {
                ctx.warn(
                    "monitorsection", .unknownMonitor,
                    "monitor section '\(m)' is not defined in monitor.conf; this queue will not be published there",
                    choices: monitors.sorted())
            }
        }

        let queue = QueueConfig(
            name: section.name, location: section.location, enabled: enabled, tenant: tenant, wmsQueue: wmsQueue,
            batchQueue: r.string("batchqueue"), cycleInterval: r.int("apfqueue.sleep") ?? 360,
            wmsStatusPlugin: wmsPlugin, batchStatusPlugin: batchPlugin, schedPlugins: schedNames,
            submitPlugin: submitPlugin, wmsStatus: wms, batchStatus: batch, chain: chain,
            schedParameters: section.entries.filter { $0.key.hasPrefix("sched.") }.map { ($0.key, $0.value ?? $0.raw) },
            submit: submit,
            executable: r.string("executable"), arguments: r.string("executable.arguments"), environ: environ,
            extraAttributes: extra, retire: retire, monitorSections: monitorSections,
            keepLogDays: r.int("cleanlogs.keepdays"), errorCount: 0)
        var built = queue
        built.pilot = pilotSettings(&ctx)
        if case .local? = submit { built.localTarget = r.string("target") }
        built.errorCount = ctx.diagnostics.filter(\.isError).count
        return Output(queue: built, diagnostics: ctx.diagnostics)
    }

    // MARK: - Plugins

    private func wmsStatus(_ ctx: inout Context, wmsQueue: String?) -> (String?, WMSStatusConfig?) {
        let r = ctx.reader
        let key = "wmsstatusplugin"
        guard let entry = r.entry(key), let configured = entry.value else {
            return (nil, r.has(key) ? nil : WMSStatusConfig.none)
        }
        if ConfigValue.isNone(configured) { return (configured, WMSStatusConfig.none) }
        guard let kind = PluginCatalog.WMSStatusKind(rawValue: configured) else {
            ctx.error(
                key, .unknownPlugin, "'\(configured)' is not a WMS status plugin",
                choices: PluginCatalog.WMSStatusKind.allCases.map(\.rawValue),
                suggestion: EditDistance.nearest(configured, in: PluginCatalog.WMSStatusKind.allCases.map(\.rawValue)))
            return (configured, nil)
        }
        func requireWMSQueue() -> String? {
            if let wmsQueue { return wmsQueue }
            ctx.error(
                "wmsqueue", .missingKey,
                "wmsstatusplugin = \(configured) needs 'wmsqueue' (the \(kind == .panda ? "PanDA site" : "queue name") to read)")
            return nil
        }
        switch kind {
        case .none:
            return (configured, WMSStatusConfig.none)
        case .panda:
            return (configured, requireWMSQueue().map { .panda(site: $0) })
        case .condor:
            let pool = condorPool(r, prefix: "wmsstatus.condor")
            let label = r.string("wmsstatus.condor.queueskey") ?? wmsQueue ?? "ANY"
            return (configured, .condor(pool, label: label))
        case .queue:
            ctx.error(
                key, .notSupportedYet,
                "the Queue WMS status plugin was a stub in APF 2.4 and is not supported; use Condor or Batch to watch another queue's pilots")
            return (configured, nil)
        case .command:
            guard let line = r.string("wmsstatus.command.run") else {
                if !r.isInvalid("wmsstatus.command.run") {
                    ctx.error(
                        "wmsstatus.command.run", .missingKey,
                        "wmsstatusplugin = Command needs 'wmsstatus.command.run' (the command that prints demand as JSON)")
                }
                return (configured, nil)
            }
            guard let argv = ArgvSplitter.split(line), !argv.isEmpty else {
                ctx.error(
                    "wmsstatus.command.run", .syntax,
                    "'wmsstatus.command.run' has an unbalanced quote or is empty (it is split into words, not run by a shell)")
                return (configured, nil)
            }
            return (
                configured,
                .command(
                    argv: argv, timeout: r.int("wmsstatus.command.timeout") ?? 30,
                    sleep: r.int("wmsstatus.command.sleep") ?? 150, maxAge: r.int("wmsstatus.command.maxage") ?? 360)
            )
        case .http:
            guard let url = r.string("wmsstatus.http.url") else {
                if !r.isInvalid("wmsstatus.http.url") {
                    ctx.error("wmsstatus.http.url", .missingKey, "wmsstatusplugin = HTTP needs 'wmsstatus.http.url'")
                }
                return (configured, nil)
            }
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                ctx.error("wmsstatus.http.url", .syntax, "'wmsstatus.http.url' = '\(url)' is not an http:// or https:// URL")
                return (configured, nil)
            }
            return (
                configured,
                .http(
                    url: url, timeout: r.int("wmsstatus.http.timeout") ?? 30,
                    retries: r.int("wmsstatus.http.retries") ?? 2, sleep: r.int("wmsstatus.http.sleep") ?? 150,
                    maxAge: r.int("wmsstatus.http.maxage") ?? 360))
        case .batch:
            let selector = PendingJobSelector(
                partition: r.string("wmsstatus.batch.partition"), constraint: r.string("wmsstatus.batch.constraint"))
            if selector.partition == nil, selector.constraint == nil {
                ctx.error(
                    key, .missingKey,
                    "wmsstatusplugin = Batch needs 'wmsstatus.batch.partition' (SLURM partition, PBS/SGE queue) or 'wmsstatus.batch.constraint' (HTCondor constraint)"
                )
                return (configured, nil)
            }
            let target = r.string("wmsstatus.batch.target") ?? r.string("target")
            return (
                configured,
                .batch(
                    target: target, selector: selector, sleep: r.int("wmsstatus.batch.sleep") ?? 150,
                    maxAge: r.int("wmsstatus.batch.maxage") ?? 360))
        }
    }

    private func condorPool(_ r: SectionReader, prefix: String) -> CondorPool {
        CondorPool(
            scheddHost: r.string("\(prefix).scheddhost") ?? "localhost", scheddPort: r.int("\(prefix).scheddport") ?? 9618,
            collectorHost: r.string("\(prefix).collectorhost") ?? "localhost",
            collectorPort: r.int("\(prefix).collectorport") ?? 9618, groupBy: "MATCH_APF_QUEUE")
    }

    private func batchStatus(_ ctx: inout Context) -> (String?, BatchStatusConfig?) {
        let r = ctx.reader
        let key = "batchstatusplugin"
        guard let entry = r.entry(key), let configured = entry.value else {
            return (nil, r.has(key) ? nil : .target(pool: nil))
        }
        let names = PluginCatalog.BatchStatusKind.allCases.map(\.rawValue)
        switch PluginCatalog.BatchStatusKind(rawValue: configured) {
        case .condor?: return (configured, .target(pool: condorPool(r, prefix: "batchstatus.condor")))
        case .target?: return (configured, .target(pool: nil))
        case nil:
            let message =
                ConfigValue.isNone(configured)
                ? "batch status cannot be None: every cycle needs the queue's pending and running pilots"
                : "'\(configured)' is not a batch status plugin"
            ctx.error(
                key, .unknownPlugin, message, choices: names,
                suggestion: ConfigValue.isNone(configured) ? nil : EditDistance.nearest(configured, in: names))
            return (configured, nil)
        }
    }

    private func schedChain(_ ctx: inout Context, wms: WMSStatusConfig?) -> ([String], SchedulerChain?) {
        let r = ctx.reader
        let key = "schedplugin"
        guard let names = r.list(key), !names.isEmpty else {
            if !r.isInvalid(key) {
                ctx.error(key, .missingKey, "'schedplugin' is not set: give the chain, e.g. Ready, MaxPerCycle, MaxPending")
            }
            return (r.list(key) ?? [], nil)
        }
        var steps: [any SchedulerStep] = []
        var ok = true
        let allNames = Array(PluginCatalog.schedPlugins.keys) + Array(PluginCatalog.schedNotPorted.keys)
            + Array(PluginCatalog.schedRemoved.keys)
        for name in names {
            if let why = PluginCatalog.schedNotPorted[name] ?? PluginCatalog.schedRemoved[name] {
                ctx.error(key, .removedPlugin, "scheduler plugin '\(name)' is not available: \(why)")
                ok = false
                continue
            }
            guard PluginCatalog.schedPlugins[name] != nil else {
                ctx.error(
                    key, .unknownPlugin, "'\(name)' is not a scheduler plugin (names are case-sensitive)",
                    choices: PluginCatalog.schedPlugins.keys.sorted(),
                    suggestion: EditDistance.nearest(name, in: allNames))
                ok = false
                continue
            }
            let p = "sched.\(name.lowercased())"
            func passThrough(_ param: String) {
                ctx.warn(
                    key, .passThrough,
                    "\(name) is in the chain but '\(p).\(param)' is not set, so it passes its input through")
            }
            let step: any SchedulerStep
            switch name {
            case "Ready": step = Ready(offset: r.int("\(p).offset") ?? 0)
            case "Fixed":
                if r.int("\(p).pilotspercycle") == nil { passThrough("pilotspercycle") }
                step = Fixed(pilotsPerCycle: r.int("\(p).pilotspercycle"))
            case "KeepNRunning": step = KeepNRunning(keepRunning: r.int("\(p).keep_running"))
            case "Scale": step = Scale(factor: r.double("\(p).factor") ?? 1.0)
            case "MaxPerCycle":
                if r.int("\(p).maximum") == nil { passThrough("maximum") }
                step = MaxPerCycle(maximum: r.int("\(p).maximum"))
            case "MinPerCycle":
                if r.int("\(p).minimum") == nil { passThrough("minimum") }
                step = MinPerCycle(minimum: r.int("\(p).minimum"))
            case "MaxPending":
                if r.int("\(p).maximum") == nil { passThrough("maximum") }
                step = MaxPending(maximum: r.int("\(p).maximum"), allowNegative: r.bool("\(p).allow_negative") ?? true)
            case "MinPending":
                if r.int("\(p).minimum") == nil { passThrough("minimum") }
                step = MinPending(minimum: r.int("\(p).minimum"))
            case "MaxToRun":
                if r.int("\(p).maximum") == nil { passThrough("maximum") }
                step = MaxToRun(maximum: r.int("\(p).maximum"))
            case "MaxPerFactory":
                if factory.maxPerFactory == nil {
                    ctx.warn(
                        key, .passThrough,
                        "MaxPerFactory is in the chain but [Factory] maxperfactory.maximum is not set, so it passes its input through"
                    )
                }
                step = MaxPerFactory(maximum: factory.maxPerFactory)
            case "StatusTest": step = StatusTest(pilots: r.int("\(p).pilots") ?? 0)
            case "StatusOffline": step = StatusOffline(pilots: r.int("\(p).pilots") ?? 0)
            case "Throttle":
                step = Throttle(
                    interval: r.int("\(p).interval") ?? 3600, maxTime: r.int("\(p).maxtime") ?? 10,
                    ratio: r.double("\(p).ratio") ?? 0.5, submit: r.int("\(p).submit") ?? 1)
            case "WeightedActivated":
                step = WeightedActivated(
                    activatedWeight: r.double("\(p).activated") ?? 1.0, pendingWeight: r.double("\(p).pending") ?? 1.0)
            case "Fillactivated": step = Fillactivated(defaultValue: r.int("\(p).default"))
            default: step = Null()
            }
            steps.append(step)
        }
        // A plugin whose parameter has a bad value cannot be built faithfully.
        for name in names {
            let p = "sched.\(name.lowercased())."
            if r.invalid.contains(where: { $0.hasPrefix(p) }) { ok = false }
        }
        if wms == WMSStatusConfig.none {
            let needsDemand = names.filter {
                ["Ready", "WeightedActivated", "Fillactivated", "StatusTest", "StatusOffline"].contains($0)
            }
            if !needsDemand.isEmpty {
                ctx.error(
                    key, .chainBlocks,
                    "\(needsDemand.joined(separator: ", ")) need\(needsDemand.count == 1 ? "s" : "") WMS status, but wmsstatusplugin is None: the chain would block every cycle (use KeepNRunning or Fixed, or set a WMS status plugin)"
                )
                // The chain itself is well formed (the simulator can run it); the queue is unusable.
            }
        }
        return (names, ok ? SchedulerChain(steps) : nil)
    }

    private func submitMode(
        _ ctx: inout Context, tenant: String
    ) -> (String?, SubmitMode?, PluginCatalog.Submitter?) {
        let r = ctx.reader
        let key = "batchsubmitplugin"
        guard let configured = r.string(key) else {
            if !r.isInvalid(key) {
                ctx.error(
                    key, .missingKey, "'batchsubmitplugin' is not set: name the submitter (e.g. CondorSSH or SSH)")
            }
            return (r.entry(key)?.value, nil, nil)
        }
        guard let sub = PluginCatalog.submitterByName[configured] else {
            ctx.error(
                key, .unknownPlugin, "'\(configured)' is not a submitter (names are case-sensitive)",
                choices: PluginCatalog.submitters.map(\.name).sorted(),
                suggestion: EditDistance.nearest(configured, in: PluginCatalog.submitters.map(\.name)))
            return (configured, nil, nil)
        }
        switch sub.support {
        case .notSupportedYet:
            ctx.error(
                key, .notSupportedYet,
                "\(configured) (Condor-G \(Self.gridKind[configured] ?? "grid submission")) is recognised but not supported yet; this queue will not start"
            )
            return (configured, nil, sub)
        case .abstract:
            ctx.error(
                key, .unknownPlugin,
                "\(configured) is an intermediate class of APF's submitters, not one to select; name a concrete submitter",
                choices: PluginCatalog.submitters.filter { $0.support != .abstract }.map(\.name).sorted())
            return (configured, nil, sub)
        case .broken(let why):
            ctx.error(key, .removedPlugin, "\(configured) is not available: \(why)")
            return (configured, nil, sub)
        case .local(let fixed):
            let batch: String
            if let fixed {
                batch = fixed
            } else if let b = r.string("batchsubmit.\(sub.id).batch") {
                batch = b
            } else {
                ctx.error(
                    "batchsubmit.\(sub.id).batch", .missingKey,
                    "batchsubmitplugin = \(configured) needs 'batchsubmit.\(sub.id).batch'",
                    choices: PluginCatalog.supportedBatchSystems)
                return (configured, nil, sub)
            }
            guard PluginCatalog.supportedBatchSystems.contains(batch) else {
                ctx.error(
                    key, .notSupportedYet,
                    "\(configured) submits to \(batch.uppercased()), which has no batch driver yet; this queue will not start")
                return (configured, nil, sub)
            }
            checkProxies(&ctx, sub, tenant: tenant)
            return (configured, .local(batch: batch), sub)
        case .ssh:
            if sub.name == "SSH" {
                guard let target = r.string("target") else {
                    ctx.error("target", .missingKey, "batchsubmitplugin = SSH needs 'target' (a target's name)")
                    return (configured, nil, sub)
                }
                let profile = r.string("profile")
                if let profile { checkSSHProfile(&ctx, profile, key: "profile", tenant: tenant) }
                return (configured, .ssh(.named(target, profile: profile)), sub)
            }
            return (configured, condorSSH(&ctx, sub, tenant: tenant).map { .ssh(.mapped($0)) }, sub)
        }
    }

    static let gridKind: [String: String] = [
        "CondorOSGCE": "to an HTCondor-CE", "CondorGT2": "to a GRAM2 gatekeeper", "CondorGT5": "to a GRAM5 gatekeeper",
        "CondorCREAM": "to a CREAM CE", "CondorNordugrid": "to an ARC CE", "CondorEC2": "to EC2",
        "CondorDeltaCloud": "to a Deltacloud endpoint",
    ]

    /// APF's CondorSSH (Bosco) keys mapped onto a target: `batchsubmit.condorssh.{batch,host,port,user,authprofile}`.
    private func condorSSH(
        _ ctx: inout Context, _ sub: PluginCatalog.Submitter, tenant: String
    ) -> TargetDescription? {
        let r = ctx.reader
        let p = "batchsubmit.\(sub.id)"
        var ok = true
        func required(_ param: String, _ what: String) -> String? {
            if let v = r.string("\(p).\(param)") { return v }
            if !r.isInvalid("\(p).\(param)") {
                ctx.error("\(p).\(param)", .missingKey, "\(sub.name) needs '\(p).\(param)' (\(what))")
            }
            ok = false
            return nil
        }
        if let method = r.string("\(p).method"), method == "gsissh" {
            ctx.error(
                "\(p).method", .notSupportedYet,
                "method = gsissh (GSI-authenticated SSH) is recognised but not supported yet; use ssh with an SSH profile")
            ok = false
        }
        let batch = required("batch", "the remote batch system")
        let host = required("host", "the login node")
        let user = required("user", "the remote account")
        var profile = required("authprofile", "an SSH profile in auth.conf")
        if let own = r.string("profile") {
            if let mapped = profile, mapped != own {
                ctx.error(
                    "profile", .conflict,
                    "'profile' = '\(own)' contradicts '\(p).authprofile' = '\(mapped)'; keep one")
                ok = false
            }
            profile = own
        }
        if r.has("target") {
            ctx.error(
                "target", .conflict,
                "'target' cannot be combined with \(sub.name): its target comes from the \(p).* keys (use batchsubmitplugin = SSH for a named target)"
            )
            ok = false
        }
        if let batch, !PluginCatalog.supportedBatchSystems.contains(batch) {
            ctx.error(
                "\(p).batch", .notSupportedYet,
                "batch system '\(batch)' is recognised but has no driver yet; this queue will not start",
                choices: PluginCatalog.supportedBatchSystems)
            ok = false
        }
        if let profile { ok = checkSSHProfile(&ctx, profile, key: r.has("profile") ? "profile" : "\(p).authprofile", tenant: tenant) && ok }
        guard ok, let batch, let host, let user, let profile else { return nil }
        let port = r.int("\(p).port") ?? 22
        return TargetDescription(
            name: "\(user)@\(host):\(port)/\(batch)", tenant: tenant, host: host, port: port, user: user, batch: batch,
            profile: profile, origin: r.location("\(p).host"), mappedFrom: sub.name)
    }

    /// Checks that `profile` is an SSH profile of `tenant` (when auth.conf was read).
    @discardableResult
    private func checkSSHProfile(_ ctx: inout Context, _ name: String, key: String, tenant: String) -> Bool {
        guard let profiles else { return true }
        guard let profile = profiles[name] else {
            ctx.error(
                key, .unknownProfile, "auth profile '\(name)' is not defined in auth.conf",
                choices: profiles.values.filter { if case .ssh? = $0.kind { true } else { false } }.map(\.name).sorted(),
                suggestion: EditDistance.nearest(name, in: profiles.keys))
            return false
        }
        guard case .ssh? = profile.kind else {
            ctx.error(
                key, .wrongProfileKind,
                "auth profile '\(name)' (\(profile.location)) is plugin = \(profile.plugin ?? "unset"), not SSH")
            return false
        }
        if profile.tenant != tenant {
            ctx.error(
                key, .crossTenant,
                "queue of tenant '\(tenant)' cannot use auth profile '\(name)' of tenant '\(profile.tenant)'")
            return false
        }
        return true
    }

    /// `batchsubmit.<leaf>.proxy = p1, p2`: every name an X509 profile of the tenant.
    private func checkProxies(_ ctx: inout Context, _ sub: PluginCatalog.Submitter, tenant: String) {
        guard let profiles else { return }
        let r = ctx.reader
        for c in PluginCatalog.lineage(of: sub.id) {
            let key = "batchsubmit.\(c.id).proxy"
            guard let names = r.list(key) else { continue }
            for name in names {
                guard let profile = profiles[name] else {
                    ctx.error(
                        key, .unknownProfile, "proxy profile '\(name)' is not defined in auth.conf",
                        suggestion: EditDistance.nearest(name, in: profiles.keys))
                    continue
                }
                guard case .x509? = profile.kind else {
                    ctx.error(key, .wrongProfileKind, "proxy profile '\(name)' is plugin = \(profile.plugin ?? "unset"), not X509")
                    continue
                }
                if profile.tenant != tenant {
                    ctx.error(
                        key, .crossTenant,
                        "queue of tenant '\(tenant)' cannot use proxy profile '\(name)' of tenant '\(profile.tenant)'")
                }
            }
            return
        }
    }

    // MARK: - Extras and retire policy

    /// The submitter's generic value for `param`: the leaf-prefixed key wins over its parents' (APF's renaming).
    private func submitString(_ r: SectionReader, _ sub: PluginCatalog.Submitter?, _ param: String) -> String? {
        guard let sub else { return nil }
        for c in PluginCatalog.lineage(of: sub.id) {
            if let v = r.string("batchsubmit.\(c.id).\(param)") { return v }
        }
        return nil
    }

    private func submitKey(_ r: SectionReader, _ sub: PluginCatalog.Submitter?, _ params: [String]) -> String? {
        guard let sub else { return nil }
        for c in PluginCatalog.lineage(of: sub.id) {
            for param in params where r.has("batchsubmit.\(c.id).\(param)") { return "batchsubmit.\(c.id).\(param)" }
        }
        return nil
    }

    private func submitExtras(
        _ r: SectionReader, _ sub: PluginCatalog.Submitter?
    ) -> ([(key: String, value: String)], String?) {
        guard let sub else { return ([], nil) }
        var extra: [(key: String, value: String)] = []
        if let attrs = submitString(r, sub, "condor_attributes") { extra += CondorAttributes.parse(attrs) }
        let ids = PluginCatalog.lineage(of: sub.id).map(\.id)
        for e in r.section.entries {
            for id in ids {
                let prefix = "batchsubmit.\(id).condor_attributes."
                if e.key.hasPrefix(prefix), let v = e.value, !ConfigValue.isNone(v) {
                    extra.append((String(e.key.dropFirst(prefix.count)), v))
                }
            }
        }
        return (extra, submitString(r, sub, "environ"))
    }

    private func retirePolicy(_ ctx: inout Context, _ sub: PluginCatalog.Submitter?) -> RetirePolicy {
        let r = ctx.reader
        var policy = RetirePolicy.default
        let peacefulKey = submitKey(r, sub, ["peaceful", "overlay.peaceful"])
        let peaceful = peacefulKey.flatMap { r.bool($0) }
        if let mode = r.string("retire.policy").flatMap(RetirePolicy.Mode.init(rawValue:)) {
            policy.mode = mode
            if let peaceful, let peacefulKey, (mode == .floor) != peaceful {
                ctx.warn(
                    "retire.policy", .conflict,
                    "retire.policy = \(mode.rawValue) overrides '\(peacefulKey)' = \(peaceful ? "True" : "False")")
            }
        } else if let peaceful {
            policy.mode = peaceful ? .floor : .cancel
        }
        if let order = r.string("retire.order").flatMap(RetirePolicy.Order.init(rawValue:)) {
            policy.order = order
        } else if let key = submitKey(r, sub, ["killorder", "overlay.killorder"]),
            let order = r.string(key).flatMap(RetirePolicy.Order.init(rawValue:))
        {
            policy.order = order
        }
        if let idle = r.int("retire.idle_after"), idle > 0 { policy.idleAfter = idle }
        policy.maxPerCycle = r.int("retire.max_per_cycle")
        return policy
    }

    // MARK: - Pilot options

    /// `pilot.*`; APF's `+maxMemory`, `+xcount` and `+maxWallTime` (minutes) Condor attributes fill memory, cores and
    /// walltime when the `pilot.*` key is not set, so VC3 and Agis-style queues keep their resource requests.
    private func pilotSettings(_ ctx: inout Context) -> PilotSettings {
        let r = ctx.reader
        var p = PilotSettings()
        p.walltime = r.int("pilot.walltime")
        p.cores = r.int("pilot.cores")
        p.memoryMB = r.int("pilot.memory")
        p.partition = r.string("pilot.partition")
        p.account = r.string("pilot.account")
        p.sgeParallelEnvironment = r.string("pilot.sge_pe")
        p.workDirectory = r.string("pilot.workdir")
        if let extra = r.string("pilot.extra") {
            if let argv = ArgvSplitter.split(extra) {
                p.extra = argv
            } else {
                ctx.error("pilot.extra", .syntax, "'pilot.extra' has an unbalanced quote (it is split into words, not run by a shell)")
            }
        }
        for e in r.section.entries where e.key.hasPrefix("batchsubmit.") && e.key.contains(".condor_attributes.") {
            guard let v = e.value, let n = Int(String(v.filter { $0 != " " && $0 != "\t" })) else { continue }
            switch e.key.split(separator: ".").last.map(String.init) {
            case "+maxMemory"?, "request_memory"?: p.memoryMB = p.memoryMB ?? n
            case "+xcount"?, "request_cpus"?: p.cores = p.cores ?? n
            case "+maxWallTime"?: p.walltime = p.walltime ?? n * 60
            default: break
            }
        }
        return p
    }

    // MARK: - Diagnostics

    struct Context {
        var reader: SectionReader
        var diagnostics: [ConfigDiagnostic] = []

        mutating func error(
            _ key: String, _ code: ConfigDiagnostic.Code, _ message: String, choices: [String]? = nil,
            suggestion: String? = nil
        ) {
            add(.error, key, code, message, choices, suggestion)
        }

        mutating func warn(
            _ key: String, _ code: ConfigDiagnostic.Code, _ message: String, choices: [String]? = nil,
            suggestion: String? = nil
        ) {
            add(.warning, key, code, message, choices, suggestion)
        }

        private mutating func add(
            _ severity: ConfigDiagnostic.Severity, _ key: String, _ code: ConfigDiagnostic.Code, _ message: String,
            _ choices: [String]?, _ suggestion: String?
        ) {
            let entry = reader.entry(key)
            // A problem that depends on the whole queue (not only on a [DEFAULT] value) is this section's.
            diagnostics.append(
                ConfigDiagnostic(
                    severity, code, at: reader.location(key), section: reader.section.name, key: key,
                    value: entry?.raw, message, choices: choices, suggestion: suggestion))
        }
    }
}
