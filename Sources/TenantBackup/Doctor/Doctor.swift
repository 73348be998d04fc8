import AsyncHTTPClient
import Foundation
import Logging
import NIOCore

/// `tenant-backup doctor`: checks, in order, everything a backup needs, the way an operator would by hand:
/// the configuration, PostgreSQL, `pg_dump`, tenant discovery, the S3 bucket, and a write/read/delete round
/// trip under `<prefix>test/`. A check whose prerequisite failed is skipped, not failed twice.
public struct Doctor: Sendable {
    public static let configurationCheck = "configuration"
    public static let postgresCheck = "PostgreSQL"
    public static let pgDumpCheck = "pg_dump"
    public static let tenantsCheck = "tenants"
    public static let bucketCheck = "S3 bucket"
    public static let roundTripCheck = "S3 write/read/delete"
    public static let leftoversCheck = "leftovers of killed restores"
    public static let signingCheck = "manifest signing key"

    public var loader: SettingsLoader
    public var configFile: String?
    public var httpClient: HTTPClient?
    public var logger: Logger

    public init(loader: SettingsLoader, configFile: String?, httpClient: HTTPClient? = nil, logger: Logger) {
        self.loader = loader
        self.configFile = configFile
        self.httpClient = httpClient
        self.logger = logger
    }

    /// Runs every check; `onCheck` sees each result as soon as it is known (for printing progressively).
    public func run(onCheck: @Sendable (DoctorCheck) -> Void = { _ in }) async -> DoctorReport {
        var report = DoctorReport()
        func record(_ check: DoctorCheck) {
            report.checks.append(check)
            onCheck(check)
        }
        func skip(_ names: [String], because reason: String) {
            for name in names { record(DoctorCheck(name: name, outcome: .skipped, detail: "skipped: \(reason)")) }
        }

        // 1. configuration
        let settings: Settings
        do {
            settings = try loader.load(configFile: configFile)
            let source = loader.configPath(explicit: configFile).map { "loaded from \($0)" } ?? "from the environment (no config file)"
            record(DoctorCheck(name: Self.configurationCheck, outcome: .passed, detail: source))
        } catch {
            record(DoctorCheck(
                name: Self.configurationCheck, outcome: .failed, detail: error.description,
                hint: "fix the setting named above; `tenant-backup --help` lists the environment variables"))
            skip([Self.postgresCheck, Self.pgDumpCheck, Self.tenantsCheck, Self.bucketCheck, Self.roundTripCheck], because: "the configuration is invalid")
            return report
        }

        // 2-4. PostgreSQL, pg_dump, tenants
        await checkDatabase(settings, record: record, skip: skip)

        // 5-6. S3
        await checkStorage(settings, record: record, skip: skip)

        // 7-8. what restores need and leave behind
        record(checkSigningKey(settings))
        record(await checkLeftovers(settings))
        return report
    }

    /// The key manifests are signed with: present and private, or creatable by the first backup.
    func checkSigningKey(_ settings: Settings) -> DoctorCheck {
        let path = settings.signing.resolvedKeyFile(environment: loader.environment)
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            return DoctorCheck(
                name: Self.signingCheck, outcome: .failed, detail: "\(path) is a folder, not a key file",
                hint: "set signing.key_file (TENANT_BACKUP_SIGNING_KEY_FILE) to a file path in it, such as \((path as NSString).appendingPathComponent("signing.key"))")
        }
        if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path), !FileManager.default.fileExists(atPath: path) {
            return DoctorCheck(
                name: Self.signingCheck, outcome: .failed, detail: "\(path) is a symbolic link to \(target), which does not exist: no key is created through a link",
                hint: "set signing.key_file (TENANT_BACKUP_SIGNING_KEY_FILE) to the key's real path, or create the key there with tenant-backup signing-key")
        }
        if FileManager.default.fileExists(atPath: path) {
            do {
                let key = try SigningKey.load(path: path)
                return DoctorCheck(name: Self.signingCheck, outcome: .passed, detail: "\(path): public key \(key.publicKey) (key \(key.publicKey.id))")
            } catch {
                return DoctorCheck(name: Self.signingCheck, outcome: .failed, detail: error.description, hint: "manifests written without it are unsigned and need --trust-unsigned to restore")
            }
        }
        // The first backup creates the key where the nearest existing folder above it allows; where none does,
        // every manifest is unsigned: no backup counts as ours (each check backs every tenant up again), and
        // restores need --trust-unsigned.
        var folder = (path as NSString).deletingLastPathComponent
        while !folder.isEmpty, folder != "/", !FileManager.default.fileExists(atPath: folder) { folder = (folder as NSString).deletingLastPathComponent }
        var isDirectory: ObjCBool = false
        let existing = folder.isEmpty ? "." : folder
        // A file is really made there and removed: permission bits say nothing under root, nor in /proc or
        // a read-only mount.
        guard FileManager.default.fileExists(atPath: existing, isDirectory: &isDirectory), isDirectory.boolValue, Self.canCreateFile(in: existing) else {
            return DoctorCheck(
                name: Self.signingCheck, outcome: .failed,
                detail: "\(path) does not exist and cannot be created (\(existing) is not a folder this user can write)",
                hint: "set signing.key_file (TENANT_BACKUP_SIGNING_KEY_FILE) to a path this user can create: without the key, manifests are unsigned, "
                    + "no backup counts as done (every check backs the tenants up again) and restores need --trust-unsigned")
        }
        let trusted = settings.signing.publicKeys.count
        return DoctorCheck(
            name: Self.signingCheck, outcome: .passed,
            detail: "\(path) does not exist yet: the first backup creates it" + (trusted > 0 ? "; \(trusted) public key(s) trusted (a restore or drill host)" : ""))
    }

    /// Whether this process can create a file in `folder` (one is made and removed at once).
    static func canCreateFile(in folder: String) -> Bool {
        let probe = (folder as NSString).appendingPathComponent(".tenant-backup-doctor-\(getpid())-\(UUID().uuidString.prefix(8))")
        let descriptor = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return false }
        close(descriptor)
        unlink(probe)
        return true
    }

    /// Databases and spools a killed restore or drill left (the next restore or daemon start removes them).
    func checkLeftovers(_ settings: Settings) async -> DoctorCheck {
        let environment = loader.environment
        let server = settings.postgres.serverEnvironment(base: environment)
        var found = ((try? await Blocking.run { try RestoreLeftovers.databases(environment: server) }) ?? []).map(\.description)
        let base = settings.restore.resolvedSpoolDirectory(environment: environment)
        found += RestoreLeftovers.spools(base: base).map { "spool \($0) (may hold patient data)" }
        guard !found.isEmpty else { return DoctorCheck(name: Self.leftoversCheck, outcome: .passed, detail: "none") }
        // Listed, not failed: they do not stop a backup, and the next restore, drill or daemon start removes them.
        return DoctorCheck(
            name: Self.leftoversCheck, outcome: .passed,
            detail: "\(found.count) found, removed by the next restore, drill or daemon start (only once their process is gone): " + found.joined(separator: "; "))
    }

    private func checkDatabase(_ settings: Settings, record: (DoctorCheck) -> Void, skip: ([String], String) -> Void) async {
        let connection: PostgresConnection
        do {
            connection = try PostgresConnection(connectionString: settings.postgres.connectionString, environment: loader.environment)
        } catch {
            record(DoctorCheck(
                name: Self.postgresCheck, outcome: .failed, detail: error.description,
                hint: "check that the server runs and accepts this host; set PGHOST, PGPORT, PGUSER, PGDATABASE (or DATABASE_URL / postgres.url)"))
            skip([Self.pgDumpCheck, Self.tenantsCheck], "PostgreSQL is unreachable")
            return
        }
        let serverMajor = connection.serverMajorVersion
        record(DoctorCheck(name: Self.postgresCheck, outcome: .passed, detail: "connected to \(connection.target), PostgreSQL \(connection.serverVersion)"))

        do {
            let binary = try await PgDumpLocator.locate(configured: settings.postgres.pgDumpPath, serverMajor: serverMajor, environment: loader.environment)
            record(DoctorCheck(
                name: Self.pgDumpCheck, outcome: .passed,
                detail: "\(binary.path) is pg_dump \(binary.version), can dump PostgreSQL \(serverMajor)"))
        } catch {
            record(DoctorCheck(name: Self.pgDumpCheck, outcome: .failed, detail: error.description, hint: "install the PostgreSQL client of the server's version or set postgres.pg_dump"))
        }

        do {
            let found = try TenantDiscovery(selection: settings.tenants).discover(on: connection)
            var detail = "\(found.tenants.count) tenant\(found.tenants.count == 1 ? "" : "s"): " + found.tenants.map(BackupSchema.display).joined(separator: ", ")
            if !found.unknownNames.isEmpty {
                detail += "; the tenants query also names \(found.unknownNames.count) schema(s) that do not exist: "
                    + found.unknownNames.map(BackupSchema.display).joined(separator: ", ")
            }
            if found.tenants.isEmpty {
                record(DoctorCheck(
                    name: Self.tenantsCheck, outcome: .failed, detail: "no tenant schemas found" + (found.unknownNames.isEmpty ? "" : "; " + detail),
                    hint: "check PGDATABASE and tenants.query / tenants.include / tenants.exclude / tenants.shared_schemas"))
            } else {
                record(DoctorCheck(name: Self.tenantsCheck, outcome: .passed, detail: detail))
            }
        } catch {
            record(DoctorCheck(name: Self.tenantsCheck, outcome: .failed, detail: error.description, hint: "check tenants.query"))
        }
    }

    private func checkStorage(_ settings: Settings, record: (DoctorCheck) -> Void, skip: ([String], String) -> Void) async {
        guard let bucket = settings.s3.bucket else {
            record(DoctorCheck(
                name: Self.bucketCheck, outcome: .failed, detail: "no bucket configured",
                hint: "set s3.bucket, TENANT_BACKUP_S3_BUCKET or AWS_STORAGE_BUCKET_NAME"))
            skip([Self.roundTripCheck], "no bucket")
            return
        }
        let chain = CredentialsChain.standard(settings: settings.s3, environment: loader.environment)
        let credentials: S3Credentials
        do throws(CredentialsError) {
            guard let found = try await chain.credentials() else { throw CredentialsError.noneFound(tried: [chain.sourceDescription]) }
            credentials = found
        } catch {
            record(DoctorCheck(
                name: Self.bucketCheck, outcome: .failed, detail: error.description,
                hint: "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or provide s3-access-key-id and s3-secret-access-key with LoadCredential="))
            skip([Self.roundTripCheck], "no S3 credentials")
            return
        }
        let client = S3Client(
            settings: settings.s3, bucket: bucket, credentials: chain, configuration: settings.s3.clientConfiguration,
            httpClient: httpClient, logger: logger)
        let layout = StorageLayout(prefix: settings.s3.prefix)
        let where_ = "\(client.endpoint.scheme)://\(client.endpoint.hostHeader) (\(client.endpoint.usesPathStyle ? "path" : "virtual-hosted") style, region \(settings.s3.region))"
        do {
            _ = try await client.listKeys(prefix: layout.testPrefix, maxKeys: 1)
            record(DoctorCheck(
                name: Self.bucketCheck, outcome: .passed,
                detail: "bucket \(bucket) at \(where_) accepts access key \(credentials.accessKeyId)"))
        } catch {
            record(DoctorCheck(
                name: Self.bucketCheck, outcome: .failed, detail: error.description,
                hint: error.status == nil ? "check s3.endpoint and that this host can reach it" : "check the S3 credentials, s3.bucket, s3.region and s3.endpoint"))
            skip([Self.roundTripCheck], "the bucket is unreachable")
            return
        }

        let key = "\(layout.testPrefix)doctor-\(ProcessInfo.processInfo.hostName)-\(UUID().uuidString.lowercased()).txt"
        var random = SystemRandomNumberGenerator()
        let payload = "tenant-backup doctor probe \(Date())\n" + (0..<64).map { _ in String(random.next(upperBound: UInt8(16)), radix: 16) }.joined()
        let body = ByteBuffer(string: payload)
        do {
            try await client.putObject(key: key, body: body, options: S3WriteOptions(contentType: "text/plain"))
            let read = try await client.getObject(key: key)
            guard read == body else {
                try? await client.deleteObject(key: key)
                record(DoctorCheck(
                    name: Self.roundTripCheck, outcome: .failed,
                    detail: "read back \(read.readableBytes) bytes from \(key) that differ from the \(body.readableBytes) written",
                    hint: "the endpoint corrupts or rewrites objects; do not store backups there"))
                return
            }
            try await client.deleteObject(key: key)
            record(DoctorCheck(
                name: Self.roundTripCheck, outcome: .passed,
                detail: "wrote, read back (\(body.readableBytes) identical bytes) and deleted \(key)"))
        } catch {
            try? await client.deleteObject(key: key)
            record(DoctorCheck(
                name: Self.roundTripCheck, outcome: .failed, detail: error.description,
                hint: error.hint ?? "the credentials need s3:PutObject, s3:GetObject and s3:DeleteObject on \(layout.testPrefix)*"))
        }

        // What the store does with what backups ask of it.
        for finding in await S3StoreProbe(client: client, prefix: layout.testPrefix).run() {
            let outcome: DoctorCheck.Outcome
            switch finding.outcome {
            case .supported: outcome = .passed
            case .notSupported: outcome = .notSupported
            case .failed, .unknown: outcome = .failed
            }
            record(DoctorCheck(name: finding.name, outcome: outcome, detail: finding.detail, hint: finding.hint))
        }
    }

}
