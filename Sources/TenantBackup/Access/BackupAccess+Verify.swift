import Foundation
import NIOCore

extension BackupAccess {
    /// Which backups `verify` checks.
    public enum VerifySelection: Sendable, Equatable {
        case one(BackupReference)
        case all
    }

    /// One table of a restore drill: the rows the manifest counted in the dump, and the rows restored.
    public struct TableCheck: Sendable, Equatable {
        public let table: String
        public let expected: Int64?
        public let restored: Int64?
        public var matches: Bool { expected == restored }
    }

    /// What `verify` found about one backup.
    public struct Verification: Sendable, Equatable {
        public let key: String
        /// `nil` when the object is present and matches its manifest (size and SHA-256).
        public let problem: String?
        /// Whether a manifest vouched for it (a backup without one can only be read, not verified).
        public let hasManifest: Bool
        /// What the manifest's signature says: `signed by key …`, `unsigned`, `no manifest`.
        public var signature: String = "no manifest"
        /// With a restore drill: every table, compared.
        public let tables: [TableCheck]?
        /// The throwaway database the drill used (dropped again).
        public let drillDatabase: String?

        public var passed: Bool { problem == nil && (tables?.allSatisfy(\.matches) ?? true) }
    }

    /// Checks presence, size and SHA-256 against the manifest of one backup (or all of them); with
    /// `restore`, also a restore drill: restored into a throwaway database (created, and always dropped, even
    /// when the drill fails or is stopped), every table's row count compared with the manifest's.
    ///
    /// A backup passes only when a manifest with a trusted signature vouches for it (with `trustUnsigned`, an
    /// unsigned manifest or none, then the listed size) and its dump reads complete through the dump filter:
    /// what could not be verified is not reported as verified.
    /// With `applyAs`, a drill applies the tenant's dump as that role (see ``ApplyRole``; the database is
    /// dropped afterwards, so nothing is handed over).
    public func verify(
        tenant: String, _ selection: VerifySelection, restore: Bool = false, trustUnsigned: Bool = false, applyAs: String? = nil
    ) async throws(AccessError) -> [Verification] {
        let backups: [BackupCatalog.ListedBackup]
        switch selection {
        case .one(let reference):
            backups = [try await locate(reference, tenant: tenant, for: .verify)]
        case .all:
            let catalog = try catalog(tenant)
            do {
                backups = try await catalog.backups(of: .tenant(tenant)).sorted { $0.key.timestamp > $1.key.timestamp }
            } catch {
                throw AccessError(tenant: tenant, .storage(error))
            }
            if backups.isEmpty { throw AccessError(tenant: tenant, try await emptyTenant(tenant, missing: nil)) }
        }
        var results: [Verification] = []
        for backup in backups {
            try await audit(.verify, tenant: tenant, key: backup.key.key, detail: restore ? "with a restore drill" : nil)
            let result = try await verifyOne(backup, tenant: tenant, restore: restore, trustUnsigned: trustUnsigned, applyAs: applyAs)
            if !result.passed {
                // The access was allowed and recorded; a check that fails is recorded too.
                let mismatched = (result.tables ?? []).filter { !$0.matches }.map(\.table)
                await auditBestEffort(
                    .verify, tenant: tenant, key: result.key, outcome: .failed,
                    detail: result.problem ?? "row counts differ from the manifest: \(mismatched.joined(separator: ", "))")
            }
            results.append(result)
        }
        return results
    }

    private func verifyOne(
        _ backup: BackupCatalog.ListedBackup, tenant: String, restore: Bool, trustUnsigned: Bool, applyAs: String?
    ) async throws(AccessError) -> Verification {
        let key = backup.key.key
        let manifest: BackupManifest?
        do {
            manifest = try await self.manifest(of: backup, tenant: tenant, action: .verify)
        } catch {
            if case .verificationFailed(_, let problem) = error.kind {
                return Verification(key: key, problem: problem, hasManifest: true, tables: nil, drillDatabase: nil)
            }
            throw error
        }
        let signature = manifest.map { context.manifestTrust().verdict(for: $0).summary } ?? "no manifest"
        if let mark = await mark(of: backup, tenant: tenant) {
            if restore { BackupMetrics.recordDrill(tenant: tenant, succeeded: false, at: now()) }
            var marked = Verification(
                key: key, problem: "marked broken or foreign by \(mark.markedBy) on \(BackupAccess.isoformat(mark.markedAt)): \(mark.reason)", hasManifest: manifest != nil,
                tables: nil, drillDatabase: nil)
            marked.signature = signature
            return marked
        }
        func result(_ problem: String?, tables: [TableCheck]? = nil, drillDatabase: String? = nil) -> Verification {
            var verification = Verification(key: key, problem: problem, hasManifest: manifest != nil, tables: tables, drillDatabase: drillDatabase)
            verification.signature = signature
            return verification
        }
        if let problem = vouchProblem(backup, manifest: manifest, trustUnsigned: trustUnsigned) {
            if restore { BackupMetrics.recordDrill(tenant: tenant, succeeded: false, at: now()) }
            logger.error("backup not verified", metadata: ["tenant": "\(tenant)", "s3_key": "\(key)", "problem": "\(problem)"])
            return result(problem)
        }
        let read: ReadOutcome
        do {
            read = try await readThroughFilter(backup.key, tenant: tenant, spool: nil, forbidden: await forbiddenSchemas(tenant: tenant, target: nil))
        } catch let error as S3Error {
            throw AccessError(tenant: tenant, .storage(error))
        } catch let error as AccessError {
            return result(error.message)
        } catch {
            throw AccessError(tenant: tenant, .restoreFailed("stopped while reading \(key)"))
        }
        let problem = Self.mismatch(bytes: read.bytes, sha256: read.sha256, expected: manifest, listedSize: backup.size)
            ?? read.refusal.map { "it would not be restored: \($0)" }
        // Proved bad, not merely unverifiable: bytes that differ from a manifest a trusted key signed, or a dump
        // the filter refuses whatever its manifest says. Marked, so it is never served, restored or kept in its
        // place. (Bytes that differ from an unsigned manifest prove nothing: the manifest may be the forgery.)
        let signedMismatch = manifest.map { context.manifestTrust().verdict(for: $0).isTrusted } ?? false
        if let problem, read.refusal != nil || signedMismatch {
            await writeMark(backup, sha256: read.sha256, reason: problem, by: "verify", tenant: tenant)
        }
        guard restore, problem == nil else {
            if restore { BackupMetrics.recordDrill(tenant: tenant, succeeded: false, at: now()) }
            logger.log(
                level: problem == nil ? .info : .error, "backup verified",
                metadata: ["tenant": "\(tenant)", "s3_key": "\(key)", "ok": "\(problem == nil)", "problem": "\(problem ?? "")"])
            return result(problem)
        }
        var drilled = try await drill(
            backup, manifest: manifest, tenant: tenant, trustUnsigned: trustUnsigned, applyAs: applyAs.map { ApplyRole(role: $0, throwaway: true) })
        drilled.signature = signature
        return drilled
    }

    /// Restores into a throwaway database on the tenant's own server and compares the row counts.
    /// With `proving`, `manifest` is the one `adopt` is about to write (not read from the bucket): the drill
    /// restores against it.
    func drill(
        _ backup: BackupCatalog.ListedBackup, manifest: BackupManifest?, tenant: String, trustUnsigned: Bool, proving: Bool = false, applyAs: ApplyRole? = nil
    ) async throws(AccessError) -> Verification {
        let key = backup.key.key
        let database = RestoreLeftovers.drillPrefix + AuditRecord.newId()
        var request = RestoreRequest(target: "dbname=\(database)")
        request.createDatabase = true
        request.withSharedData = true
        request.trustUnsigned = trustUnsigned
        request.applyAs = applyAs
        // On the tenant's own server: the settings' connection, with the throwaway database's name.
        request.inherited = context.settings.postgres.connectionVariables.filter { $0.key != "PGDATABASE" }
        let (environment, _) = try restoreTarget(request, tenant: tenant)
        let access = self
        // The restore runs in a task of its own: a stop (SIGTERM) cancels it (psql is killed before it can
        // commit), and the drop below, outside the cancelled task, always runs.
        let restoring = Task { () async -> Result<Restore, AccessError> in
            do throws(AccessError) {
                if proving {
                    return .success(try await access.restore(located: backup, manifest: manifest, tenant: tenant, into: request))
                }
                return .success(try await access.restoreForDrill(tenant: tenant, backup: backup, request: request))
            } catch {
                return .failure(error)
            }
        }
        let outcome = await withTaskCancellationHandler { await restoring.value } onCancel: { restoring.cancel() }
        await Task { await access.dropDatabase(database, environment: environment, tenant: tenant) }.value
        if Task.isCancelled { throw AccessError(tenant: tenant, .restoreFailed("stopped; the drill's database \(database) was dropped")) }
        switch outcome {
        case .failure(let error):
            BackupMetrics.recordDrill(tenant: tenant, succeeded: false, at: now())
            logger.error("restore drill failed", metadata: ["tenant": "\(tenant)", "s3_key": "\(key)", "error": "\(error.message)"])
            return Verification(key: key, problem: "the restore drill failed: \(error.message)", hasManifest: manifest != nil, tables: nil, drillDatabase: database)
        case .success(let restored):
            let tables = Self.compare(expected: manifest?.tableRowCounts ?? [:], restored: restored.tableRowCounts, schema: tenant)
            let checked = manifest?.tableRowCounts == nil ? [] : tables
            let passed = checked.allSatisfy(\.matches)
            logger.log(
                level: passed ? .notice : .error, "restore drill finished",
                metadata: ["tenant": "\(tenant)", "s3_key": "\(key)", "ok": "\(passed)", "tables": "\(tables.count)",
                           "mismatched": "\(checked.filter { !$0.matches }.map(\.table).joined(separator: ","))"])
            BackupMetrics.recordDrill(tenant: tenant, succeeded: passed, at: now())
            return Verification(key: key, problem: nil, hasManifest: manifest != nil, tables: checked, drillDatabase: database)
        }
    }

    /// The drill's restore of the backup it located, by key (audited as every restore is).
    func restoreForDrill(tenant: String, backup: BackupCatalog.ListedBackup, request: RestoreRequest) async throws(AccessError) -> Restore {
        try await restore(tenant: tenant, .key(backup.key.key), into: request)
    }
}
