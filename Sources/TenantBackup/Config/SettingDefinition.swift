import Foundation
import Logging

/// How a new value of a setting takes effect when the daemon reloads (`systemctl reload`, SIGHUP).
public enum ReloadEffect: String, Sendable {
    /// From the next cycle, drill or request on.
    case live
    /// Only at the next start: the sockets the daemon listens on, the logging backend.
    case restart
}

/// One setting, declared once: its YAML key, its environment variables and credential file, how its text
/// becomes a value (the same parser for every source), whether a reload applies it, and its documentation
/// line. ``SettingDefinition/all`` drives the YAML reader, the environment, the credentials directory, the
/// reload's restart list and `tenant-backup config settings`; a test holds the README's table and the example
/// file to it.
///
/// The model is pgBackRest's `src/build/config/config.yaml`: one table, every source generated from it.
public struct SettingDefinition: Sendable {
    /// `section.name`, as in the YAML file.
    public let key: String
    /// The variables that set it, the first one set winning (the old system's names included).
    public let environment: [String]
    /// The file of `$CREDENTIALS_DIRECTORY` (systemd's `LoadCredential=`) that sets it.
    public let credential: String?
    public let isList: Bool
    /// What separates a list's items in a variable.
    var separators: Set<Character> = [","]
    public let reload: ReloadEffect
    /// One line for `config settings`.
    public let documentation: String
    /// Parses a source's value into the settings; `nil`: read together with other settings (the S3
    /// credentials, which follow the credentials chain).
    let apply: Apply?
    /// Whether two settings differ in what this one sets.
    let differs: @Sendable (Settings, Settings) -> Bool

    /// A value as one source gives it, with how that source reports a problem at its place (the file's line
    /// and column, the variable's name, the credential's file).
    struct Input {
        var text: String = ""
        var list: [String] = []
        let fail: (String) -> ConfigError
        /// The same source's text for another setting (`s3.kms_key_id` goes with `s3.server_side_encryption`).
        let sibling: (String) -> String?
    }

    typealias Apply = @Sendable (Input, inout Settings) throws(ConfigError) -> Void

    public var section: String { String(key.split(separator: ".")[0]) }
    public var name: String { String(key.split(separator: ".")[1]) }

    /// The definition of `key`.
    public static func named(_ key: String) -> SettingDefinition? { all.first { $0.key == key } }

    /// The settings that apply only at a restart and differ between `started` and `new`.
    static func restartNeeded(started: Settings, new: Settings) -> [String] {
        all.filter { $0.reload == .restart && $0.differs(started, new) }.map(\.key)
    }
}

extension SettingDefinition {
    typealias Parse<Value> = @Sendable (_ text: String, _ settings: Settings, _ fail: (String) -> ConfigError) throws(ConfigError) -> Value

    /// A setting with one value, parsed from its text and stored at `path`.
    static func value<Value: Equatable & Sendable>(
        _ key: String, _ path: any WritableKeyPath<Settings, Value> & Sendable, env: [String] = [], credential: String? = nil, reload: ReloadEffect = .live,
        _ documentation: String, parse: @escaping Parse<Value>
    ) -> SettingDefinition {
        SettingDefinition(
            key: key, environment: env, credential: credential, isList: false, reload: reload, documentation: documentation,
            apply: { (input: Input, settings: inout Settings) throws(ConfigError) in settings[keyPath: path] = try parse(input.text, settings, input.fail) },
            differs: { $0[keyPath: path] != $1[keyPath: path] })
    }

    /// A setting with a list of values: a YAML sequence, or a variable's comma-separated items.
    static func list<Value: Equatable & Sendable>(
        _ key: String, _ path: any WritableKeyPath<Settings, Value> & Sendable, env: [String] = [], separators: Set<Character> = [","], reload: ReloadEffect = .live,
        _ documentation: String, parse: @escaping @Sendable (_ items: [String], _ fail: (String) -> ConfigError) throws(ConfigError) -> Value
    ) -> SettingDefinition {
        SettingDefinition(
            key: key, environment: env, credential: nil, isList: true, separators: separators, reload: reload, documentation: documentation,
            apply: { (input: Input, settings: inout Settings) throws(ConfigError) in settings[keyPath: path] = try parse(input.list, input.fail) },
            differs: { $0[keyPath: path] != $1[keyPath: path] })
    }

    /// A setting whose value changes what another one stores (a time zone inside a schedule).
    static func custom<Value: Equatable & Sendable>(
        _ key: String, affects path: any KeyPath<Settings, Value> & Sendable, env: [String] = [], credential: String? = nil, reload: ReloadEffect = .live,
        _ documentation: String, apply: Apply?
    ) -> SettingDefinition {
        SettingDefinition(
            key: key, environment: env, credential: credential, isList: false, reload: reload, documentation: documentation, apply: apply,
            differs: { $0[keyPath: path] != $1[keyPath: path] })
    }

    // The parsers every source shares.

    static func text(_ text: String, _: Settings, _: (String) -> ConfigError) -> String { text }
    static func optionalText(_ text: String, _: Settings, _: (String) -> ConfigError) -> String? { text }
    static func items(_ items: [String], _: (String) -> ConfigError) -> [String] { items }

    static func absolutePath(_ text: String, _: Settings, _ fail: (String) -> ConfigError) throws(ConfigError) -> String? {
        guard text.hasPrefix("/") else { throw fail("'\(text)' must be an absolute path") }
        return text
    }

    static func flag(_ text: String, _: Settings, _ fail: (String) -> ConfigError) throws(ConfigError) -> Bool {
        guard let flag = SettingsValidation.boolean(text) else { throw fail("'\(text)' is not true or false") }
        return flag
    }

    static func oneOf<Value: CaseIterable & RawRepresentable & Sendable>(_: Value.Type) -> Parse<Value> where Value.RawValue == String {
        { (text: String, _: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> Value in
            guard let value = Value(rawValue: text) else { throw fail(SettingsValidation.notOneOf(text, Value.self)) }
            return value
        }
    }

    static func number(_ range: ClosedRange<Int>) -> Parse<Int> {
        { (text: String, _: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> Int in
            guard let number = Int(text), range.contains(number) else { throw fail("'\(text)' must be a number from \(range.lowerBound) to \(range.upperBound)") }
            return number
        }
    }

    static func count(_ text: String, _: Settings, _ fail: (String) -> ConfigError) throws(ConfigError) -> Int {
        guard let number = Int(text), number >= 0 else { throw fail("'\(text)' must be a whole number, 0 or more") }
        return number
    }

    /// A duration with its unit (`500ms`, `30s`, `10m`, `6h`, `1d`), at most ``SettingsValidation/maximumDuration``;
    /// `positive` refuses zero.
    static func duration(example: String, positive: Bool) -> Parse<Duration> {
        { (text: String, _: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> Duration in
            switch SettingsValidation.parseDuration(text, example: example) {
            case .success(let duration):
                if positive, duration <= .zero { throw fail("must be more than zero, such as \(example)") }
                return duration
            case .failure(let problem):
                throw fail(problem.message)
            }
        }
    }

    static func timeZone(_ text: String, _ fail: (String) -> ConfigError) throws(ConfigError) -> TimeZone {
        guard let zone = TimeZone(identifier: text) else { throw fail("'\(text)' is not a time zone such as Europe/Madrid") }
        return zone
    }

    /// A cron expression in `zone` that runs at least once more; `off`, `none` or `false` when `optional`.
    static func schedule(_ text: String, zone: TimeZone, _ fail: (String) -> ConfigError) throws(ConfigError) -> CronSchedule {
        let schedule: CronSchedule
        do {
            schedule = try CronSchedule(text, timeZone: zone)
        } catch {
            throw fail(error.message)
        }
        if schedule.next(after: Date()) == nil { throw fail(SettingsValidation.neverRunsMessage(text)) }
        return schedule
    }

    static func listen(_ text: String, _: Settings, _ fail: (String) -> ConfigError) throws(ConfigError) -> ListenAddress? {
        try SettingsValidation.listenAddress(text, error: fail)
    }

    static func query(using placeholder: String, for what: String) -> Parse<String?> {
        { (text: String, _: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> String? in
            guard text.contains(placeholder) else { throw fail("the query must use \(placeholder) for \(what)") }
            return text
        }
    }

    static func size(_ text: String, _: Settings, _ fail: (String) -> ConfigError) throws(ConfigError) -> Int64 {
        guard let bytes = SettingsValidation.byteSize(text).map(Int64.init), bytes > 0 else { throw fail("'\(text)' is not a size such as 64GiB or 500MiB") }
        return bytes
    }
}

extension SettingDefinition {
    /// Every setting, in the order the sources apply them (a time zone before the schedule in it, the
    /// compression before its level).
    public static let all: [SettingDefinition] = postgresAndTenants + s3 + backup + retention + daemon + accessAndAPI

    static let postgresAndTenants: [SettingDefinition] = [
        .value(
            "postgres.url", \.postgres.connectionString, env: ["TENANT_BACKUP_DATABASE_URL", "DATABASE_URL"], credential: "database-url",
            "libpq connection string or URL; unset: libpq's PG* variables", parse: optionalText),
        .value("postgres.pg_dump", \.postgres.pgDumpPath, env: ["TENANT_BACKUP_PG_DUMP"], "pg_dump to run; default: the server's major version's binary", parse: optionalText),
        .value("tenants.query", \.tenants.query, env: ["TENANT_BACKUP_TENANT_QUERY"], "SQL returning the tenants' schema names (django-tenants' tenants table)", parse: optionalText),
        .list("tenants.include", \.tenants.include, env: ["TENANT_BACKUP_INCLUDE"], "glob patterns of schemas to back up (all when empty)", parse: items),
        .list("tenants.exclude", \.tenants.exclude, env: ["TENANT_BACKUP_EXCLUDE"], "glob patterns of schemas never backed up", parse: items),
        .list(
            "tenants.shared_schemas", \.tenants.sharedSchemas, env: ["TENANT_BACKUP_SHARED_SCHEMAS"], "schemas dumped once per cycle, not per tenant (public)",
            parse: items),
    ]

    static let s3: [SettingDefinition] = [
        .value(
            "s3.bucket", \.s3.bucket, env: ["TENANT_BACKUP_S3_BUCKET", "AWS_STORAGE_BUCKET_NAME"], "the bucket every backup goes to", parse: optionalText),
        .value(
            "s3.region", \.s3.region, env: ["TENANT_BACKUP_S3_REGION", "AWS_S3_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"], "the bucket's region",
            parse: text),
        .value(
            "s3.endpoint", \.s3.endpoint, env: ["TENANT_BACKUP_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"],
            "scheme://host[:port] of an S3-compatible store (MinIO, Ceph RGW, R2); unset: Amazon S3",
            parse: { (text: String, _: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> URL? in try SettingsValidation.endpoint(text, error: fail) }),
        .value("s3.prefix", \.s3.prefix, env: ["TENANT_BACKUP_S3_PREFIX"], "a folder every key goes under (one per host or platform)", parse: text),
        .value(
            "s3.addressing_style", \.s3.addressingStyle, env: ["TENANT_BACKUP_S3_ADDRESSING_STYLE"],
            "auto (virtual-hosted for Amazon S3, path elsewhere), path or virtual", parse: oneOf(S3AddressingStyle.self)),
        .custom("s3.access_key_id", affects: \.s3.credentials, env: ["AWS_ACCESS_KEY_ID"], credential: "s3-access-key-id", "S3 access key id (with the secret; else the credentials chain)", apply: nil),
        .custom("s3.secret_access_key", affects: \.s3.credentials, env: ["AWS_SECRET_ACCESS_KEY"], credential: "s3-secret-access-key", "S3 secret access key", apply: nil),
        .custom("s3.session_token", affects: \.s3.credentials, env: ["AWS_SESSION_TOKEN"], credential: "s3-session-token", "S3 session token of temporary credentials", apply: nil),
        .custom(
            "s3.server_side_encryption", affects: \.s3.serverSideEncryption, env: ["TENANT_BACKUP_S3_SSE"],
            "AES256 (default), aws:kms (with s3.kms_key_id) or none; confirmed from every answer",
            apply: { (input: Input, settings: inout Settings) throws(ConfigError) in
                settings.s3.serverSideEncryption = try SettingsValidation.serverSideEncryption(input.text, keyId: input.sibling("s3.kms_key_id"), error: input.fail)
            }),
        // Read with s3.server_side_encryption, which it completes.
        .custom(
            "s3.kms_key_id", affects: \.s3.serverSideEncryption, env: ["TENANT_BACKUP_S3_KMS_KEY_ID"], "the KMS key of aws:kms encryption",
            apply: { (_: Input, _: inout Settings) throws(ConfigError) in }),
        .value("s3.storage_class", \.s3.storageClass, env: ["TENANT_BACKUP_S3_STORAGE_CLASS"], "storage class of new objects (STANDARD_IA…)", parse: optionalText),
        .value(
            "s3.ca_bundle", \.s3.caBundle, env: ["TENANT_BACKUP_S3_CA_BUNDLE", "AWS_CA_BUNDLE"], "a PEM file of the CAs to trust for HTTPS (replaces the system's)",
            parse: { (text: String, _: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> String? in try SettingsValidation.caBundle(text, error: fail) }),
        .value("s3.connect_timeout", \.s3.connectTimeout, "how long a connection to the store may take", parse: duration(example: "5s", positive: true)),
        .value("s3.request_timeout", \.s3.requestTimeout, "how long one request may take", parse: duration(example: "2m", positive: true)),
    ]

    static let backup: [SettingDefinition] = [
        .value(
            "backup.format", \.backup.format, "plain (the one format restore verifies, filters and drills)",
            parse: { (text: String, _: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> PgDumpArguments.Format in
                // The custom format could not be restored or drilled through the verified, filtered path: it is gone.
                guard text == "plain" else {
                    throw fail("'\(text)' is not supported: backups are plain SQL dumps (compressed), the one format restore verifies, filters and drills; remove the setting")
                }
                return .plain
            }),
        .value("backup.compression", \.backup.compression, env: ["TENANT_BACKUP_COMPRESSION"], "zstd (default), gzip or none", parse: oneOf(Compression.self)),
        .value(
            "backup.compression_level", \.backup.compressionLevel, "the codec's level (zstd 1-19, gzip 1-9); default: the codec's fast one",
            parse: { (text: String, settings: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> Int? in
                let compression = settings.backup.compression
                guard let level = Int(text), compression.levels.contains(level) else { throw fail(SettingsValidation.compressionLevelMessage(text, compression: compression)) }
                return level
            }),
        .value(
            "backup.part_size", \.backup.partSize, "multipart part size such as 16MiB, or auto (from the schema's size)",
            parse: { (text: String, settings: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> Int? in
                guard text != "auto" else { return settings.backup.partSize }
                guard let bytes = SettingsValidation.byteSize(text) else { throw fail("'\(text)' is not a size such as 16MiB") }
                guard (PartSizePlanner.minimumPartSize...PartSizePlanner.maximumPartSize).contains(bytes) else { throw fail(SettingsValidation.partSizeMessage(text)) }
                return bytes
            }),
        .value("backup.parts_in_flight", \.backup.partsInFlight, "parts uploaded at once per backup", parse: number(1...64)),
        .value("backup.tenant_concurrency", \.backup.tenantConcurrency, env: ["TENANT_BACKUP_TENANT_CONCURRENCY"], "tenants backed up at once", parse: number(1...64)),
        .list(
            "backup.pg_dump_options", \.backup.pgDumpOptions, "extra pg_dump options (checked: none that changes what is dumped)",
            parse: { (items: [String], fail: (String) -> ConfigError) throws(ConfigError) -> [String] in
                if let problem = PgDumpArguments.problem(withOptions: items) { throw fail(problem) }
                return items
            }),
        .value(
            "backup.lock_wait_timeout", \.backup.lockWaitTimeout, "pg_dump's --lock-wait-timeout (1s to 24d)",
            parse: { (text: String, settings: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> Duration? in
                let duration = try duration(example: "5m", positive: true)(text, settings, fail)
                // pg_dump passes it on as a statement_timeout of whole seconds: below a second it would be 0 (no
                // timeout at all), above INT_MAX milliseconds (24 days and a bit) PostgreSQL refuses every dump.
                guard duration >= .seconds(1), duration <= .seconds(24 * 86400) else { throw fail("must be from 1s to 24d (pg_dump's --lock-wait-timeout)") }
                return duration
            }),
        .value("backup.no_output_timeout", \.backup.noOutputTimeout, "a pg_dump silent this long is stopped", parse: duration(example: "10m", positive: true)),
        .value("backup.dump_timeout", \.backup.dumpTimeout, "a pg_dump running this long is stopped", parse: duration(example: "10m", positive: true)),
        .value("backup.consistent_snapshot", \.backup.consistentSnapshot, "dump every schema of a cycle from one exported snapshot", parse: flag),
        .value("backup.stream_parts", \.backup.streamParts, "send each part while it fills (false: buffer each part first)", parse: flag),
    ]

    static let retention: [SettingDefinition] = [
        .value("retention.keep_last", \.retention.policy.keepLast, "the newest N backups are kept", parse: count),
        .value("retention.keep_daily", \.retention.policy.keepDaily, "the newest backup of each of the last N days", parse: count),
        .value("retention.keep_weekly", \.retention.policy.keepWeekly, "the newest backup of each of the last N weeks", parse: count),
        .value("retention.keep_monthly", \.retention.policy.keepMonthly, "the newest backup of each of the last N months", parse: count),
        .value("retention.keep_yearly", \.retention.policy.keepYearly, "the newest backup of each of the last N years", parse: count),
        .value("retention.keep_within", \.retention.policy.keepWithin, "every backup younger than this", parse: duration(example: "7d", positive: false)),
        .value(
            "retention.time_zone", \.retention.policy.timeZone, "the zone days, weeks and months are counted in",
            parse: { (text: String, _: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> TimeZone in try timeZone(text, fail) }),
        .value(
            "retention.max_delete_fraction", \.retention.maxDeleteFraction, "a plan deleting more of a tenant's backups is refused unless forced",
            parse: { (text: String, _: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> Double in
                guard let fraction = Double(text), fraction > 0, fraction <= 1 else { throw fail("'\(text)' must be a fraction above 0 and at most 1") }
                return fraction
            }),
        .value(
            "retention.max_newest_age", \.retention.maxNewestAge, "a manual prune needs a newest backup younger than this",
            parse: duration(example: "48h", positive: false)),
        .value(
            "retention.incomplete_upload_grace", \.retention.incompleteUploadGrace, "incomplete uploads older than this are aborted",
            parse: duration(example: "48h", positive: false)),
    ]

    static let daemon: [SettingDefinition] = [
        .custom(
            "schedule.time_zone", affects: \.daemon.schedule, env: ["TENANT_BACKUP_TIME_ZONE"], "the zone the cron expressions are read in",
            apply: { (input: Input, settings: inout Settings) throws(ConfigError) in
                let zone = try timeZone(input.text, input.fail)
                settings.daemon.schedule = try schedule(settings.daemon.schedule.expression, zone: zone, input.fail)
            }),
        .custom(
            "schedule.cron", affects: \.daemon.schedule, env: ["TENANT_BACKUP_SCHEDULE"], "when the daemon backs up (cron, default 0 2 * * *)",
            apply: { (input: Input, settings: inout Settings) throws(ConfigError) in
                settings.daemon.schedule = try schedule(input.text, zone: settings.daemon.schedule.timeZone, input.fail)
            }),
        .value("schedule.random_delay", \.daemon.randomDelay, "each cycle starts up to this much later", parse: duration(example: "15m", positive: false)),
        .value("schedule.catch_up", \.daemon.catchUp, "at start, back up the tenants a missed cycle left behind", parse: flag),
        .value("daemon.stop_timeout", \.daemon.stopTimeout, "how long a stop waits for running backups", parse: duration(example: "60s", positive: true)),
        .value("daemon.lock_wait", \.daemon.lockWait, "how long a cycle waits for a tenant's lock held by another host", parse: duration(example: "1h", positive: false)),
        .value(
            "daemon.lock_check_interval", \.daemon.lockCheckInterval, "how often a held lock's connection is checked", parse: duration(example: "5s", positive: true)),
        .value(
            "metrics.listen", \.metrics.listen, env: ["TENANT_BACKUP_METRICS_LISTEN"], reload: .restart, "host:port of /metrics (default 127.0.0.1:9187), or off",
            parse: listen),
        .value("metrics.stale_after", \.metrics.staleAfter, "a tenant whose newest backup is older is stale", parse: duration(example: "26h", positive: true)),
        .value("metrics.refresh_interval", \.metrics.refreshInterval, "how often the freshness metrics are read again", parse: duration(example: "5m", positive: true)),
        .value(
            "logging.format", \.logging.format, env: ["TENANT_BACKUP_LOG_FORMAT"], reload: .restart, "auto (journald's protocol when stderr is the journal, else logfmt), journald or logfmt",
            parse: oneOf(LoggingSettings.Format.self)),
        .value(
            "logging.level", \.logging.level, reload: .restart, "trace, debug, info (default), notice, warning, error or critical (--log-level overrides)",
            parse: { (text: String, _: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> Logger.Level in
                guard let level = Logger.Level(rawValue: text) else { throw fail(SettingsValidation.notOneOf(text, Logger.Level.self)) }
                return level
            }),
    ]

    static let accessAndAPI: [SettingDefinition] = [
        .value(
            "audit.retention_days", \.audit.retentionDays, env: ["TENANT_BACKUP_AUDIT_RETENTION_DAYS"], "days an audit record is kept (400)",
            parse: { (text: String, _: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> Int in
                guard let days = SettingsValidation.auditRetentionDays(text) else { throw fail(SettingsValidation.auditRetentionDaysMessage(text)) }
                return days
            }),
        .custom(
            "drill.cron", affects: \.drill.schedule, env: ["TENANT_BACKUP_DRILL_CRON"], "when restore drills run (cron; off by default)",
            apply: { (input: Input, settings: inout Settings) throws(ConfigError) in
                if ["off", "none", "false"].contains(input.text.lowercased()) {
                    settings.drill.schedule = nil
                } else {
                    settings.drill.schedule = try schedule(input.text, zone: settings.daemon.schedule.timeZone, input.fail)
                }
            }),
        .value("drill.tenants_per_run", \.drill.tenantsPerRun, "tenants drilled each time", parse: number(1...1000)),
        .value(
            "signing.key_file", \.signing.keyFile, env: ["TENANT_BACKUP_SIGNING_KEY_FILE"],
            "this host's manifest signing key (created on first use; else the credential signing-key, or the state directory's)", parse: absolutePath),
        .list(
            "signing.public_keys", \.signing.publicKeys, env: ["TENANT_BACKUP_SIGNING_PUBLIC_KEYS"], separators: [",", " "], "other hosts' public keys whose signatures are trusted",
            parse: { (items: [String], fail: (String) -> ConfigError) throws(ConfigError) -> [String] in
                for key in items where TrustedKey(text: key) == nil { throw fail(SigningError.badPublicKey(key).description) }
                return items
            }),
        .value(
            "restore.spool_directory", \.restore.spoolDirectory, env: ["TENANT_BACKUP_SPOOL_DIRECTORY"], "where a restore keeps the verified dump before applying it",
            parse: absolutePath),
        .value("restore.spool_limit", \.restore.spoolLimit, env: ["TENANT_BACKUP_SPOOL_LIMIT"], "the most a restore may spool (64GiB)", parse: size),
        .value(
            "api.listen", \.api.listen, env: ["TENANT_BACKUP_API_LISTEN"], reload: .restart, "host:port of the HTTP API (loopback only; off by default)",
            parse: { (text: String, settings: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> ListenAddress? in
                let address = try listen(text, settings, fail)
                if let address, !SettingsValidation.isLoopback(address.host) { throw fail(SettingsValidation.apiLoopbackMessage(text)) }
                return address
            }),
        .value(
            "api.tokens_file", \.api.tokensFile, env: ["TENANT_BACKUP_API_TOKENS_FILE"], "the API's tokens (tenant-backup token create)",
            parse: { (text: String, settings: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> String in
                try absolutePath(text, settings, fail) ?? text
            }),
        .value(
            "api.token_query", \.api.tokenQuery, env: ["TENANT_BACKUP_API_TOKEN_QUERY"], "SQL checking a platform token ($1), returning its clinic",
            parse: query(using: "$1", for: "the presented token")),
        .value(
            "api.failed_authentications_per_minute", \.api.failedAuthenticationsPerMinute, "failed authentications a client may make each minute",
            parse: number(1...1_000_000)),
        .value(
            "api.delete_policy", \.api.deletePolicy, env: ["TENANT_BACKUP_API_DELETE_POLICY"], "floor (default: never the newest, newest verified, a monthly or a yearly backup), any, or none (no deletes)",
            parse: { (text: String, _: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> APISettings.DeletePolicy in
                guard let policy = APISettings.DeletePolicy(rawValue: text) else { throw fail(SettingsValidation.deletePolicyMessage(text)) }
                return policy
            }),
        .value(
            "api.delete_grace", \.api.deleteGrace, env: ["TENANT_BACKUP_API_DELETE_GRACE"], "how long a backup deleted through the API can be undeleted (30d)",
            parse: duration(example: "30d", positive: false)),
        .value(
            "api.tenant_from_host", \.api.tenantFromHost, env: ["TENANT_BACKUP_API_TENANT_FROM_HOST"], "the clinic comes from the request's host name",
            parse: flag),
        .value(
            "api.domain_query", \.api.domainQuery, env: ["TENANT_BACKUP_API_DOMAIN_QUERY"], "SQL mapping a host name ($1) to its clinic's schema",
            parse: { (text: String, settings: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> String in
                try query(using: "$1", for: "the request's host name")(text, settings, fail) ?? text
            }),
        .list(
            "api.trusted_proxies", \.api.trustedProxies, env: ["TENANT_BACKUP_API_TRUSTED_PROXIES"], "proxies whose forwarded host header is believed",
            parse: items),
        .value(
            "api.forwarded_host_header", \.api.forwardedHostHeader, env: ["TENANT_BACKUP_API_FORWARDED_HOST_HEADER"], "the header a trusted proxy names the host in",
            parse: { (text: String, _: Settings, fail: (String) -> ConfigError) throws(ConfigError) -> String in
                guard SettingsValidation.isHeaderName(text) else { throw fail("'\(text)' is not an HTTP header name") }
                return text
            }),
    ]
}
