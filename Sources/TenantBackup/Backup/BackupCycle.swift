import AsyncHTTPClient
import Foundation
import Logging

/// The result of one schema in a cycle.
public struct SchemaResult: Sendable, Equatable {
    public let schema: String
    public let area: BackupKey.Area
    public let result: Result<BackupOutcome, BackupError>
    /// What retention did after the backup, when the cycle applies it (tenants only).
    public var retention: Result<RetentionOutcome, S3Error>?

    public var succeeded: Bool { if case .success = result { true } else { false } }
}

/// Everything one cycle did: shared schemas first, then every tenant.
public struct BackupReport: Sendable, Equatable {
    public let startedAt: Date
    public var shared: [SchemaResult] = []
    public var tenants: [SchemaResult] = []

    public var allSucceeded: Bool { (shared + tenants).allSatisfy(\.succeeded) }
    public var failures: [BackupError] {
        (shared + tenants).compactMap { if case .failure(let error) = $0.result { error } else { nil } }
    }
}

/// A cycle that could not start at all (no bucket, no database, no pg_dump, unknown tenant).
public struct BackupCycleError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// One backup cycle: discover the tenants, dump the shared schemas once, then every tenant with bounded
/// concurrency. One schema's failure never stops the others; each gets its own result.
public struct BackupCycle: Sendable {
    public let settings: Settings
    public let environment: [String: String]
    public let logger: Logger
    public let httpClient: HTTPClient
    public var progress: (@Sendable (BackupProgress) -> Void)?
    /// `backup --output`: a file (one schema) or a directory (one file per schema).
    public var localCopy: String?
    /// Apply the retention policy to each tenant right after its backup — only when that backup succeeded
    /// (the daemon's cycle does; `tenant-backup backup` does not).
    public var applyRetention = false

    public init(settings: Settings, environment: [String: String], logger: Logger, httpClient: HTTPClient = .shared) {
        self.settings = settings
        self.environment = environment
        self.logger = logger
        self.httpClient = httpClient
    }

    /// Runs the cycle for `requested` tenants, or every discovered tenant when `nil`.
    public func run(tenants requested: [String]? = nil, includeShared: Bool = true) async throws(BackupCycleError) -> BackupReport {
        guard let bucket = settings.s3.bucket else {
            throw BackupCycleError(message: "no bucket configured: set s3.bucket, TENANT_BACKUP_S3_BUCKET or AWS_STORAGE_BUCKET_NAME")
        }
        let client = S3Client(
            settings: settings.s3, bucket: bucket, credentials: CredentialsChain.standard(settings: settings.s3, environment: environment),
            configuration: settings.s3.clientConfiguration, httpClient: httpClient, logger: logger)
        let serverMajor: Int
        let serverVersion: String
        let discovered: DiscoveredTenants
        let existingShared: [String]
        do {
            let settings = self.settings
            let environment = self.environment
            (serverMajor, serverVersion, discovered, existingShared) = try await Blocking.run {
                let connection = try PostgresConnection(connectionString: settings.postgres.connectionString, environment: environment)
                let major = connection.serverMajorVersion
                let found = try TenantDiscovery(selection: settings.tenants).discover(on: connection)
                let names = try connection.query("SELECT nspname FROM pg_catalog.pg_namespace", purpose: "listing schemas").rows.compactMap { $0.first ?? nil }
                return (major, "\(major).\(connection.serverVersionNumber % 10000)", found, settings.tenants.sharedSchemas.filter(names.contains))
            }
        } catch {
            throw BackupCycleError(message: "\(error)")
        }
        for name in discovered.unknownNames {
            logger.warning("the tenants query names a schema that does not exist; not backed up", metadata: ["tenant": "\(name)"])
        }
        var tenants = discovered.tenants
        if let requested {
            let unknown = requested.filter { !discovered.tenants.contains($0) }
            guard unknown.isEmpty else {
                throw BackupCycleError(message: "no such tenant: \(unknown.map(Doctor.display).joined(separator: ", ")) (discovered: \(discovered.tenants.map(Doctor.display).joined(separator: ", ")))")
            }
            tenants = requested
        }
        let pgDump: PgDumpBinary
        do {
            pgDump = try await PgDumpLocator.locate(configured: settings.postgres.pgDumpPath, serverMajor: serverMajor, environment: environment)
        } catch {
            throw BackupCycleError(message: error.description)
        }
        if let localCopy, (includeShared ? existingShared.count : 0) + tenants.count > 1, !Self.isDirectory(localCopy) {
            throw BackupCycleError(message: "--output \(localCopy) must be an existing directory when more than one schema is backed up")
        }

        var report = BackupReport(startedAt: Date())
        var sharedKeys: [String] = []
        if includeShared {
            for schema in existingShared {
                let result = await backUp(schema, area: .shared, client: client, pgDump: pgDump, serverVersion: serverVersion, sharedBackups: [])
                if case .success(let outcome) = result { sharedKeys.append(outcome.key) }
                report.shared.append(SchemaResult(schema: schema, area: .shared, result: result))
            }
        }
        let limit = max(1, settings.backup.tenantConcurrency)
        let sharedBackups = sharedKeys
        report.tenants = await withTaskGroup(of: (Int, SchemaResult).self) { group in
            var results: [(Int, SchemaResult)] = []
            var next = 0
            func start() {
                let index = next
                let schema = tenants[index]
                next += 1
                group.addTask {
                    // One host at a time per tenant: backup and retention run under the tenant's advisory lock.
                    let lock: TenantLock?
                    do {
                        lock = try await TenantLock.acquire(tenant: schema, connectionString: settings.postgres.connectionString, environment: environment)
                    } catch {
                        let failure = BackupError(schema: schema, area: .tenant, message: "cannot take the tenant's lock: \(error)")
                        return (index, SchemaResult(schema: schema, area: .tenant, result: .failure(failure)))
                    }
                    guard let lock else {
                        let failure = BackupError(
                            schema: schema, area: .tenant,
                            message: "another tenant-backup (on this or another host) is working on this tenant; skipped")
                        return (index, SchemaResult(schema: schema, area: .tenant, result: .failure(failure)))
                    }
                    let result = await backUp(schema, area: .tenant, client: client, pgDump: pgDump, serverVersion: serverVersion, sharedBackups: sharedBackups)
                    var schemaResult = SchemaResult(schema: schema, area: .tenant, result: result)
                    if applyRetention {
                        let runner = RetentionRunner(settings: settings.retention, client: client, prefix: settings.s3.prefix, logger: logger)
                        let succeeded = if case .success = result { true } else { false }
                        do throws(S3Error) {
                            schemaResult.retention = .success(try await runner.run(tenant: schema, trigger: .afterBackup(succeeded: succeeded)))
                        } catch {
                            schemaResult.retention = .failure(error)
                        }
                    }
                    await lock.release()
                    return (index, schemaResult)
                }
            }
            while next < min(limit, tenants.count) { start() }
            while let finished = await group.next() {
                results.append(finished)
                if next < tenants.count { start() }
            }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
        let failed = report.failures.count
        logger.log(
            level: failed == 0 ? .info : .error, "backup cycle finished",
            metadata: ["tenants": "\(report.tenants.count)", "failed": "\(failed)"])
        return report
    }

    private func backUp(
        _ schema: String, area: BackupKey.Area, client: S3Client, pgDump: PgDumpBinary, serverVersion: String, sharedBackups: [String]
    ) async -> Result<BackupOutcome, BackupError> {
        var job = SchemaBackup(
            schema: schema, area: area, settings: settings, pgDump: pgDump, serverVersion: serverVersion, client: client,
            environment: environment, sharedBackups: sharedBackups, logger: logger)
        job.progress = progress
        let startedAt = Date()
        if let localCopy {
            job.localCopyPath = Self.isDirectory(localCopy)
                ? (localCopy as NSString).appendingPathComponent(
                    BackupKey(prefix: "", area: area, schema: schema, timestamp: startedAt, suffix: settings.backup.fileSuffix).fileName)
                : localCopy
        }
        do {
            return .success(try await job.run(startedAt: startedAt))
        } catch {
            return .failure(error)
        }
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}
