import Crypto
import Foundation
import NIOCore
import NIOFoundationCompat

extension BackupAccess {
    /// Where and how to restore.
    public struct RestoreRequest: Sendable {
        /// The target database: a libpq keyword string or URL; what it leaves out comes from the `PG*`
        /// variables, as for psql.
        public var target: String
        /// Create the target database first (it must not exist); on failure it is dropped again.
        public var createDatabase = false
        /// Into a database without the shared schemas' tables, the shared dumps the manifest names are
        /// applied first; they hold every clinic's shared rows (staff, the tenant table), so this must be asked for.
        public var withSharedData = false
        /// SQL run in the same transaction after the dumps, before commit (to delete other clinics' rows).
        public var afterRestoreSQL: String?
        /// Connection variables under the target's own (a drill: the settings' server, with another dbname).
        var inherited: [String: String] = [:]

        public init(target: String) {
            self.target = target
        }
    }

    /// What a restore did.
    public struct Restore: Sendable, Equatable {
        public let key: String
        public let database: String
        public let createdDatabase: Bool
        /// The shared dumps applied before the tenant's (none into a database that has the shared tables).
        public let sharedApplied: [String]
        /// Rows of every table of the restored schema, counted after commit (`schema.table` as pg_dump names it).
        public let tableRowCounts: [String: Int64]
        /// Tables whose restored rows differ from the manifest's count (or that only one side has).
        public let mismatches: [TableCheck]
    }

    /// Why an `--after-restore` script cannot run inside the restore's transaction, or `nil`: psql
    /// meta-commands (`\q` ends the script, `\!` runs a shell) and statements that end or open transactions
    /// would break "all or nothing".
    public static func afterRestoreProblem(_ sql: String) -> String? {
        for (number, line) in sql.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.drop(while: { $0 == " " || $0 == "\t" })
            if trimmed.hasPrefix("\\") {
                return "line \(number + 1) is a psql meta-command (\(trimmed.prefix(12))...); only SQL statements may run in the restore's transaction"
            }
            let word = trimmed.prefix { $0.isLetter }.uppercased()
            if ["COMMIT", "ROLLBACK", "END", "ABORT", "BEGIN", "START", "SAVEPOINT", "RELEASE", "PREPARE"].contains(word) {
                return "line \(number + 1) controls the transaction (\(word)); the restore commits only once everything verified, so leave that to it"
            }
        }
        return nil
    }

    /// The target's connection variables and database name, from its connection string over our `PG*`.
    func restoreTarget(_ request: RestoreRequest, tenant: String) throws(AccessError) -> (environment: [String: String], database: String) {
        let variables: [String: String]
        do {
            variables = try DumpConnection.variables(for: request.target)
        } catch {
            throw AccessError(
                tenant: tenant,
                .restoreRefused("the target database is not a valid connection string: \(Redaction.libpqMessage(error.message, connectionString: request.target))"))
        }
        let environment = ChildEnvironment.variables(context.environment, overrides: request.inherited.merging(variables) { $1 })
        guard let database = environment["PGDATABASE"], !database.isEmpty else {
            throw AccessError(tenant: tenant, .restoreRefused("the target names no database (dbname=...)"))
        }
        return (environment, database)
    }

    /// Restores the backup into `request.target`: streams it, verifies it against its manifest, decompresses
    /// it and feeds psql one transaction (``PsqlProcess``) that is committed only once everything verified, so
    /// the whole backup is applied or nothing, even when this process is killed.
    ///
    /// Refused, with nothing changed, when the tenant's schema already exists in the target (rename or drop
    /// it: we never drop anything for the operator), when the target's server is older than the pg_dump that
    /// made the dump, and when the target lacks the shared tables and `withSharedData` was not given.
    public func restore(tenant: String, _ reference: BackupReference, into request: RestoreRequest) async throws(AccessError) -> Restore {
        if let sql = request.afterRestoreSQL, let problem = Self.afterRestoreProblem(sql) {
            throw AccessError(tenant: tenant, .restoreRefused("--after-restore: \(problem)"))
        }
        let backup = try await locate(reference, tenant: tenant, for: .restore)
        let key = backup.key.key
        func refused(_ reason: String) async -> AccessError {
            let error = AccessError(tenant: tenant, .restoreRefused(reason))
            await auditBestEffort(.restore, tenant: tenant, key: key, outcome: .refused, detail: reason)
            return error
        }
        let manifest = try await manifest(of: backup, tenant: tenant, action: .restore)
        if backup.key.suffix.hasSuffix(".age") {
            throw await refused("\(key) is encrypted; restoring encrypted backups is not supported yet")
        }
        let (environment, database) = try restoreTarget(request, tenant: tenant)
        let created: Bool
        if request.createDatabase {
            try await createDatabase(database, environment: environment, tenant: tenant, key: key)
            created = true
        } else {
            created = false
        }
        do throws(AccessError) {
            let plan = try await planRestore(backup: backup, manifest: manifest, tenant: tenant, environment: environment, database: database, request: request)
            if request.afterRestoreSQL != nil, plan.shared.isEmpty {
                throw await refused(
                    "--after-restore runs only with the shared dumps, in a fresh database; database \(database) already has the shared tables "
                        + "(the live database?), where it would change every clinic's rows: restore without it")
            }
            try await audit(
                .restore, tenant: tenant, key: key,
                detail: "into database \(database)" + (plan.shared.isEmpty ? "" : " with the shared dumps \(plan.shared.map(\.key).joined(separator: ", "))"))
            try await apply(plan, tenant: tenant, environment: environment, afterRestore: request.afterRestoreSQL)
            let present = try? await Blocking.run { () throws -> Bool in
                try PostgresConnection(connectionString: nil, environment: environment).schemaExists(tenant)
            }
            if present == false {
                throw AccessError(
                    tenant: tenant,
                    .restoreFailed("psql finished, but schema \(BackupSchema.display(tenant)) is not in database \(database): the restore did not take; look at the server log"))
            }
            let counts: [String: Int64]
            do {
                counts = try await Blocking.run { () throws -> [String: Int64] in
                    try PostgresConnection(connectionString: nil, environment: environment).rowCounts(inSchema: tenant)
                }
            } catch {
                counts = [:]
                logger.warning("restored, but the rows could not be counted", metadata: ["tenant": "\(tenant)", "error": "\(error)"])
            }
            let mismatches = manifest?.tableRowCounts.map { Self.compare(expected: $0, restored: counts, schema: tenant).filter { !$0.matches } } ?? []
            logger.log(
                level: mismatches.isEmpty ? .notice : .error, mismatches.isEmpty ? "backup restored" : "backup restored, but row counts differ from the manifest",
                metadata: [
                    "tenant": "\(tenant)", "s3_key": "\(key)", "database": "\(database)", "actor": "\(actor)", "tables": "\(counts.count)",
                    "mismatched": "\(mismatches.map(\.table).joined(separator: ","))",
                ])
            return Restore(
                key: key, database: database, createdDatabase: created, sharedApplied: plan.shared.map(\.key), tableRowCounts: counts, mismatches: mismatches)
        } catch {
            // Only a database still without the tenant's schema is dropped: another restore may have finished
            // into the one we created meanwhile.
            if created, await !schemaPresent(tenant, environment: environment) {
                await dropDatabase(database, environment: environment, tenant: tenant)
            }
            if !error.isRefusal {
                await auditBestEffort(.restore, tenant: tenant, key: key, outcome: .failed, detail: error.message)
            }
            throw error
        }
    }

    /// What will be fed to psql, in order: shared dumps (each with its manifest), then the tenant's.
    struct RestorePlan {
        struct Part {
            let key: String
            let backup: BackupKey
            let manifest: BackupManifest?
            let size: Int64
            /// `DROP SCHEMA <name>;` goes first when the dump recreates this (empty) schema.
            let recreates: String?
        }

        let shared: [Part]
        let tenant: Part
    }

    private func planRestore(
        backup: BackupCatalog.ListedBackup, manifest: BackupManifest?, tenant: String, environment: [String: String], database: String, request: RestoreRequest
    ) async throws(AccessError) -> RestorePlan {
        let key = backup.key.key
        func refused(_ reason: String) async -> AccessError {
            await auditBestEffort(.restore, tenant: tenant, key: key, outcome: .refused, detail: reason)
            return AccessError(tenant: tenant, .restoreRefused(reason))
        }
        let sharedKeys = manifest?.sharedBackups ?? []
        let sharedSchemas = sharedKeys.compactMap { BackupKey.parse($0, prefix: prefix)?.schema }
        // The shared schemas the target must have for the tenant's dump alone: those the manifest names, or
        // the configured ones for a backup that names none (the old system's).
        let expectedShared = sharedSchemas.isEmpty ? context.settings.tenants.sharedSchemas : sharedSchemas
        struct TargetState: Sendable {
            let serverMajor: Int
            let tenantExists: Bool
            let sharedWithTables: [String]
            let sharedEmpty: [String]
        }
        let state: TargetState
        do {
            state = try await Blocking.run { () throws -> TargetState in
                let connection = try PostgresConnection(connectionString: nil, applicationName: "tenant-backup restore", environment: environment)
                return TargetState(
                    serverMajor: connection.serverMajorVersion, tenantExists: try connection.schemaExists(tenant),
                    sharedWithTables: try expectedShared.filter { !(try connection.tables(inSchema: $0).isEmpty) },
                    sharedEmpty: try expectedShared.filter { try !connection.schemaExists($0) || connection.schemaIsEmpty($0) })
            }
        } catch {
            throw AccessError(tenant: tenant, .database("cannot inspect the target database \(database): \(error)"))
        }
        if let manifest, let dumpMajor = Int(manifest.pgDumpVersion.split(separator: ".").first ?? ""), state.serverMajor < dumpMajor {
            throw await refused(
                "the target's server is PostgreSQL \(state.serverMajor), older than the pg_dump \(manifest.pgDumpVersion) that made this backup; restore into PostgreSQL \(dumpMajor) or newer")
        }
        if state.tenantExists {
            throw await refused(
                "schema \(BackupSchema.display(tenant)) already exists in database \(database); rename it (ALTER SCHEMA ... RENAME TO ...) or drop it first: nothing was changed")
        }
        // A database that has the shared tables (the live one) takes the tenant's dump alone.
        if state.sharedWithTables.count == expectedShared.count {
            return RestorePlan(shared: [], tenant: part(backup, manifest: manifest))
        }
        if manifest == nil {
            throw await refused(
                "\(key) has no manifest, so the shared dumps it needs are unknown, and database \(database) lacks the shared tables; "
                    + "restore it into a database that has them (the live one)")
        }
        if sharedSchemas.isEmpty {
            throw await refused(
                "\(key) names no shared dump (adopted from the old system, made by backup --no-shared, or when the shared dump failed), and database \(database) "
                    + "lacks the shared tables (\(expectedShared.map(BackupSchema.display).joined(separator: ", "))); restore it into a database that has them (the live one)")
        }
        if !state.sharedWithTables.isEmpty {
            throw await refused(
                "the target has tables in some shared schemas (\(state.sharedWithTables.map(BackupSchema.display).joined(separator: ", "))) but not all; restore into a fresh database or the live one")
        }
        guard request.withSharedData else {
            throw await refused(
                "database \(database) lacks the shared tables, so the shared dumps this backup names come first (\(sharedKeys.joined(separator: ", "))); "
                    + "they hold every clinic's shared rows (staff accounts with e-mails and password hashes, the tenant table): pass --with-shared-data "
                    + "to restore them too, and --after-restore FILE to delete the other clinics' rows in the same transaction")
        }
        let catalog = try catalog(tenant)
        var shared: [RestorePlan.Part] = []
        for sharedKey in sharedKeys {
            guard let parsed = BackupKey.parse(sharedKey, prefix: prefix), parsed.area == .shared else {
                throw await refused("its manifest names \(sharedKey), which is not a shared dump's key")
            }
            let listed: BackupCatalog.ListedBackup?
            do {
                listed = try await catalog.backups(of: parsed.owner).first { $0.key == parsed }
            } catch {
                throw AccessError(tenant: tenant, .storage(error))
            }
            guard let listed else {
                throw await refused("the shared dump \(sharedKey) this backup needs is gone from the bucket; restore into a database that has the shared tables")
            }
            let sharedManifest = try await self.manifest(of: listed, tenant: tenant, action: .restore)
            shared.append(RestorePlan.Part(
                key: sharedKey, backup: parsed, manifest: sharedManifest, size: listed.size,
                recreates: state.sharedEmpty.contains(parsed.schema) ? parsed.schema : nil))
        }
        return RestorePlan(shared: shared, tenant: part(backup, manifest: manifest))
    }

    private func part(_ backup: BackupCatalog.ListedBackup, manifest: BackupManifest?) -> RestorePlan.Part {
        RestorePlan.Part(key: backup.key.key, backup: backup.key, manifest: manifest, size: backup.size, recreates: nil)
    }

    /// Streams every part into one psql transaction. Any failure (S3, a checksum, decompression) kills psql
    /// before its input ends; psql's own failure rolls back by itself.
    private func apply(_ plan: RestorePlan, tenant: String, environment: [String: String], afterRestore: String?) async throws(AccessError) {
        let major = (try? await Blocking.run { () throws -> Int in
            try PostgresConnection(connectionString: nil, environment: environment).serverMajorVersion
        }) ?? 15
        guard let executable = PsqlProcess.locate(serverMajor: major, environment: context.environment) else {
            throw AccessError(tenant: tenant, .restoreFailed("psql is not installed (apt-get install postgresql-client-\(major))"))
        }
        let psql: PsqlProcess
        do {
            psql = try PsqlProcess(executable: executable, environment: environment)
        } catch {
            throw AccessError(tenant: tenant, .restoreFailed("cannot start \(executable): \(error)"))
        }
        do throws(AccessError) {
            for part in plan.shared + [plan.tenant] {
                try await feed(part, into: psql, tenant: tenant)
            }
            if let afterRestore {
                do {
                    try await psql.write(ByteBuffer(string: "\n-- --after-restore\nRESET search_path;\n\(afterRestore)\n;\n"))
                } catch {
                    throw AccessError(tenant: tenant, .restoreFailed("psql stopped reading before the --after-restore SQL"))
                }
            }
        } catch {
            let stderr = await psql.abort()
            if case .restoreFailed(let message) = error.kind, message.hasPrefix("psql stopped reading") {
                // psql stopped reading: its own error says why.
                throw AccessError(tenant: tenant, .restoreFailed("psql failed; the transaction was rolled back and nothing was restored: \(stderr)"))
            }
            throw error
        }
        let (status, stderr) = await psql.commit()
        guard status == 0 else {
            throw AccessError(tenant: tenant, .restoreFailed("psql exited \(status); the transaction was rolled back and nothing was restored: \(stderr)"))
        }
    }

    /// One object: read, hashed, decompressed, written to psql; verified against its manifest at the end.
    private func feed(_ part: RestorePlan.Part, into psql: PsqlProcess, tenant: String) async throws(AccessError) {
        var decompressor = try Self.decompressor(for: part.backup, tenant: tenant)
        var head = ByteBuffer()
        var headDone = part.recreates == nil
        let stored: Int64
        let digest: String
        do {
            (stored, digest) = try await streamObject(part.key, tenant: tenant) { chunk in
                var plain = try decompressor?.process(chunk) ?? chunk
                if !headDone {
                    // Hold the start of a dump that may recreate the empty schema until we know whether it does.
                    head.writeBuffer(&plain)
                    if head.readableBytes < 256 << 10 { return }
                    try await writeHead(&head, recreating: part.recreates, into: psql)
                    headDone = true
                    return
                }
                try await psql.write(plain)
            }
            if var tail = try decompressor?.finish() {
                if !headDone { head.writeBuffer(&tail) } else { try await psql.write(tail) }
            }
            if !headDone { try await writeHead(&head, recreating: part.recreates, into: psql) }
        } catch {
            switch error {
            case let error as S3Error: throw AccessError(tenant: tenant, .storage(error))
            case let error as StreamTransformError: throw AccessError(tenant: tenant, .codec("\(part.key): \(error)"))
            case is CancellationError: throw AccessError(tenant: tenant, .restoreFailed("stopped; psql was killed before its transaction could commit"))
            default: throw AccessError(tenant: tenant, .restoreFailed("psql stopped reading \(part.key)"))
            }
        }
        if let problem = Self.mismatch(bytes: stored, sha256: digest, expected: part.manifest) {
            throw AccessError(tenant: tenant, .verificationFailed(key: part.key, problem: problem))
        }
    }

    /// pg_dump writes `CREATE SCHEMA public;` for a `public` that was once dropped and recreated; a fresh
    /// database already has an empty `public`, and the statement would fail. When the head of the dump holds
    /// that statement, the empty schema is dropped first (without CASCADE: it fails if anything is in it).
    private func writeHead(_ head: inout ByteBuffer, recreating schema: String?, into psql: PsqlProcess) async throws {
        if let schema {
            let statement = "CREATE SCHEMA \(BackupSchema.display(schema));"
            let text = String(buffer: head)
            if text.split(separator: "\n", omittingEmptySubsequences: false).contains(where: { $0 == statement }) {
                try await psql.write(ByteBuffer(string: "DROP SCHEMA \(BackupSchema.quoted(schema));\n"))
            }
        }
        try await psql.write(head)
        head.clear()
    }

    /// Runs `body` on a connection to the target server's `postgres` database (creating and dropping databases
    /// happens from there), told whether `database` exists.
    private func onMaintenanceDatabase(
        _ database: String, environment: [String: String], _ body: @escaping @Sendable (PostgresConnection, _ exists: Bool) throws -> Void
    ) async throws {
        var variables = environment
        variables["PGDATABASE"] = "postgres"
        let maintenance = variables
        _ = try await Blocking.run { () throws -> Bool in
            let connection = try PostgresConnection(connectionString: nil, applicationName: "tenant-backup restore", environment: maintenance)
            let exists = try !connection.query(
                "SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", [database], purpose: "looking for database \(database)").rows.isEmpty
            try body(connection, exists)
            return true
        }
    }

    private func createDatabase(_ database: String, environment: [String: String], tenant: String, key: String) async throws(AccessError) {
        do {
            try await onMaintenanceDatabase(database, environment: environment) { connection, exists in
                if exists {
                    throw AccessError(tenant: tenant, .restoreRefused("database \(database) already exists; restore into it without --create-database, or name a new one"))
                }
                _ = try connection.query("CREATE DATABASE \(BackupSchema.quoted(database))", purpose: "creating database \(database)")
            }
        } catch let error as AccessError {
            await auditBestEffort(.restore, tenant: tenant, key: key, outcome: .refused, detail: error.message)
            throw error
        } catch {
            throw AccessError(tenant: tenant, .database("cannot create database \(database): \(error)"))
        }
    }

    /// Whether the target holds the tenant's schema (after a restore, or another's); `false` when it cannot say.
    func schemaPresent(_ tenant: String, environment: [String: String]) async -> Bool {
        (try? await Blocking.run { () throws -> Bool in
            try PostgresConnection(connectionString: nil, environment: environment).schemaExists(tenant)
        }) ?? false
    }

    /// Every table of `schema`, the manifest's row count beside the restored one (tables of other schemas in
    /// the manifest are left out; a table only one side has does not match).
    static func compare(expected manifest: [String: Int64], restored: [String: Int64], schema: String) -> [TableCheck] {
        var expected: [QualifiedName: Int64] = [:]
        for (name, rows) in manifest {
            if let parsed = QualifiedName.parse(name), parsed.schema == schema { expected[parsed] = rows }
        }
        var actual: [QualifiedName: Int64] = [:]
        for (name, rows) in restored { if let parsed = QualifiedName.parse(name) { actual[parsed] = rows } }
        return Set(expected.keys).union(actual.keys).sorted { $0.description < $1.description }.map {
            TableCheck(table: $0.description, expected: expected[$0], restored: actual[$0])
        }
    }

    /// Drops a database this restore created (empty: its transaction was rolled back).
    func dropDatabase(_ database: String, environment: [String: String], tenant: String) async {
        do {
            try await onMaintenanceDatabase(database, environment: environment) { connection, exists in
                guard exists else { return }
                _ = try connection.query("DROP DATABASE \(BackupSchema.quoted(database)) WITH (FORCE)", purpose: "dropping database \(database)")
            }
        } catch {
            logger.error("could not drop the database the restore created", metadata: ["tenant": "\(tenant)", "database": "\(database)", "error": "\(error)"])
        }
    }
}
