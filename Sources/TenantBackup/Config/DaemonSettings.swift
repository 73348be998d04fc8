import Foundation
import Logging

/// When the daemon runs a cycle, and how it stops (`tenant-backup run`).
public struct DaemonSettings: Sendable, Equatable {
    /// The cycle's schedule: a five-field cron expression in a time zone (default `0 2 * * *`, UTC).
    public var schedule: CronSchedule
    /// Each cycle starts after a random delay of up to this much, so that many hosts do not all hit the
    /// database and the bucket in the same second.
    public var randomDelay: Duration
    /// On start and after a reload, tenants whose newest backup is older than one schedule period are
    /// backed up at once instead of waiting for the next slot.
    public var catchUp: Bool
    /// After SIGTERM, tenants in flight may finish for this long; then their dumps are stopped and their
    /// uploads aborted. systemd's `TimeoutStopSec=` must be longer.
    public var stopTimeout: Duration
    /// How long a tenant waits for its advisory lock while another host works on it, before giving up for
    /// this slot. After the wait the bucket is checked again, so the tenant is not backed up twice.
    public var lockWait: Duration
    /// How often the lock's connection is checked during a backup; a lost connection aborts the upload.
    public var lockCheckInterval: Duration

    public init(
        schedule: CronSchedule = Self.defaultSchedule, randomDelay: Duration = .zero, catchUp: Bool = true,
        stopTimeout: Duration = .seconds(60), lockWait: Duration = .seconds(3600), lockCheckInterval: Duration = .seconds(5)
    ) {
        self.schedule = schedule
        self.randomDelay = randomDelay
        self.catchUp = catchUp
        self.stopTimeout = stopTimeout
        self.lockWait = lockWait
        self.lockCheckInterval = lockCheckInterval
    }

    // The expression is a constant known to parse.
    public static let defaultSchedule = try! CronSchedule("0 2 * * *")
}

/// The Prometheus endpoint.
public struct MetricsSettings: Sendable, Equatable {
    /// `host:port` to serve `/metrics` on, or `nil` for no metrics server. Default `127.0.0.1:9187`.
    public var listen: ListenAddress?
    /// A tenant whose newest backup in the bucket is older than this is reported stale
    /// (`tenant_backup_tenant_stale{tenant=…} 1`).
    public var staleAfter: Duration
    /// How often the bucket is listed to recompute staleness (also after every cycle).
    public var refreshInterval: Duration

    public init(listen: ListenAddress? = ListenAddress(host: "127.0.0.1", port: 9187), staleAfter: Duration = .seconds(26 * 3600), refreshInterval: Duration = .seconds(300)) {
        self.listen = listen
        self.staleAfter = staleAfter
        self.refreshInterval = refreshInterval
    }
}

/// A `host:port` to listen on.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `127.0.0.1:9187`, `[::1]:9187` or `localhost:9187`.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Where log lines go.
public struct LoggingSettings: Sendable, Equatable {
    public enum Format: String, Sendable, Equatable, CaseIterable {
        /// journald's native protocol when stderr is the journal (`$JOURNAL_STREAM`), logfmt otherwise.
        case automatic = "auto"
        /// journald's native protocol, with structured fields (`TENANT=`, `S3_KEY=`…).
        case journald
        /// `key=value` lines on stderr.
        case logfmt
    }

    public var format: Format
    public var level: Logger.Level

    public init(format: Format = .automatic, level: Logger.Level = .info) {
        self.format = format
        self.level = level
    }
}
