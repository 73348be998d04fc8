import Foundation

/// Every setting tenant-backup runs with, decoded and validated as a whole.
///
/// Built by ``SettingsLoader`` from defaults, then the optional YAML file, then the environment, then the
/// files of `$CREDENTIALS_DIRECTORY`. A value of this type is always complete and valid: nothing reads the
/// environment or the file after loading.
public struct Settings: Sendable, Equatable {
    public var postgres: PostgresSettings
    public var tenants: TenantSelection
    public var s3: S3Settings
    public var backup: BackupSettings
    public var retention: RetentionSettings
    public var daemon: DaemonSettings
    public var metrics: MetricsSettings
    public var logging: LoggingSettings
    public var audit = AuditSettings()
    public var drill = DrillSettings()
    public var api = APISettings()
    public var signing = SigningSettings()
    public var restore = RestoreSettings()

    public init(
        postgres: PostgresSettings = PostgresSettings(),
        tenants: TenantSelection = TenantSelection(),
        s3: S3Settings = S3Settings(),
        backup: BackupSettings = BackupSettings(),
        retention: RetentionSettings = RetentionSettings(),
        daemon: DaemonSettings = DaemonSettings(),
        metrics: MetricsSettings = MetricsSettings(),
        logging: LoggingSettings = LoggingSettings()
    ) {
        self.postgres = postgres
        self.tenants = tenants
        self.s3 = s3
        self.backup = backup
        self.retention = retention
        self.daemon = daemon
        self.metrics = metrics
        self.logging = logging
    }
}

/// The HTTP API the clinic platform calls (off by default).
public struct APISettings: Sendable, Equatable {
    /// `api.listen`: where the API listens (`host:port`, loopback unless stated); `nil`: off.
    public var listen: ListenAddress?
    /// `api.tokens_file`: the API's own tokens (hashes only), 0600.
    public var tokensFile = APISettings.defaultTokensFile
    /// `api.token_query`: SQL ($1 = the presented token) returning the one schema the token opens.
    public var tokenQuery: String?
    /// `api.failed_authentications_per_minute`: from one address, more get 429 (10).
    public var failedAuthenticationsPerMinute = 10
    /// `api.tenant_from_host`: the clinic of a request is the one its host name maps to (``domainQuery``), as
    /// django-tenants decides it; the token must then be valid for that clinic. Off: the token's clinic.
    public var tenantFromHost = false
    /// `api.domain_query`: SQL, `$1` = the request's host name (lower case, no port), returning exactly one row:
    /// the clinic's schema. The default reads django-tenants' domain table.
    public var domainQuery = APISettings.defaultDomainQuery
    /// `api.trusted_proxies`: the addresses whose ``forwardedHostHeader`` is believed (the reverse proxy's).
    /// From any other address the `Host` header decides.
    public var trustedProxies = ["127.0.0.1", "::1"]
    /// `api.forwarded_host_header`: where a trusted proxy puts the host name the client asked for.
    public var forwardedHostHeader = "X-Forwarded-Host"
    /// `api.delete_policy`: what a clinic may delete through the API.
    public var deletePolicy = DeletePolicy.floor
    /// `api.delete_grace`: how long a backup deleted through the API stays in the bucket, hidden from the
    /// clinic, before retention purges it (30 days); an operator can bring it back meanwhile.
    public var deleteGrace: Duration = .seconds(30 * 86400)

    /// What a clinic may delete through the API. Every API delete is soft (hidden at once, purged after
    /// `api.delete_grace`); the policy says which backups it may touch at all.
    public enum DeletePolicy: String, Sendable, Equatable, CaseIterable {
        /// Never a backup retention keeps as the newest, the newest verified, a monthly or a yearly one (409).
        case floor
        /// Any backup (still soft: the operator can bring it back until the grace passes).
        case any
        /// None: the delete endpoint answers 403.
        case none
    }

    public static let defaultTokensFile = "/var/lib/tenant-backup/api-tokens.json"
    public static let defaultDomainQuery =
        "SELECT c.schema_name FROM public.customers_domain d JOIN public.customers_client c ON c.id = d.tenant_id WHERE d.domain = $1"

    public init(listen: ListenAddress? = nil, tokensFile: String = APISettings.defaultTokensFile, tokenQuery: String? = nil) {
        self.listen = listen
        self.tokensFile = tokensFile
        self.tokenQuery = tokenQuery
    }
}

/// How manifests are signed and which signatures are trusted.
public struct SigningSettings: Sendable, Equatable {
    /// `signing.key_file`: the backup host's private Ed25519 key. `nil`: ``defaultKeyFile(environment:)``.
    /// A backup creates it (0600) when it does not exist; restore and drill hosts need only public keys.
    public var keyFile: String?
    /// `signing.public_keys`: further trusted public keys (`ed25519:<base64>`): the backup host's, on restore
    /// and drill hosts, and the old key while rotating.
    public var publicKeys: [String] = []

    public init(keyFile: String? = nil, publicKeys: [String] = []) {
        self.keyFile = keyFile
        self.publicKeys = publicKeys
    }

    /// `$CREDENTIALS_DIRECTORY/signing-key` under systemd's `LoadCredential=`, else
    /// `$STATE_DIRECTORY/signing.key` (systemd's `StateDirectory=`), else the shipped unit's
    /// `/var/lib/tenant-backup/signing.key` when it exists, else `~/.local/state/tenant-backup/signing.key`.
    public static func defaultKeyFile(environment: [String: String]) -> String {
        if let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty,
           FileManager.default.fileExists(atPath: directory + "/signing-key")
        {
            return directory + "/signing-key"
        }
        if let directory = environment["STATE_DIRECTORY"]?.split(separator: ":").first, !directory.isEmpty {
            return "\(directory)/signing.key"
        }
        // The operator's commands on a host where the unit runs sign with the daemon's key (root can read it).
        if FileManager.default.fileExists(atPath: "/var/lib/tenant-backup/signing.key") {
            return "/var/lib/tenant-backup/signing.key"
        }
        let base = environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.local/state")
        return base + "/tenant-backup/signing.key"
    }

    /// The key file these settings name.
    public func resolvedKeyFile(environment: [String: String]) -> String {
        keyFile ?? Self.defaultKeyFile(environment: environment)
    }
}

/// Where a restore keeps the object it verifies before applying it.
public struct RestoreSettings: Sendable, Equatable {
    /// `restore.spool_directory`: the private spool's parent. `nil`: `$CACHE_DIRECTORY`, else `$RUNTIME_DIRECTORY`
    /// (systemd), else `$TMPDIR` or `/tmp`.
    public var spoolDirectory: String?
    /// `restore.spool_limit`: the most bytes a restore may spool (the stored objects of one restore: the
    /// shared dumps and the tenant's); a bigger restore is refused before anything is read.
    public var spoolLimit: Int64 = 64 << 30

    public init(spoolDirectory: String? = nil, spoolLimit: Int64 = 64 << 30) {
        self.spoolDirectory = spoolDirectory
        self.spoolLimit = spoolLimit
    }

    public func resolvedSpoolDirectory(environment: [String: String]) -> String {
        if let spoolDirectory { return spoolDirectory }
        for name in ["CACHE_DIRECTORY", "RUNTIME_DIRECTORY"] {
            if let directory = environment[name]?.split(separator: ":").first, !directory.isEmpty { return String(directory) }
        }
        return environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    }
}

/// How long the audit trail keeps its records.
public struct AuditSettings: Sendable, Equatable {
    /// Records older than this many days are pruned with the tenant's retention (`audit.retention_days`).
    public var retentionDays = 400

    public init(retentionDays: Int = 400) {
        self.retentionDays = retentionDays
    }
}

/// The daemon's restore drills: each tenant's newest backup restored into a throwaway database and checked.
public struct DrillSettings: Sendable, Equatable {
    /// When drills run (`drill.cron`); `nil`: never (the default).
    public var schedule: CronSchedule?
    /// How many tenants each run drills, those drilled longest ago first (`drill.tenants_per_run`).
    public var tenantsPerRun = 1

    public init(schedule: CronSchedule? = nil, tenantsPerRun: Int = 1) {
        self.schedule = schedule
        self.tenantsPerRun = tenantsPerRun
    }
}

/// How each schema is dumped, compressed and uploaded.
public struct BackupSettings: Sendable, Equatable {
    public var format: PgDumpArguments.Format
    public var compression: Compression
    /// The codec's level; `nil` is its default (zstd 1, gzip 6).
    public var compressionLevel: Int?
    /// A fixed part size in bytes; `nil` chooses it from the schema's size (8 MiB at least).
    public var partSize: Int?
    /// Parts uploading at once for one backup.
    public var partsInFlight: Int
    /// Send each part while it fills (aws-chunked, every chunk signed), so S3 confirms it moments after its
    /// last byte and a long dump holds no more memory than a short one. Off for endpoints without aws-chunked
    /// support (a refusal also turns it off for the rest of the upload by itself).
    public var streamParts: Bool
    /// Schemas backed up at once.
    public var tenantConcurrency: Int
    /// Extra pg_dump options, e.g. `--no-owner`.
    public var pgDumpOptions: [String]
    /// pg_dump's `--lock-wait-timeout`, in seconds.
    public var lockWaitTimeout: Duration?
    /// A pg_dump silent this long is stopped (a dump stuck behind a lock).
    public var noOutputTimeout: Duration
    /// A pg_dump running this long is stopped.
    public var dumpTimeout: Duration
    /// Dump the shared schemas and every tenant of a cycle from one exported snapshot, so each tenant
    /// restores on top of its cycle's shared dump (a user created between the two dumps would otherwise
    /// break the tenant's foreign keys). Holds one read-only transaction open for the cycle.
    public var consistentSnapshot: Bool

    public init(
        format: PgDumpArguments.Format = .plain,
        compression: Compression = .zstd,
        compressionLevel: Int? = nil,
        partSize: Int? = nil,
        partsInFlight: Int = 4,
        streamParts: Bool = true,
        tenantConcurrency: Int = 2,
        pgDumpOptions: [String] = [],
        lockWaitTimeout: Duration? = .seconds(300),
        noOutputTimeout: Duration = .seconds(600),
        dumpTimeout: Duration = .seconds(6 * 3600),
        consistentSnapshot: Bool = true
    ) {
        self.format = format
        self.compression = compression
        self.compressionLevel = compressionLevel
        self.partSize = partSize
        self.partsInFlight = partsInFlight
        self.streamParts = streamParts
        self.tenantConcurrency = tenantConcurrency
        self.pgDumpOptions = pgDumpOptions
        self.lockWaitTimeout = lockWaitTimeout
        self.noOutputTimeout = noOutputTimeout
        self.dumpTimeout = dumpTimeout
        self.consistentSnapshot = consistentSnapshot
    }

    /// The pg_dump arguments these settings ask for.
    public var dumpArguments: PgDumpArguments {
        PgDumpArguments(format: format, extraOptions: pgDumpOptions, lockWaitTimeoutSeconds: lockWaitTimeout.map { Int($0.components.seconds) })
    }

    /// What the backups these settings write are: their format, compression and (later) encryption.
    public var backupFormat: BackupFormat { BackupFormat(dump: format, compression: compression) }
}

/// How to reach the database and which `pg_dump` to run.
public struct PostgresSettings: Sendable, Equatable {
    /// A libpq connection string or `postgresql://` URL. `nil` lets libpq read the standard `PG*` variables,
    /// `~/.pgpass` and service files, exactly as `pg_dump` does. May hold a password: never log it, use
    /// ``redactedConnectionString``.
    public var connectionString: String?
    /// The `pg_dump` to run. `nil` resolves the binary of the server's major version
    /// (`/usr/lib/postgresql/<major>/bin/pg_dump`), skipping Debian's slower Perl wrapper.
    public var pgDumpPath: String?

    public init(connectionString: String? = nil, pgDumpPath: String? = nil) {
        self.connectionString = connectionString
        self.pgDumpPath = pgDumpPath
    }

    /// The connection string's parameters as `PG*` variables; none when it is unset (or unparsable: loading
    /// the settings already refused that).
    public var connectionVariables: [String: String] {
        guard let connectionString, !connectionString.isEmpty else { return [:] }
        return (try? DumpConnection.variables(for: connectionString)) ?? [:]
    }

    /// What a child process or an in-process connection to the configured server sees: `base`, with the
    /// connection string's parameters over it (only the variables a child keeps, when there are any).
    public func serverEnvironment(base: [String: String]) -> [String: String] {
        let variables = connectionVariables
        return variables.isEmpty ? base : ChildEnvironment.variables(base, overrides: variables)
    }

    /// The connection string with any password replaced by `***`, safe for logs and errors.
    public var redactedConnectionString: String? {
        connectionString.map(Redaction.connectionString)
    }
}

/// Which schemas are tenants.
public struct TenantSelection: Sendable, Equatable {
    /// SQL returning tenant schema names in its first column (e.g. `SELECT schema_name FROM public.tenants`).
    /// `nil` means every schema that is not a system schema, an extension's schema or a shared schema.
    public var query: String?
    /// Glob patterns (`*`, `?`, `[...]`) a schema name must match to be a tenant; empty means all.
    public var include: [String]
    /// Glob patterns that remove a schema from the tenants even when included.
    public var exclude: [String]
    /// Schemas every clinic shares (django-tenants' `public`): never tenants, backed up once per cycle.
    public var sharedSchemas: [String]

    public init(query: String? = nil, include: [String] = [], exclude: [String] = [], sharedSchemas: [String] = ["public"]) {
        self.query = query
        self.include = include
        self.exclude = exclude
        self.sharedSchemas = sharedSchemas
    }
}

/// Where backups are stored.
public struct S3Settings: Sendable, Equatable {
    /// The bucket; required for any S3 operation.
    public var bucket: String?
    public var region: String
    /// A custom endpoint for S3-compatible stores (MinIO, Ceph, R2) or a local test endpoint; `nil` is AWS.
    public var endpoint: URL?
    /// Prepended to every key (`<prefix>backups/<tenant>/...`); empty or ending in `/`.
    public var prefix: String
    public var addressingStyle: S3AddressingStyle
    /// Credentials given explicitly (config file, environment or `$CREDENTIALS_DIRECTORY`).
    public var credentials: S3Credentials?
    /// Asked of S3 on every write (default SSE-S3, `AES256`); `.none` for stores that reject the header.
    public var serverSideEncryption: ServerSideEncryption
    /// `STANDARD_IA`, `GLACIER_IR`...; `nil` leaves the bucket's default.
    public var storageClass: String?
    /// A PEM file of the certificate authorities an HTTPS endpoint's certificate must chain to, instead of
    /// the system's (a private CA); `nil` trusts the system's roots.
    public var caBundle: String?
    /// How long a connection to the endpoint may take to open (TCP and TLS). A refused connection, a failed
    /// handshake or a failed DNS lookup fails at once, whatever this is.
    public var connectTimeout: Duration = .seconds(10)
    /// How long one request may take, body included.
    public var requestTimeout: Duration = .seconds(120)
    /// Connections to the endpoint open at once, at most: every streamed part holds one while it fills.
    /// `nil` (no setting sets it): sized from the backup settings where the client is built
    /// (``BackupContext/connectionPoolSize(for:)``); only a process that runs many contexts at once (the
    /// test suite) sets it.
    public var maximumConnections: Int?

    public init(
        bucket: String? = nil,
        region: String = "us-east-1",
        endpoint: URL? = nil,
        prefix: String = "",
        addressingStyle: S3AddressingStyle = .automatic,
        credentials: S3Credentials? = nil,
        serverSideEncryption: ServerSideEncryption = .aes256,
        storageClass: String? = nil
    ) {
        self.bucket = bucket
        self.region = region
        self.endpoint = endpoint
        self.prefix = prefix
        self.addressingStyle = addressingStyle
        self.credentials = credentials
        self.serverSideEncryption = serverSideEncryption
        self.storageClass = storageClass
    }

    /// The client configuration these settings ask for.
    public var clientConfiguration: S3ClientConfiguration {
        var configuration = S3ClientConfiguration(
            requestTimeout: .milliseconds(requestTimeout.milliseconds), serverSideEncryption: serverSideEncryption, storageClass: storageClass)
        configuration.onRetry = { operation in BackupMetrics.recordRetry(operation: operation) }
        return configuration
    }
}

/// Path-style (`host/bucket/key`) or virtual-hosted-style (`bucket.host/key`) addressing.
public enum S3AddressingStyle: String, Sendable, Equatable, CaseIterable {
    /// Virtual-hosted for Amazon S3 (path style for dotted bucket names over HTTPS), path style for any
    /// other endpoint (Ceph RGW, MinIO and most S3-compatible stores expect it).
    case automatic = "auto"
    case path
    case virtualHosted = "virtual"
}
