import AsyncHTTPClient
import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import UnixSignals

/// `tenant-backup run`: the scheduler, the SIGHUP reload, the systemd watchdog, the metrics endpoint and
/// the staleness probe in one ServiceGroup. SIGTERM and SIGINT stop it gracefully (exit 0): no new tenant
/// starts, tenants in flight get `daemon.stop_timeout`, then their uploads are aborted.
///
/// systemd hears `READY=1` once the settings are loaded and the first checks pass (the database answers,
/// the bucket can be listed, the metrics port is bound), `STATUS=` as work progresses, and `STOPPING=1`.
public struct Daemon: Sendable {
    /// The settings as loaded at start.
    public let settings: Settings
    /// Loads the settings again, as on start (file, environment, credentials), for SIGHUP.
    public let load: @Sendable () throws(ConfigError) -> Settings
    public let environment: [String: String]
    public let logger: Logger
    /// Where metrics are collected; the caller bootstraps swift-metrics with it.
    public let registry: PrometheusCollectorRegistry?
    public var httpClient: HTTPClient? = nil
    /// More services the executable adds (the HTTP API), built with the daemon's state; not in `once` mode.
    public var extraServices: [(name: String, make: @Sendable (DaemonState) -> any Service)] = []

    public init(
        settings: Settings, environment: [String: String], logger: Logger, registry: PrometheusCollectorRegistry?,
        load: @escaping @Sendable () throws(ConfigError) -> Settings
    ) {
        self.settings = settings
        self.environment = environment
        self.logger = logger
        self.registry = registry
        self.load = load
    }

    /// Runs until SIGTERM/SIGINT, or for one cycle when `once`. Returns the last cycle's outcome.
    public func run(once: Bool = false) async throws -> CycleOutcomeBox {
        let notifier = SystemdNotifier(environment: environment)
        let context = BackupContext(settings: settings, environment: environment, logger: logger, httpClient: httpClient)
        let state = DaemonState(context: context, notifier: notifier)
        // Trap SIGHUP before anything can send it: its default action would end the process.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        state.setActivity("starting: checking the database and the bucket")
        try await firstChecks(context, state: state, retry: !once)
        await Self.sweepLeftovers(context, logger: logger)

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: WatchdogService(state: state, logger: logger), serviceName: "watchdog")
        ]
        // The freshness gauges are read only through the metrics endpoint: without one, nothing refreshes them
        // (each refresh reads every tenant's newest manifest).
        let freshness: FreshnessMonitor? = once || settings.metrics.listen == nil || registry == nil ? nil : FreshnessMonitor(state: state, logger: logger)
        if !once {
            if let address = settings.metrics.listen, let registry {
                let server = try await MetricsServer.bind(address: address, registry: registry, logger: logger)
                services.append(.init(service: server, serviceName: "metrics"))
            }
            if let freshness { services.append(.init(service: freshness, serviceName: "freshness")) }
            services.append(.init(service: DrillService(state: state, logger: logger), serviceName: "drills"))
            for extra in extraServices { services.append(.init(service: extra.make(state), serviceName: extra.name)) }
        }
        services.append(.init(service: ReloadService(state: state, signals: hangups, logger: logger, load: load), serviceName: "reload"))
        let outcome = CycleOutcomeBox()
        let scheduler = CycleScheduler(
            state: state, logger: logger, once: once,
            freshness: freshness, outcome: outcome)
        // Last in the list: the first to be told to stop, and its return ends the group in `once` mode.
        services.append(.init(service: scheduler, successTerminationBehavior: .gracefullyShutdownGroup, serviceName: "scheduler"))

        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.logging.keys.serviceKey = "service"
        let group = ServiceGroup(configuration: configuration)
        logger.notice("tenant-backup started", metadata: ["schedule": "\(settings.daemon.schedule)", "once": "\(once)"])
        notifier.ready(status: state.statusLine)
        try await group.run()
        state.notifyStopping()
        logger.notice("tenant-backup stopped")
        return outcome
    }

    /// The database answers and the bucket can be listed. Retried every 10 s (with the reason in systemd's
    /// status line) unless `retry` is false.
    /// What killed restores and drills left (their databases on the settings' server, their spools) is removed
    /// at start: only ours, and only once its process is gone.
    static func sweepLeftovers(_ context: BackupContext, logger: Logger) async {
        let server = context.settings.postgres.serverEnvironment(base: context.environment)
        let swept = (try? await Blocking.run { RestoreLeftovers.sweepDatabases(environment: server) }) ?? []
        let spools = RestoreSpool.sweep(base: context.settings.restore.resolvedSpoolDirectory(environment: context.environment))
        for line in swept + spools.map({ "removed spool \($0)" }) {
            logger.notice("swept a leftover of a killed restore", metadata: ["leftover": "\(line)"])
        }
    }

    private func firstChecks(_ context: BackupContext, state: DaemonState, retry: Bool) async throws {
        _ = try context.client()  // no bucket: refuse to start
        while true {
            guard let problem = await firstProblem(context) else { return }
            guard retry else { throw ContextError.notReady(problem) }
            logger.error("first checks failed; retrying in 10 s", metadata: ["error": "\(problem)"])
            state.setActivity("starting: \(problem); retrying")
            try await Task.sleep(for: .seconds(10))
        }
    }

    /// What stops the daemon from working, or `nil` when the database and the bucket both answer.
    private func firstProblem(_ context: BackupContext) async -> String? {
        let inventory: BackupContext.DatabaseInventory
        let catalog: BackupCatalog
        do {
            inventory = try await context.inspectDatabase()
            catalog = try context.catalog()
        } catch {
            return "\(error)"
        }
        do {
            try await catalog.checkListable()
        } catch {
            return "the bucket cannot be listed: \(error)"
        }
        // What the store does with what backups ask of it: a store that drops the encryption asked for would
        // fail every backup, so the daemon is not ready; the rest it works around, and says so.
        if let client = try? context.client() {
            for finding in await S3StoreProbe(client: client, prefix: StorageLayout(prefix: context.settings.s3.prefix).testPrefix).run() {
                if finding.name == S3StoreProbe.encryption, finding.outcome == .failed {
                    return "\(finding.detail); fix: \(finding.hint ?? "")"
                }
                guard finding.outcome != .supported else { continue }
                logger.warning(
                    "the S3 store lacks a capability",
                    metadata: ["capability": "\(finding.name)", "found": "\(finding.detail)", "setting": "\(finding.hint ?? "")"])
            }
        }
        logger.info("first checks passed", metadata: ["tenants": "\(inventory.discovered.tenants.count)"])
        return nil
    }
}
