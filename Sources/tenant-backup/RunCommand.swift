import ArgumentParser
import Foundation
import TenantBackup
import TenantBackupAPI

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the daemon: back up every tenant on the schedule, then apply retention (what systemd starts).",
        discussion: """
            Runs a cycle at each slot of schedule.cron (default "0 2 * * *" in schedule.time_zone, UTC), after a \
            random delay of up to schedule.random_delay. On start and after a reload, tenants whose newest backup \
            is older than one schedule period are backed up at once (schedule.catch_up). Each tenant's backup and \
            retention run under a PostgreSQL advisory lock, so several hosts can run the daemon against one \
            database and bucket: a tenant already backed up in the current slot is skipped.

            Signals: SIGHUP reloads the configuration as a whole (an invalid file keeps the running one and says \
            why); SIGTERM or SIGINT stop gracefully: no new tenant starts, tenants in flight get daemon.stop_timeout, \
            then their uploads are aborted. Under systemd (Type=notify) it reports READY, STATUS, WATCHDOG, \
            RELOADING and STOPPING, and logs to the journal with TENANT=, S3_KEY=, CYCLE_ID= fields. Metrics in \
            Prometheus format are served on metrics.listen (default 127.0.0.1:9187, path /metrics).
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Run one cycle for the current schedule slot and exit (non-zero if any schema failed): for timers and tests.")
    var once = false

    func run() async throws {
        let environment = try global.environment()
        let settings = try global.settings(environment: environment)
        let logger = global.logger(settings: settings)
        let registry = BackupMetrics.bootstrapPrometheus()
        let loader = SettingsLoader(environment: environment)
        let configFile = global.config
        var daemon = Daemon(settings: settings, environment: environment, logger: logger, registry: registry) { () throws(ConfigError) -> Settings in
            try loader.load(configFile: configFile)
        }
        if let listen = settings.api.listen {
            // The API reads the running settings at each request (a reload changes its token sources and its
            // throttle); only its address is the start's (a change is reported as needing a restart).
            daemon.extraServices = [
                (
                    "api",
                    { state in
                        let running: @Sendable () -> Settings = { state.currentContext.context.settings }
                        return BackupAPI(
                            context: { state.currentContext.context }, authenticator: TokenAuthenticator(settings: running, environment: environment, logger: logger),
                            throttle: AuthenticationThrottle(limit: { running().api.failedAuthenticationsPerMinute }, window: 60), logger: logger)
                            .application(host: listen.host, port: listen.port)
                    }
                )
            ]
        }
        let outcome: CycleOutcomeBox
        do {
            outcome = try await daemon.run(once: once)
        } catch {
            logger.critical("tenant-backup cannot run", metadata: ["error": "\(error)"])
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode(1)
        }
        if once, !outcome.succeeded { throw ExitCode(1) }
    }
}
