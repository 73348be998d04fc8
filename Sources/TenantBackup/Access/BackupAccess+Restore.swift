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
        /// Restore from a manifest without a trusted signature, or from an object without a manifest (the old
        /// system's): still only after the whole object verified, the dump filter and the transaction guard.
        public var trustUnsigned = false
        /// Let a target on another host or port use the live connection's password, passfile and service
        /// (`PGPASSWORD`, `PGPASSFILE`, `PGSERVICE`); by default it gets none of them.
        public var inheritCredentials = false
        /// Apply the tenant's dump as this role (not a superuser), not as the operator's connection: see
        /// ``ApplyRole``. Shared dumps, applied first, must then be signed; they run as the operator.
        public var applyAs: ApplyRole?
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

    /// Why an `--after-restore` script cannot run inside the restore's transaction, or `nil`: it is read by the
    /// same statement lexer as a dump (``DumpFilter``, policy `afterRestore`), so a meta-command or a `COMMIT`
    /// mid-line is found too: psql meta-commands (`\q` ends the script, `\!` runs a shell), statements that end
    /// or open transactions, roles, server programs and files.
    public static func afterRestoreProblem(_ sql: String) -> String? {
        var filter = DumpFilter(schema: "", policy: .afterRestore)
        do throws(DumpFilter.Refusal) {
            _ = try filter.filter(ByteBuffer(string: sql))
            try filter.end()
        } catch {
            return "\(error.description); only SQL statements may run in the restore's transaction, which commits only once everything verified"
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
        var base = context.environment
        let live = request.inherited.merging(context.settings.postgres.connectionVariables) { first, _ in first }
        if !request.inheritCredentials, Self.namesAnotherServer(variables, than: live, base: base) {
            // The live connection's secrets stay with the live server.
            for name in ["PGPASSWORD", "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE"] where variables[name] == nil { base.removeValue(forKey: name) }
            if variables["PGPASSFILE"] == nil { base["PGPASSFILE"] = "/dev/null" }
        }
        let environment = ChildEnvironment.variables(base, overrides: request.inherited.merging(variables) { $1 })
        guard let database = environment["PGDATABASE"], !database.isEmpty else {
            throw AccessError(tenant: tenant, .restoreRefused("the target names no database (dbname=...)"))
        }
        return (environment, database)
    }

    /// Whether `target` names a host, address or port other than the live connection's.
    static func namesAnotherServer(_ target: [String: String], than live: [String: String], base: [String: String]) -> Bool {
        func value(_ name: String, _ variables: [String: String]) -> String? { variables[name] ?? base[name] }
        for name in ["PGHOST", "PGHOSTADDR"] where target[name] != nil {
            if target[name] != value(name, live) { return true }
        }
        if let port = target["PGPORT"], port != (value("PGPORT", live) ?? "5432") { return true }
        return false
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
        try await refuseMarked(backup, tenant: tenant, action: .restore)
        let manifest = try await manifest(of: backup, tenant: tenant, action: .restore)
        if !backup.key.format.isReadable {
            throw await refused("\(key) is encrypted; restoring encrypted backups is not supported yet")
        }
        if let problem = vouchProblem(backup, manifest: manifest, trustUnsigned: request.trustUnsigned) {
            throw await refused(problem)
        }
        return try await restore(located: backup, manifest: manifest, tenant: tenant, into: request)
    }

    /// A restore of a located backup whose manifest (or its absence) was already vouched for: `adopt`'s proof
    /// passes the manifest it is about to write, built from its own read of the object.
    func restore(located backup: BackupCatalog.ListedBackup, manifest: BackupManifest?, tenant: String, into request: RestoreRequest) async throws(AccessError) -> Restore {
        let key = backup.key.key
        func refused(_ reason: String) async -> AccessError {
            let error = AccessError(tenant: tenant, .restoreRefused(reason))
            await auditBestEffort(.restore, tenant: tenant, key: key, outcome: .refused, detail: reason)
            return error
        }
        let (environment, database) = try restoreTarget(request, tenant: tenant)
        // What killed restores and drills left on this server and in the spool goes first.
        let swept = (try? await Blocking.run { RestoreLeftovers.sweepDatabases(environment: environment) }) ?? []
        for line in swept {
            logger.notice("swept a leftover of a killed restore", metadata: ["tenant": "\(tenant)", "leftover": "\(line)"])
        }
        let created: Bool
        if request.createDatabase {
            try await createDatabase(database, environment: environment, tenant: tenant, key: key)
            created = true
        } else {
            created = false
        }
        var started = false
        do throws(AccessError) {
            let plan = try await planRestore(backup: backup, manifest: manifest, tenant: tenant, environment: environment, database: database, request: request)
            let forbidden = await forbiddenSchemas(tenant: tenant, target: environment)
            var owner: String?
            if let role = request.applyAs {
                owner = try await checkApplyRole(
                    role, plan: plan, request: request, environment: environment, database: database, tenant: tenant, others: forbidden, refused: refused)
            }
            if request.afterRestoreSQL != nil, plan.shared.isEmpty {
                throw await refused(
                    "--after-restore runs only with the shared dumps, in a fresh database; database \(database) already has the shared tables "
                        + "(the live database?), where it would change every clinic's rows: restore without it")
            }
            try await audit(
                .restore, tenant: tenant, key: key, outcome: .started,
                detail: "into database \(database)" + (plan.shared.isEmpty ? "" : " with the shared dumps \(plan.shared.map(\.key).joined(separator: ", "))"))
            started = true
            let spool = try makeSpool(for: plan, tenant: tenant)
            defer { spool.remove() }
            // Every object is read whole and verified before psql starts.
            var spooled: [Spooled] = []
            for part in plan.shared + [plan.tenant] {
                spooled.append(
                    try await spoolAndVerify(
                        part, into: spool, tenant: tenant, forbidden: forbidden, ownerStatements: request.applyAs != nil && part.backup.area == .tenant))
            }
            let sharedSchemas = context.settings.tenants.sharedSchemas
            if let role = request.applyAs, let owner {
                // The shared dumps (signed) as the operator, committed on their own into the database this
                // restore created; then the clinic's, as the role.
                let tenantPart = spooled.removeLast()
                if !spooled.isEmpty {
                    let sharedGuard = RestoreGuard(tenant: tenant, sharedSchemas: sharedSchemas, applied: plan.shared.map(\.backup.schema))
                    try await apply(spooled, guard: sharedGuard, tenant: tenant, environment: environment, database: database, afterRestore: nil)
                }
                try await applyAsRole(tenantPart, role: role, owner: owner, sharedSchemas: sharedSchemas, tenant: tenant, environment: environment, database: database)
            } else {
                let guardCheck = RestoreGuard(tenant: tenant, sharedSchemas: sharedSchemas, applied: plan.shared.map(\.backup.schema))
                try await apply(
                    spooled, guard: guardCheck, tenant: tenant, environment: environment, database: database, afterRestore: request.afterRestoreSQL)
            }
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
            if created, !database.hasPrefix(RestoreLeftovers.drillPrefix) {
                try? await onMaintenanceDatabase(database, environment: environment) { connection, exists in
                    if exists { _ = try connection.query("COMMENT ON DATABASE \(BackupSchema.quoted(database)) IS NULL", purpose: "releasing database \(database)") }
                }
            }
            await auditBestEffort(
                .restore, tenant: tenant, key: key, outcome: mismatches.isEmpty ? .ok : .failed,
                detail: mismatches.isEmpty ? "into database \(database)" : "restored into \(database), but row counts differ: \(mismatches.map(\.table).joined(separator: ", "))")
            return Restore(
                key: key, database: database, createdDatabase: created, sharedApplied: plan.shared.map(\.key), tableRowCounts: counts, mismatches: mismatches)
        } catch {
            // Only a database still without the tenant's schema is dropped: another restore may have finished
            // into the one we created meanwhile.
            var error = error
            if created {
                if await !schemaPresent(tenant, environment: environment) {
                    await dropDatabase(database, environment: environment, tenant: tenant)
                    error = error.adding("; database \(database), which this restore created, was dropped again")
                } else {
                    error = error.adding("; database \(database), which this restore created, was kept: it now holds schema \(BackupSchema.display(tenant)) (another restore into it finished?)")
                }
            }
            if !error.isRefusal || started {
                await auditBestEffort(.restore, tenant: tenant, key: key, outcome: error.isRefusal ? .refused : .failed, detail: error.message)
            }
            throw error
        }
    }

    /// Why `backup` may not be restored or drilled as it is: its manifest names another schema or area, or
    /// has a signature no trusted key verifies; without `trustUnsigned`, also an unsigned manifest or none.
    func vouchProblem(_ backup: BackupCatalog.ListedBackup, manifest: BackupManifest?, trustUnsigned: Bool) -> String? {
        let key = backup.key.key
        guard let manifest else {
            return trustUnsigned ? nil
                : "\(key) has no manifest, so nothing vouches that it is this clinic's backup (the old system's, or one whose manifest write failed): "
                + "adopt it (tenant-backup adopt) or pass --trust-unsigned to restore it after the completeness, statement and schema checks"
        }
        if manifest.schema != backup.key.schema || manifest.area != (backup.key.area == .tenant ? "tenant" : "shared") {
            return "the manifest of \(key) describes schema \(manifest.schema) (\(manifest.area)), not this backup's"
        }
        // The object is read as its name says; the signed manifest must say the same.
        guard let recorded = manifest.backupFormat, recorded == backup.key.format else {
            return "the manifest of \(key) records \(manifest.format) format, \(manifest.compression) compression"
                + (manifest.encryption.map { ", \($0) encryption" } ?? "") + "; its name says \(backup.key.format)"
        }
        if recorded.dump != .plain {
            return "the manifest of \(key) says format \(manifest.format); only plain SQL dumps are restored"
        }
        let verdict = context.manifestTrust().verdict(for: manifest)
        switch verdict {
        case .signed:
            return nil
        case .invalid:
            return "the manifest of \(key): \(verdict.summary); it is not restored, even with --trust-unsigned"
        case .unknownKey(let id):
            return trustUnsigned ? nil
                : "the manifest of \(key) is signed by key \(id), which this host does not trust: add that public key to signing.public_keys "
                + "(tenant-backup signing-key public prints it on the backup host), or pass --trust-unsigned"
        case .unsigned:
            return trustUnsigned ? nil
                : "the manifest of \(key) is unsigned (written before manifests were signed, or by adopt): nothing proves the bucket did not replace it; "
                + "pass --trust-unsigned to restore it after the completeness, statement and schema checks"
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
            // Applied by the operator's connection even with --apply-as: only a signed shared dump.
            if let problem = vouchProblem(listed, manifest: sharedManifest, trustUnsigned: request.trustUnsigned && request.applyAs == nil) {
                throw await refused("the shared dump it needs: \(problem)")
            }
            shared.append(RestorePlan.Part(
                key: sharedKey, backup: parsed, manifest: sharedManifest, size: listed.size,
                recreates: state.sharedEmpty.contains(parsed.schema) ? parsed.schema : nil))
        }
        return RestorePlan(shared: shared, tenant: part(backup, manifest: manifest))
    }

    private func part(_ backup: BackupCatalog.ListedBackup, manifest: BackupManifest?) -> RestorePlan.Part {
        RestorePlan.Part(key: backup.key.key, backup: backup.key, manifest: manifest, size: backup.size, recreates: nil)
    }

    /// The schemas a dump of `tenant` may not name: the other clinics the bucket holds backups of, and (given a
    /// target) every schema of the target that is neither the tenant's, a shared one nor PostgreSQL's own.
    func forbiddenSchemas(tenant: String, target: [String: String]?) async -> Set<String> {
        var names = Set(((try? await catalog(tenant).allBackups(area: .tenant)) ?? []).map(\.key.schema))
        if let target {
            let found = (try? await Blocking.run { () throws -> [String] in
                try PostgresConnection(connectionString: nil, environment: target).schemaNames()
            }) ?? []
            names.formUnion(found.filter { !$0.hasPrefix("pg_") && $0 != "information_schema" })
        }
        names.remove(tenant)
        names.subtract(context.settings.tenants.sharedSchemas)
        return names
    }

    /// The private spool for `plan`'s objects, after checking they fit (``RestoreSettings/spoolLimit``, free space).
    private func makeSpool(for plan: RestorePlan, tenant: String) throws(AccessError) -> RestoreSpool {
        let base = context.settings.restore.resolvedSpoolDirectory(environment: context.environment)
        for path in RestoreSpool.sweep(base: base) {
            logger.notice("removed the spool of a killed restore", metadata: ["tenant": "\(tenant)", "path": "\(path)"])
        }
        let total = (plan.shared + [plan.tenant]).reduce(Int64(0)) { $0 + $1.size }
        let limit = context.settings.restore.spoolLimit
        if total > limit {
            throw AccessError(
                tenant: tenant,
                .restoreRefused("the objects to restore hold \(total) bytes, more than restore.spool_limit (\(limit)); raise it (TENANT_BACKUP_SPOOL_LIMIT) to restore this backup"))
        }
        if let free = RestoreSpool.freeBytes(at: base), free < total + (64 << 20) {
            throw AccessError(
                tenant: tenant,
                .restoreRefused("the spool directory \(base) has \(free) bytes free, the objects to restore need \(total); free space or set restore.spool_directory"))
        }
        do {
            return try RestoreSpool.create(base: base)
        } catch {
            throw AccessError(tenant: tenant, .restoreFailed("\(error)"))
        }
    }

    /// What reading one object through the read path found.
    struct ReadOutcome {
        let bytes: Int64
        let sha256: String
        /// Why the decoded dump is refused (the filter, incompleteness), or `nil`.
        let refusal: String?
        /// pg_dump's `\restrict` lines in the decoded dump, which the apply drops (``DumpCuts``).
        let cuts: [Range<Int64>]
        /// Its `ALTER … OWNER TO` statements, when asked for (a restore by a role that is not a superuser).
        let ownerStatements: [Range<Int64>]
    }

    /// The read path every reader of a backup shares: the stored bytes hashed (and spooled, when `spool` is
    /// given), decoded as the key's format says, and read by the ``DumpFilter`` to its end.
    func readThroughFilter(
        _ key: BackupKey, tenant: String, spool: FileHandle?, forbidden: Set<String>, ownerStatements: Bool = false
    ) async throws -> ReadOutcome {
        var decompressor: StageChain? = try Self.readStages(for: key, tenant: tenant)
        let filter = DumpFilter.Checker(
            schema: key.schema, policy: key.area == .tenant ? .tenant : .shared, forbiddenSchemas: forbidden, ownerStatements: ownerStatements)
        var codecProblem: String?
        // The spool is written in pieces of 4 MiB: one thread hop per piece, not per network read.
        var pending = ByteBuffer()
        func flush() async throws {
            guard let spool, pending.readableBytes > 0 else { return }
            let data = Data(pending.readableBytesView)
            pending.clear()
            try await Blocking.run { try spool.write(contentsOf: data) }
        }
        let (bytes, digest) = try await streamObject(key.key, tenant: tenant) { chunk in
            if spool != nil {
                pending.writeImmutableBuffer(chunk)
                if pending.readableBytes >= 4 << 20 { try await flush() }
            }
            guard codecProblem == nil, filter.refusal == nil else { return }
            do {
                filter.feed(try decompressor?.process(chunk) ?? chunk)
            } catch {
                codecProblem = "it cannot be decoded as \(key.suffix): \(error)"
            }
        }
        try await flush()
        if codecProblem == nil, filter.refusal == nil {
            do {
                if let tail = try decompressor?.finish() { filter.feed(tail) }
                filter.end()
            } catch {
                codecProblem = "it cannot be decoded as \(key.suffix): \(error)"
            }
        }
        return ReadOutcome(
            bytes: bytes, sha256: digest, refusal: codecProblem ?? filter.refusal.map { "\($0)" }, cuts: filter.cuts, ownerStatements: filter.ownerStatements)
    }

    /// Reads one object whole into the spool and verifies it: size and SHA-256 against its manifest (or, for
    /// a manifest-less object restored with `--trust-unsigned`, the listed size), and the dump filter to the
    /// end. Returns the spooled file and where pg_dump's `\restrict` lines are in it; nothing of it has reached
    /// psql.
    private func spoolAndVerify(
        _ part: RestorePlan.Part, into spool: RestoreSpool, tenant: String, forbidden: Set<String>, ownerStatements: Bool
    ) async throws(AccessError) -> Spooled {
        let outcome: ReadOutcome
        let path: String
        do {
            let (file, handle) = try spool.createFile(named: "\(part.backup.area.rawValue)-\(BackupKey.encode(part.backup.schema))\(part.backup.suffix)")
            path = file
            defer { try? handle.close() }
            outcome = try await readThroughFilter(part.backup, tenant: tenant, spool: handle, forbidden: forbidden, ownerStatements: ownerStatements)
        } catch {
            switch error {
            case let error as S3Error: throw AccessError(tenant: tenant, .storage(error))
            case let error as AccessError: throw error
            case is CancellationError: throw AccessError(tenant: tenant, .restoreFailed("stopped while reading \(part.key); nothing was applied"))
            default: throw AccessError(tenant: tenant, .restoreFailed("cannot spool \(part.key): \(error)"))
            }
        }
        if let problem = Self.mismatch(bytes: outcome.bytes, sha256: outcome.sha256, expected: part.manifest, listedSize: part.size) {
            throw AccessError(tenant: tenant, .verificationFailed(key: part.key, problem: problem + "; nothing was applied"))
        }
        if let refusal = outcome.refusal {
            throw AccessError(tenant: tenant, .restoreRefused("\(part.key) is refused before anything was applied: \(refusal)"))
        }
        // The owner statements were recorded only when asked for: a role that is not a superuser applies it.
        return Spooled(part: part, path: path, cuts: outcome.cuts + outcome.ownerStatements)
    }

    /// One object of a restore, read whole into the private spool and verified.
    struct Spooled {
        let part: RestorePlan.Part
        let path: String
        /// What the apply leaves out (``DumpCuts``): pg_dump's `\restrict` lines, and its `OWNER TO` and
        /// `CREATE SCHEMA` statements when a role that is not a superuser applies it.
        let cuts: [Range<Int64>]
    }

    /// Feeds every verified, spooled part into one psql transaction, under psql's own `\restrict` when it has
    /// it, with the transaction guard before `COMMIT`. Any failure kills psql before its input ends; psql's
    /// own failure rolls back by itself.
    func apply(
        _ parts: [Spooled], guard guardCheck: RestoreGuard, tenant: String, environment: [String: String], database: String,
        afterRestore: String?, role: ApplyRole? = nil
    ) async throws(AccessError) {
        let major = (try? await Blocking.run { () throws -> Int in
            try PostgresConnection(connectionString: nil, environment: environment).serverMajorVersion
        }) ?? 15
        guard let executable = PsqlProcess.locate(serverMajor: major, environment: context.environment) else {
            throw AccessError(tenant: tenant, .restoreFailed("psql is not installed (apt-get install postgresql-client-\(major))"))
        }
        let query = guardCheck.fingerprintQuery
        let fingerprint: String
        do {
            fingerprint = try await Blocking.run { () throws -> String in
                let connection = try PostgresConnection(connectionString: nil, applicationName: "tenant-backup restore", environment: environment)
                _ = try connection.query("SELECT pg_catalog.set_config('search_path', '', false)", purpose: "fingerprinting the catalog before the restore")
                guard let value = try connection.query(query, purpose: "fingerprinting the catalog before the restore").rows.first?.first ?? nil else {
                    throw PostgresError.queryFailed(purpose: "fingerprinting the catalog before the restore", sqlState: nil, message: "no value")
                }
                return value
            }
        } catch {
            throw AccessError(tenant: tenant, .database("cannot inspect database \(database) before the restore: \(error)"))
        }
        let restrictKey = PsqlProcess.supportsRestrict(executable: executable) ? Self.randomRestrictKey() : nil
        if restrictKey == nil {
            logger.warning("this psql has no \\restrict; the dump filter alone keeps meta-commands out", metadata: ["tenant": "\(tenant)", "psql": "\(executable)"])
        }
        let psql: PsqlProcess
        do {
            // As the role: its own login (a password from the passfile, never the operator's PGPASSWORD).
            var psqlEnvironment = environment
            if let role {
                psqlEnvironment["PGUSER"] = role.role
                psqlEnvironment["PGPASSWORD"] = nil
            }
            psql = try PsqlProcess(
                executable: executable, environment: psqlEnvironment, user: role?.role, preamble: restrictKey.map { "\\restrict \($0)\n" } ?? "",
                opening: (role?.openingCheck() ?? "") + guardCheck.opening)
        } catch {
            throw AccessError(tenant: tenant, .restoreFailed("cannot start \(executable): \(error)"))
        }
        do throws(AccessError) {
            for part in parts {
                try await feed(part, into: psql, tenant: tenant)
            }
            do {
                if let afterRestore {
                    try await psql.write(ByteBuffer(string: "\n-- --after-restore\nRESET search_path;\n\(afterRestore)\n;\n"))
                }
                try await psql.write(ByteBuffer(string: guardCheck.closing(expectedFingerprint: fingerprint)))
            } catch {
                throw AccessError(tenant: tenant, .restoreFailed("psql stopped reading before the end of the restore"))
            }
        } catch {
            let stderr = await psql.abort()
            if case .restoreFailed(let message) = error.kind, message.hasPrefix("psql stopped reading") {
                throw Self.psqlFailure(stderr, tenant: tenant, key: parts.last?.part.key ?? "")
            }
            throw error
        }
        let (status, stderr) = await psql.commit()
        guard status == 0 else {
            throw Self.psqlFailure(stderr, tenant: tenant, key: parts.last?.part.key ?? "", status: status)
        }
    }

    /// psql's failure, told apart: the transaction guard's refusal, or any other error.
    static func psqlFailure(_ stderr: String, tenant: String, key: String, status: Int32? = nil) -> AccessError {
        if let range = stderr.range(of: RestoreGuard.errorPrefix) {
            let reason = stderr[range.upperBound...].prefix { $0 != "\n" }.trimmingCharacters(in: .whitespaces)
            if reason.contains("was ended inside the dump") {
                // What the dump did after ending our transaction ran on its own: it may be committed.
                return AccessError(
                    tenant: tenant,
                    .restoreFailed(
                        "\(key): the dump ended the restore's transaction itself (COMMIT or ROLLBACK inside it): whatever it ran before and after that "
                            + "may be committed in the target, outside the restore's control; check the target database (and roles) now, and treat this object as hostile"))
            }
            return AccessError(
                tenant: tenant,
                .restoreRefused("\(key): the dump acted outside schema \(BackupSchema.display(tenant)): \(reason); the transaction was rolled back and nothing was restored"))
        }
        return AccessError(
            tenant: tenant,
            .restoreFailed("psql \(status.map { "exited \($0)" } ?? "failed"); the transaction was rolled back and nothing was restored: \(stderr)"))
    }

    static func randomRestrictKey() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return String((0..<32).map { _ in alphabet.randomElement()! })
    }

    /// One verified, spooled object: decoded, without pg_dump's own `\restrict` lines (ours is in force; the
    /// filter found them while verifying this very file, which is not lexed again), written to psql.
    private func feed(_ spooled: Spooled, into psql: PsqlProcess, tenant: String) async throws(AccessError) {
        let part = spooled.part
        var head = ByteBuffer()
        var headDone = part.recreates == nil
        do {
            var decompressor: StageChain? = try Self.readStages(for: part.backup, tenant: tenant)
            var cuts = DumpCuts(spooled.cuts)
            let reader = try SpoolReader(path: spooled.path)
            defer { try? reader.handle.close() }
            func write(_ plain: ByteBuffer) async throws {
                var filtered = cuts.apply(plain)
                if !headDone {
                    // Hold the start of a dump that may recreate the empty schema until we know whether it does.
                    head.writeBuffer(&filtered)
                    if head.readableBytes < 256 << 10 { return }
                    try await writeHead(&head, recreating: part.recreates, into: psql)
                    headDone = true
                    return
                }
                try await psql.write(filtered)
            }
            while let chunk = try await Blocking.run({ try reader.next() }) {
                try Task.checkCancellation()
                try await write(try decompressor?.process(chunk) ?? chunk)
            }
            if let tail = try decompressor?.finish() { try await write(tail) }
            if !headDone { try await writeHead(&head, recreating: part.recreates, into: psql) }
        } catch {
            switch error {
            case let error as AccessError: throw error
            case let error as StreamTransformError: throw AccessError(tenant: tenant, .codec("\(part.key): \(error)"))
            case is CancellationError: throw AccessError(tenant: tenant, .restoreFailed("stopped; psql was killed before its transaction could commit"))
            default: throw AccessError(tenant: tenant, .restoreFailed("psql stopped reading \(part.key)"))
            }
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
                // Ours until the restore succeeds: a killed run's database is found and swept by the next one.
                _ = try connection.query(
                    "COMMENT ON DATABASE \(BackupSchema.quoted(database)) IS \(RestoreGuard.literal(RestoreLeftovers.comment(tenant: tenant)))",
                    purpose: "marking database \(database) as a restore in progress")
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
