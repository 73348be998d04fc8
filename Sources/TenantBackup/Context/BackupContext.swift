import AsyncHTTPClient
import Foundation
import Logging

/// Everything one generation of settings works with, built once: the settings and environment, the logger,
/// the S3 client, the bucket's catalog and the way to ask the database what it holds. The daemon builds one
/// per reload; the commands build one at start; backups, retention, freshness and catch-up all take it, so
/// nothing builds a throwaway cycle to reach a client.
public struct BackupContext: Sendable {
    public let settings: Settings
    public let environment: [String: String]
    public let logger: Logger
    public let httpClient: HTTPClient?
    /// The S3 client, or why there is none (no bucket configured): checked in one place.
    private let s3: Result<S3Client, ContextError>
    /// The tenant manifests retention has read, for every cycle and prune of this context (a reload, which may
    /// change the trusted keys, starts afresh).
    public let manifestCache = ManifestCache()

    public init(settings: Settings, environment: [String: String], logger: Logger, httpClient: HTTPClient? = nil) {
        self.settings = settings
        self.environment = environment
        self.logger = logger
        self.httpClient = httpClient
        if let bucket = settings.s3.bucket {
            s3 = .success(S3Client(
                settings: settings.s3, bucket: bucket, credentials: CredentialsChain.standard(settings: settings.s3, environment: environment),
                configuration: settings.s3.clientConfiguration, httpClient: httpClient,
                maximumConnections: Self.connectionPoolSize(for: settings.backup), logger: logger))
        } else {
            s3 = .failure(.noBucket)
        }
    }

    /// Connections the backups may hold at once: every part in flight and the one filling, for each tenant
    /// backed up at once, and listings, manifests and probes beside them.
    public static func connectionPoolSize(for backup: BackupSettings) -> Int {
        max(64, backup.tenantConcurrency * (backup.partsInFlight + 1) + 16)
    }

    /// The S3 client these settings describe.
    public func client() throws(ContextError) -> S3Client {
        try s3.get()
    }

    /// The audit trail in this bucket, keeping records for `audit.retention_days`.
    public func auditTrail(logger: Logger? = nil) throws(ContextError) -> AuditTrail {
        AuditTrail(client: try client(), prefix: settings.s3.prefix, logger: logger ?? self.logger, retentionDays: settings.audit.retentionDays)
    }

    /// The key this host signs manifests with, created (0600) on first use where the settings put it: a
    /// default install signs from its first backup. Says so in the log when it creates one.
    public func signingKey() throws(SigningError) -> SigningKey {
        let path = settings.signing.resolvedKeyFile(environment: environment)
        let (key, created) = try SigningKey.loadOrCreate(path: path)
        if created {
            logger.notice(
                "created the manifest signing key; copy its public key to restore and drill hosts (signing.public_keys)",
                metadata: ["path": "\(path)", "public_key": "\(key.publicKey)"])
        }
        return key
    }

    /// The keys whose signatures this host trusts: its own key's public half (when the key file exists) and
    /// `signing.public_keys`.
    public func manifestTrust() -> ManifestTrust {
        var keys = settings.signing.publicKeys.compactMap(TrustedKey.init(text:))
        let path = settings.signing.resolvedKeyFile(environment: environment)
        if let own = try? SigningKey.load(path: path) { keys.insert(own.publicKey, at: 0) }
        return ManifestTrust(keys: keys)
    }

    /// The bucket's view of the backups.
    public func catalog(logger: Logger? = nil) throws(ContextError) -> BackupCatalog {
        var catalog = BackupCatalog(client: try client(), prefix: settings.s3.prefix, logger: logger ?? self.logger)
        catalog.manifests = manifestCache
        return catalog
    }

    /// What the database holds: its server version, the tenants and the shared schemas that exist.
    public struct DatabaseInventory: Sendable {
        public let serverMajor: Int
        public let serverVersion: String
        public let discovered: DiscoveredTenants
        public let sharedSchemas: [String]
    }

    /// Connects once and discovers the tenants (the cycle, catch-up, freshness and prune use it).
    public func inspectDatabase() async throws(ContextError) -> DatabaseInventory {
        let settings = self.settings
        let environment = self.environment
        do {
            return try await Blocking.run {
                let connection = try PostgresConnection(connectionString: settings.postgres.connectionString, environment: environment)
                let found = try TenantDiscovery(selection: settings.tenants).discover(on: connection)
                BackupMetrics.recordTenantsSelected(found.tenants.count)
                let names = try connection.schemaNames()
                return DatabaseInventory(
                    serverMajor: connection.serverMajorVersion, serverVersion: connection.serverVersion, discovered: found,
                    sharedSchemas: settings.tenants.sharedSchemas.filter(names.contains))
            }
        } catch let error as DiscoveryError {
            if case .database(let error) = error { throw .database(error) }
            throw .discovery(error)
        } catch let error as PostgresError {
            throw .database(error)
        } catch {
            throw .database(.queryFailed(purpose: "inspecting the database", sqlState: nil, message: "\(error)"))
        }
    }

    /// The newest backup of every tenant that a signed manifest vouches for, from one listing of the bucket:
    /// what freshness and catch-up count (an object a bucket writer put there never makes a clinic fresh).
    public func newestVouchedBackupOfEveryTenant() async throws(ContextError) -> [String: BackupKey] {
        let catalog = try catalog()
        do throws(S3Error) {
            return try await catalog.newestVouchedOfEveryTenant(trust: manifestTrust())
        } catch {
            throw .bucket(error)
        }
    }

    /// The newest backup of every tenant, from one listing of the bucket.
    public func newestBackupOfEveryTenant() async throws(ContextError) -> [String: BackupKey] {
        let catalog = try catalog()
        do throws(S3Error) {
            return try await catalog.newestOfEveryTenant()
        } catch {
            throw .bucket(error)
        }
    }
}

/// What a context could not set up or ask: no bucket configured, or the database or the bucket did not answer.
public enum ContextError: Error, Equatable, CustomStringConvertible {
    /// No `s3.bucket` (or its environment variables).
    case noBucket
    /// The database could not be asked.
    case database(PostgresError)
    /// The tenants query or a pattern failed.
    case discovery(DiscoveryError)
    /// The bucket could not be listed.
    case bucket(S3Error)
    /// The daemon's first checks (database, bucket) failed and it was told not to wait: their summary.
    case notReady(String)

    public var description: String {
        switch self {
        case .noBucket: return "no bucket configured: set s3.bucket, TENANT_BACKUP_S3_BUCKET or AWS_STORAGE_BUCKET_NAME"
        case .database(let error): return "\(error)"
        case .discovery(let error): return "\(error)"
        case .bucket(let error): return "cannot list the bucket: \(error)"
        case .notReady(let message): return message
        }
    }
}
