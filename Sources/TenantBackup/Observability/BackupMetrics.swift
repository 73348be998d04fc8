import Foundation
import Logging
import Metrics
import Prometheus

/// The metrics tenant-backup reports, through swift-metrics (the daemon bootstraps the Prometheus
/// backend; elsewhere they go nowhere). Names follow Prometheus conventions; per-tenant series carry a
/// `tenant` label.
public enum BackupMetrics {
    public static let lastSuccess = "tenant_backup_last_success_timestamp_seconds"
    public static let lastAttemptSucceeded = "tenant_backup_last_attempt_success"
    public static let lastAttempt = "tenant_backup_last_attempt_timestamp_seconds"
    public static let lastBytes = "tenant_backup_last_backup_bytes"
    public static let lastDuration = "tenant_backup_last_duration_seconds"
    public static let backups = "tenant_backup_backups_total"
    public static let failures = "tenant_backup_failures_total"
    public static let deletions = "tenant_backup_deletions_total"
    public static let retries = "tenant_backup_s3_retries_total"
    public static let newestBackup = "tenant_backup_newest_backup_timestamp_seconds"
    public static let stale = "tenant_backup_tenant_stale"
    public static let reloadSucceeded = "tenant_backup_config_last_reload_successful"
    public static let reloads = "tenant_backup_config_reloads_total"
    public static let futureDated = "tenant_backup_future_dated_backups"
    public static let tenantsSelected = "tenant_backup_tenants_selected"
    public static let lastDrillSuccess = "tenant_backup_last_drill_success"
    public static let lastDrillTimestamp = "tenant_backup_last_drill_timestamp_seconds"

    /// Records one schema's backup attempt. Shared schemas count in the totals only.
    static func record(schema: BackupSchema, result: Result<BackupOutcome, BackupError>, at date: Date = Date()) {
        let areaLabel = schema.kind
        switch result {
        case .success(let outcome):
            Counter(label: backups, dimensions: [("area", areaLabel)]).increment()
            guard schema.area == .tenant else { return }
            let tenant = [("tenant", schema.name)]
            Gauge(label: lastSuccess, dimensions: tenant).record(date.timeIntervalSince1970)
            Gauge(label: lastAttemptSucceeded, dimensions: tenant).record(1)
            Gauge(label: lastAttempt, dimensions: tenant).record(date.timeIntervalSince1970)
            Gauge(label: lastBytes, dimensions: tenant).record(outcome.storedBytes)
            Gauge(label: lastDuration, dimensions: tenant).record(Double(outcome.duration.milliseconds) / 1000)
        case .failure(let error):
            // Another process holds the tenant's lock (a backup already running, a double-clicked `create`
            // answered 409): nothing failed; that process's backup counts.
            if case .lockBusy = error.cause { return }
            Counter(label: failures, dimensions: [("area", areaLabel)]).increment()
            guard schema.area == .tenant else { return }
            let tenant = [("tenant", schema.name)]
            Gauge(label: lastAttemptSucceeded, dimensions: tenant).record(0)
            Gauge(label: lastAttempt, dimensions: tenant).record(date.timeIntervalSince1970)
        }
    }

    static func recordDeletions(_ count: Int) {
        guard count > 0 else { return }
        Counter(label: deletions).increment(by: count)
    }

    static func recordRetry(operation: String) {
        Counter(label: retries, dimensions: [("operation", operation)]).increment()
    }

    /// Records what the bucket says about one tenant: its newest backup's time, and whether it is stale.
    public static func recordFreshness(tenant: String, newest: Date?, staleAfter: Duration, now: Date = Date()) {
        let labels = [("tenant", tenant)]
        if let newest { Gauge(label: newestBackup, dimensions: labels).record(newest.timeIntervalSince1970) }
        let age = newest.map { now.timeIntervalSince($0) } ?? .infinity
        Gauge(label: stale, dimensions: labels).record(age > Double(staleAfter.components.seconds) ? 1 : 0)
    }

    /// How many of a tenant's keys are dated in the future (they never count as its newest backup).
    static func recordFutureDated(tenant: String, count: Int) {
        Gauge(label: futureDated, dimensions: [("tenant", tenant)]).record(count)
    }

    /// The outcome and time of a tenant's last restore drill.
    static func recordDrill(tenant: String, succeeded: Bool, at date: Date) {
        Gauge(label: lastDrillSuccess, dimensions: [("tenant", tenant)]).record(succeeded ? 1 : 0)
        Gauge(label: lastDrillTimestamp, dimensions: [("tenant", tenant)]).record(date.timeIntervalSince1970)
    }

    /// How many tenants the last discovery selected; 0 is a failure an alert can see.
    static func recordTenantsSelected(_ count: Int) {
        Gauge(label: tenantsSelected).record(count)
    }

    static func recordReload(succeeded: Bool) {
        Counter(label: reloads, dimensions: [("result", succeeded ? "ok" : "failed")]).increment()
        Gauge(label: reloadSucceeded).record(succeeded ? 1 : 0)
    }
}

extension BackupMetrics {
    /// Sends swift-metrics to a new Prometheus registry (once per process) and returns it, for the daemon's
    /// `/metrics` endpoint.
    public static func bootstrapPrometheus() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }
}

extension LoggingSettings {
    /// The handler these settings ask for: journald's native protocol when configured, or when `auto` and
    /// stderr is the journal; logfmt on stderr otherwise.
    public func makeHandler(label: String, level: Logger.Level? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) -> any LogHandler {
        let useJournal = format == .journald || (format == .automatic && JournaldLogHandler.standardErrorIsJournal(environment: environment))
        return useJournal
            ? JournaldLogHandler(label: label, level: level ?? self.level)
            : LogfmtLogHandler(label: label, level: level ?? self.level)
    }
}
