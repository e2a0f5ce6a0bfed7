import AuthProfiles
import Foundation
public import Logging
public import ServiceLifecycle
import SSHSubmit
import UnixSignals
#if canImport(Glibc)
import Glibc
#endif

/// Re-reads the configuration when triggered (SIGHUP in the daemon, any sequence in tests) and applies it only if
/// it is valid; otherwise the running configuration stays and the reason is logged (and kept in the journal for
/// `apf-agent status`). The only service that owns SIGHUP; it also re-reads the queue switches.
public struct ReloadService<Triggers: AsyncSequence & Sendable>: Service where Triggers.Element: Sendable {
    let triggers: Triggers
    let load: @Sendable () -> AgentConfig
    let factory: Factory
    let logger: Logger

    public init(triggers: Triggers, factory: Factory, logger: Logger, load: @escaping @Sendable () -> AgentConfig) {
        self.triggers = triggers
        self.factory = factory
        self.logger = logger
        self.load = load
    }

    public func run() async throws {
        for try await _ in triggers.cancelOnGracefulShutdown() {
            logger.info("reloading the configuration")
            switch factory.reload(load()) {
            case .success(let r):
                logger.notice("configuration reloaded", metadata: [
                    "started": "\(r.started.sorted())", "stopped": "\(r.stopped.sorted())", "changed": "\(r.changed.sorted())",
                ])
            case .failure(let e):
                logger.error("configuration refused; still running on the last good one", metadata: ["error": "\(e.message)"])
            }
            factory.reloadQueueControls()
        }
    }
}

/// What `apf-agent run` needs besides its flags' defaults.
public struct DaemonSettings: Sendable {
    /// Configuration directories or files, re-read on SIGHUP.
    public var configPaths: [String]
    /// The installation home (targets, profiles, known_hosts; the default journal location).
    public var home: String
    /// Overrides `[Factory] journal` and the default `<home>/journal.sqlite`.
    public var journalPath: String?
    public var options: FactoryOptions
    /// SIGTERM/SIGINT: cycles in flight finish within this bound, then what is left is cancelled.
    public var shutdownTimeout: Duration

    public init(configPaths: [String], home: String, journalPath: String? = nil, options: FactoryOptions = FactoryOptions(),
                shutdownTimeout: Duration = .seconds(60)) {
        self.configPaths = configPaths
        self.home = home
        self.journalPath = journalPath
        self.options = options
        self.shutdownTimeout = shutdownTimeout
    }
}

/// The daemon: the factory and the reload service in one `ServiceGroup` (STYLE §10). SIGTERM and SIGINT start a
/// bounded graceful shutdown (no new cycles; submits in flight finish and are recorded); SIGHUP reloads.
public struct AgentDaemon: Sendable {
    public let factory: Factory
    public let journalPath: String
    public let pidFile: PIDFile
    let group: ServiceGroup
    let pools: SSHPools
    let logger: Logger

    /// The journal of a configuration: `[Factory] journal`, else `<home>/journal.sqlite`.
    public static func journalPath(config: AgentConfig, home: String, override: String? = nil) -> String {
        if let override { return override }
        if let j = config.factory.journalPath { return j }
        return home + "/journal.sqlite"
    }

    /// Loads and checks the configuration, opens the journal and the installation store, and builds the services.
    /// Throws `invalidConfig` (with every error) when the configuration is not valid.
    public static func make<Triggers: AsyncSequence & Sendable>(
        _ settings: DaemonSettings, logger: Logger, reloadTriggers: Triggers
    ) throws(FactoryError) -> AgentDaemon where Triggers.Element: Sendable {
        let paths = settings.configPaths
        let config = ConfigLoader().load(paths: paths)
        guard config.isValid else {
            throw FactoryError(.invalidConfig, config.errors.map(\.description).joined(separator: "\n"))
        }
        let journalPath = Self.journalPath(config: config, home: settings.home, override: settings.journalPath)
        let dir = (journalPath as NSString).deletingLastPathComponent
        if !dir.isEmpty {
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o700])
        }
        let journal: AgentStore
        do {
            journal = try AgentStore.open(path: journalPath)
        } catch {
            throw FactoryError(.journal, error.message)
        }
        let pools = SSHPools(logger: logger)
        let resolver = TargetResolver(store: ProfileStore(home: settings.home), pools: pools)
        let environment = FactoryEnvironment(journal: journal, resolver: resolver, logger: logger)
        let factory = try Factory(config: config, environment: environment, options: settings.options)
        for (queue, problem) in factory.queueProblems.sorted(by: { $0.key < $1.key }) {
            logger.error("queue not started", metadata: ["queue.name": "\(queue)", "error": "\(problem.message)"])
        }
        let reload = ReloadService(triggers: reloadTriggers, factory: factory, logger: logger) {
            ConfigLoader().load(paths: paths)
        }
        var group = ServiceGroupConfiguration(
            services: [.init(service: factory), .init(service: reload)],
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = settings.shutdownTimeout
        return AgentDaemon(factory: factory, journalPath: journalPath, pidFile: PIDFile(journalPath: journalPath),
                           group: ServiceGroup(configuration: group), pools: pools, logger: logger)
    }

    /// The daemon with SIGHUP as its reload trigger.
    public static func make(_ settings: DaemonSettings, logger: Logger) async throws(FactoryError) -> AgentDaemon {
        let hup = await UnixSignalsSequence(trapping: .sighup)
        return try make(settings, logger: logger, reloadTriggers: hup)
    }

    /// Runs in the foreground until SIGTERM/SIGINT (or cancellation); the pid file exists meanwhile.
    public func run() async throws {
        try pidFile.acquire()
        let journal = factory.environment.journal
        let now = factory.environment.clock.now()
        try? journal.setFactoryState(["pid": "\(getpid())", "journal": journalPath, "config.last-error": ""], at: now)
        logger.notice("apf-agent started", metadata: [
            "pid": "\(getpid())", "journal": "\(journalPath)", "queues": "\(factory.queueNames.count)",
        ])
        defer { pidFile.release() }
        do {
            try await group.run()
        } catch {
            logger.error("service group ended with an error", metadata: ["error": "\(error)"])
            await pools.shutdown(grace: .seconds(5))
            try? journal.setFactoryState(["pid": ""], at: factory.environment.clock.now())
            throw error
        }
        await pools.shutdown(grace: .seconds(5))
        try? journal.setFactoryState(["pid": "", "stopped-at": StatusFormat.time(factory.environment.clock.now())],
                                     at: factory.environment.clock.now())
        logger.notice("apf-agent stopped")
    }
}
