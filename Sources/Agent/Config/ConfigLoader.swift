import Foundation

/// The files a loader reads: the real file system, or a dictionary in tests.
public struct ConfigFiles: Sendable {
    public var read: @Sendable (String) -> String?
    public var isDirectory: @Sendable (String) -> Bool
    /// Names (not paths) of the entries of a directory.
    public var list: @Sendable (String) -> [String]

    public init(
        read: @escaping @Sendable (String) -> String?, isDirectory: @escaping @Sendable (String) -> Bool,
        list: @escaping @Sendable (String) -> [String]
    ) {
        self.read = read
        self.isDirectory = isDirectory
        self.list = list
    }

    public static let disk = ConfigFiles(
        read: { path in
            guard let data = FileManager.default.contents(atPath: path) else { return nil }
            return String(decoding: data, as: UTF8.self)
        },
        isDirectory: { path in
            var dir: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &dir) && dir.boolValue
        },
        list: { path in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] })

    /// An in-memory tree: paths → contents; directories are implied by the paths.
    public static func memory(_ files: [String: String]) -> ConfigFiles {
        ConfigFiles(
            read: { files[$0] },
            isDirectory: { dir in files.keys.contains { $0.hasPrefix(dir.hasSuffix("/") ? dir : dir + "/") } },
            list: { dir in
                let prefix = dir.hasSuffix("/") ? dir : dir + "/"
                return Array(
                    Set(
                        files.keys.filter { $0.hasPrefix(prefix) }.map {
                            String($0.dropFirst(prefix.count).prefix { $0 != "/" })
                        }))
            })
    }

    func exists(_ path: String) -> Bool { isDirectory(path) || read(path) != nil }
}

/// Loads APF configuration unchanged: a config directory (`autopyfactory.conf` or `factory.conf`, `queues.conf`,
/// `queues.d/*.conf`, `auth.conf`, `monitor.conf`) or single files, and checks everything it reads.
public struct ConfigLoader: Sendable {
    public var files: ConfigFiles
    public var expander: HomeExpander

    public init(files: ConfigFiles = .disk, expander: HomeExpander = .system) {
        self.files = files
        self.expander = expander
    }

    /// A source of one kind: one file parsed alone, or a directory's `*.conf` files parsed together.
    struct Source {
        var kind: ConfigFileKind
        var paths: [String]
    }

    /// Loads `paths` (directories or files) into one checked configuration. Never throws: every problem is a
    /// diagnostic, and every queue that could be parsed is listed.
    public func load(paths: [String]) -> AgentConfig { load(paths, queuesOnly: false) }

    /// Loads queue files only (as `apf-agent sched simulate --config` does), with built-in factory defaults.
    public func loadQueues(paths: [String]) -> AgentConfig { load(paths, queuesOnly: true) }

    private func load(_ paths: [String], queuesOnly: Bool) -> AgentConfig {
        var sink = DiagnosticSink()
        var sources: [Source] = []
        for path in paths {
            let p = Self.stripFileURL(path)
            if files.isDirectory(p) {
                sources += discover(directory: p, into: &sink)
            } else if queuesOnly {
                sources.append(Source(kind: .queues, paths: [p]))
            } else if files.read(p) != nil {
                if let kind = classify(file: p, into: &sink) { sources.append(Source(kind: kind, paths: [p])) }
            } else {
                sink.add(
                    ConfigDiagnostic(
                        .error, .unreadable, at: ConfigLocation(file: p, line: 0),
                        "cannot read '\(p)': no such file or directory, or not readable"))
            }
        }
        return build(sources, into: &sink)
    }

    static func stripFileURL(_ s: String) -> String {
        s.hasPrefix("file://") ? String(s.dropFirst("file://".count)) : s
    }

    // MARK: - Discovery

    private func join(_ dir: String, _ name: String) -> String {
        dir.hasSuffix("/") ? dir + name : dir + "/" + name
    }

    private func discover(directory dir: String, into sink: inout DiagnosticSink) -> [Source] {
        var out: [Source] = []
        let names = Set(files.list(dir))
        var used: Set<String> = []
        var factoryPath: String?
        for n in ["autopyfactory.conf", "factory.conf"] where names.contains(n) {
            factoryPath = join(dir, n)
            used.insert(n)
            break
        }
        // Paths named in [Factory] are followed when they exist; a relocated tree falls back to the same file
        // name in this directory.
        var factory: FactoryConfig?
        if let factoryPath {
            out.append(Source(kind: .factory, paths: [factoryPath]))
            let (doc, _) = parse([factoryPath])
            if let doc {
                let (sections, _) = SectionResolver.resolve([doc], expander: expander)
                factory = FileBuilders.factory(sections).0
            }
        }
        func resolve(_ named: [String], key: String, fallback: String) -> [String] {
            if named.isEmpty || named.allSatisfy(ConfigValue.isNone) {
                if names.contains(fallback) {
                    used.insert(fallback)
                    return [join(dir, fallback)]
                }
                return []
            }
            var paths: [String] = []
            for source in named where !ConfigValue.isNone(source) {
                if source.hasPrefix("http://") || source.hasPrefix("https://") || source.hasPrefix("uri://") {
                    sink.add(
                        ConfigDiagnostic(
                            .error, .notSupportedYet, at: factory?.keyLocations[key] ?? factory?.location ?? ConfigLocation(file: dir, line: 0),
                            section: "Factory", key: key, value: source,
                            "remote configuration sources are not supported yet (a roadmap item); use a file"))
                    continue
                }
                var p = expander.expand(Self.stripFileURL(source))
                if !p.hasPrefix("/") { p = join(dir, p) }
                if files.exists(p) {
                    paths.append(p)
                    if p.hasPrefix(join(dir, "")) { used.insert(String(p.dropFirst(join(dir, "").count))) }
                    continue
                }
                let base = String(p.split(separator: "/").last ?? "")
                if names.contains(base) {
                    sink.add(
                        ConfigDiagnostic(
                            .warning, .notRead, at: factory?.keyLocations[key] ?? factory?.location ?? ConfigLocation(file: dir, line: 0),
                            section: "Factory", key: key, value: source,
                            "\(key) names '\(p)', which does not exist; using '\(join(dir, base))' instead"))
                    used.insert(base)
                    paths.append(join(dir, base))
                } else {
                    sink.add(
                        ConfigDiagnostic(
                            .error, .unreadable, at: factory?.keyLocations[key] ?? factory?.location ?? ConfigLocation(file: dir, line: 0),
                            section: "Factory", key: key, value: source, "\(key) names '\(p)', which does not exist"))
                }
            }
            return paths
        }
        for p in resolve(factory?.authSources ?? [], key: "authConf", fallback: "auth.conf") {
            out.append(Source(kind: .auth, paths: [p]))
        }
        for p in resolve(factory?.monitorSources ?? [], key: "monitorConf", fallback: "monitor.conf") {
            out.append(Source(kind: .monitor, paths: [p]))
        }
        for p in resolve(factory?.queueSources ?? [], key: "queueConf", fallback: "queues.conf") {
            out.append(Source(kind: .queues, paths: [p]))
        }
        let queueDirs = resolve(factory?.queueDir.map { [$0] } ?? [], key: "queueDirConf", fallback: "queues.d")
        for d in queueDirs where files.isDirectory(d) {
            let confs = files.list(d).filter { $0.hasSuffix(".conf") }.sorted().map { join(d, $0) }
            if !confs.isEmpty { out.append(Source(kind: .queues, paths: confs)) }
        }
        // A directory that holds only *.conf queue files (a queues.d given directly).
        if out.isEmpty {
            let confs = names.filter { $0.hasSuffix(".conf") }.sorted()
            if !confs.isEmpty {
                out.append(Source(kind: .queues, paths: confs.map { join(dir, $0) }))
                return out
            }
        }
        let notes: [String: String] = [
            "mappings.conf": "apf-agent's state tables are built in",
            "proxy.conf": "APF ≤ 2.3's proxymanager file; X509 profiles live in auth.conf",
            "agisdefaults.conf": "defaults for Agis-generated queues, which are not supported yet",
        ]
        for n in names.sorted() where n.hasSuffix(".conf") && !used.contains(n) {
            sink.add(
                ConfigDiagnostic(
                    .warning, .notRead, at: ConfigLocation(file: join(dir, n), line: 0),
                    "not read: \(notes[n] ?? "not one of autopyfactory.conf, queues.conf, queues.d/, auth.conf, monitor.conf")"))
        }
        return out
    }

    /// The kind of a file given on the command line, by its sections, then its name.
    private func classify(file path: String, into sink: inout DiagnosticSink) -> ConfigFileKind? {
        let base = String(path.split(separator: "/").last ?? "")
        if base == "mappings.conf" || base == "proxy.conf" {
            sink.add(
                ConfigDiagnostic(
                    .warning, .notRead, at: ConfigLocation(file: path, line: 0),
                    base == "mappings.conf"
                        ? "not read: apf-agent's state tables are built in"
                        : "not read: APF ≤ 2.3's proxymanager file; X509 profiles live in auth.conf"))
            return nil
        }
        guard let text = files.read(path) else { return .queues }
        let (doc, _) = INIDocument.parse(text, file: path)
        if doc[section: "Factory"] != nil { return .factory }
        if base.hasPrefix("auth") || base.hasPrefix("vc3auth") { return .auth }
        if base.hasPrefix("monitor") { return .monitor }
        if base.hasPrefix("queues") { return .queues }
        if base.hasPrefix("autopyfactory") || base.hasPrefix("factory") { return .factory }
        let all = doc.sections + (doc.defaults.map { [$0] } ?? [])
        if all.contains(where: { $0["monitorplugin"] != nil }) { return .monitor }
        if all.contains(where: { $0["plugin"] != nil || $0.keys.contains { $0.hasPrefix("x509.") || $0.hasPrefix("ssh.") } }) {
            return .auth
        }
        return .queues
    }

    // MARK: - Parsing and building

    /// Parses files together into one document (one shared [DEFAULT]).
    private func parse(_ paths: [String]) -> (INIDocument?, [ConfigDiagnostic]) {
        var doc: INIDocument?
        var diags: [ConfigDiagnostic] = []
        for p in paths {
            guard let text = files.read(p) else {
                diags.append(
                    ConfigDiagnostic(.error, .unreadable, at: ConfigLocation(file: p, line: 0), "cannot read '\(p)'"))
                continue
            }
            if doc == nil { doc = INIDocument(files: []) }
            diags += doc!.read(text, file: p)
        }
        return (doc, diags)
    }

    /// APF 1.x files (`[QueueDefaults]`, `[Pilots]`, `nickname`) are recognised and reported, not interpreted.
    static func oldFormatMarkers(_ doc: INIDocument) -> [(String, ConfigLocation)] {
        var markers: [(String, ConfigLocation)] = []
        for s in doc.sections {
            if s.name == "QueueDefaults" || s.name == "Pilots" { markers.append(("[\(s.name)]", s.location)) }
            if let n = s["nickname"], s["wmsqueue"] == nil { markers.append(("nickname in [\(s.name)]", n.location)) }
        }
        return markers
    }

    private func build(_ sources: [Source], into sink: inout DiagnosticSink) -> AgentConfig {
        var parsed: [ConfigFileKind: [INIDocument]] = [:]
        var fileList: [(path: String, kind: ConfigFileKind)] = []
        for source in sources {
            let (doc, diags) = parse(source.paths)
            sink.add(contentsOf: diags)
            for p in source.paths where files.read(p) != nil { fileList.append((p, source.kind)) }
            guard let doc else { continue }
            let markers = Self.oldFormatMarkers(doc)
            if !markers.isEmpty {
                let first = markers[0].1
                let list = markers.prefix(4).map { "\($0.0) at line \($0.1.line)" }.joined(separator: ", ")
                sink.add(
                    ConfigDiagnostic(
                        .error, .oldFormat, at: first,
                        "this is an APF 1.x file (\(list)\(markers.count > 4 ? ", …" : "")), which APF 2 and apf-agent do not read; convert it: [QueueDefaults] → [DEFAULT], nickname → wmsqueue/batchqueue, and name the plugins (wmsstatusplugin, schedplugin, batchsubmitplugin)"
                    ))
                continue
            }
            parsed[source.kind, default: []].append(doc)
        }

        // Factory first: its defaults (tenant, maxperfactory) apply to the other files.
        let (factorySections, fd) = SectionResolver.resolve(parsed[.factory] ?? [], expander: expander)
        sink.add(contentsOf: fd)
        let (factory, tenantLimits, targetLimits, fdiags) = FileBuilders.factory(factorySections)
        sink.add(contentsOf: fdiags)

        var profiles: [AuthProfileConfig] = []
        var profileByName: [String: AuthProfileConfig]?
        if let docs = parsed[.auth] {
            let (sections, ad) = SectionResolver.resolve(docs, expander: expander)
            sink.add(contentsOf: ad)
            var byName: [String: AuthProfileConfig] = [:]
            for s in sections {
                let (p, d) = FileBuilders.auth(s, defaultTenant: factory.tenant)
                sink.add(contentsOf: d)
                profiles.append(p)
                byName[p.name] = p
            }
            profileByName = byName
        }

        var monitors: [MonitorConfig] = []
        var monitorNames: Set<String>?
        if let docs = parsed[.monitor] {
            let (sections, md) = SectionResolver.resolve(docs, expander: expander)
            sink.add(contentsOf: md)
            for s in sections {
                let (m, d) = FileBuilders.monitor(s)
                sink.add(contentsOf: d)
                monitors.append(m)
            }
            monitorNames = Set(monitors.map(\.name))
        }

        var queues: [QueueConfig] = []
        var targets: [TargetDescription] = []
        let queueDocs = parsed[.queues] ?? []
        if !queueDocs.isEmpty {
            let (sections, qd) = SectionResolver.resolve(queueDocs, expander: expander)
            sink.add(contentsOf: qd)
            // [DEFAULT] is checked on its own too, so a file with no queue yet still gets its keys checked.
            for doc in queueDocs {
                guard let defaults = doc.defaults else { continue }
                var section = ResolvedSection(name: "DEFAULT", location: defaults.location)
                for e in defaults.entries {
                    let raw = expander.expand(e.value)
                    section.set(
                        ConfigEntry(
                            key: e.key, raw: raw, value: raw.contains("%") ? nil : raw, location: e.location,
                            inherited: true))
                }
                sink.add(contentsOf: SectionReader(section, kind: .queues, lookup: KeyCatalog.lookupQueueKey).diagnostics)
            }
            let builder = QueueBuilder(factory: factory, profiles: profileByName, monitors: monitorNames)
            for s in sections {
                var out = builder.build(s)
                // Interpolation errors of this section count against it too.
                out.queue.errorCount += qd.filter { $0.isError && $0.section == s.name }.count
                sink.add(contentsOf: out.diagnostics)
                if case .ssh(.mapped(let t))? = out.queue.submit {
                    let named = Self.place(t, in: &targets)
                    out.queue.submit = .ssh(.mapped(named))
                }
                queues.append(out.queue)
            }
            if sections.isEmpty, let doc = queueDocs.first {
                let loc = doc.defaults?.location ?? ConfigLocation(file: doc.files.first ?? "", line: 1)
                sink.add(
                    ConfigDiagnostic(
                        .warning, .noQueues, at: loc,
                        "no queue sections, only [DEFAULT]: nothing will run until a [QUEUE] section is added"))
            }
        }
        return AgentConfig(
            factory: factory, queues: queues, authProfiles: profiles, monitors: monitors,
            mappedTargets: targets, tenantLimits: tenantLimits, targetLimits: targetLimits,
            files: fileList, diagnostics: sink.all)
    }

    /// One target per distinct (tenant, host, port, user, batch, profile), shared by the queues that describe
    /// it; a name clash between different profiles gets the profile appended. Returns the target as placed.
    static func place(_ target: TargetDescription, in targets: inout [TargetDescription]) -> TargetDescription {
        if let same = targets.first(where: {
            $0.host == target.host && $0.port == target.port && $0.user == target.user && $0.batch == target.batch
                && $0.profile == target.profile && $0.tenant == target.tenant
        }) {
            return same
        }
        var t = target
        if targets.contains(where: { $0.name == t.name }) { t.name += "~\(t.profile)" }
        if targets.contains(where: { $0.name == t.name }) { t.name += "~\(t.tenant)" }
        targets.append(t)
        return t
    }
}
