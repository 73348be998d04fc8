import Foundation
import NIOCore
import NIOFoundationCompat

extension BackupAccess {
    /// What `adopt` found for one backup without a manifest.
    public struct Adoption: Sendable, Equatable {
        public let key: String
        /// `nil` when the backup is a complete dump of this tenant's schema alone (its manifest was written,
        /// unless a dry run); else why it was left alone.
        public let problem: String?
        public let manifest: BackupManifest?
        public let written: Bool
        /// Whether the problem proves the object broken or foreign (it is then marked, unless a dry run), as
        /// opposed to a check that could not run here (an encrypted object, no shared dump to prove it on).
        public var proven: Bool = false
        /// The SHA-256 of what was read, for its mark.
        public var sha256: String = ""
        /// Adopted after a proof restore (`--prove-as`).
        public var provenByRestore = false
    }

    /// Gives the tenant's backups that have no manifest (the old system's plain dumps) one: each is read
    /// whole and checked to be a complete pg_dump (its closing line) of this tenant's schema and of no other;
    /// its rows are counted and a manifest with `"adopted": true` is written beside it (never over one). A
    /// backup that fails the check is reported and left alone.
    ///
    /// With `proveAs` (a role for ``ApplyRole``), each dump that passes is also restored into a throwaway
    /// database (the newest shared dumps first, by the operator; the dump as that role, under the transaction
    /// guard), its row counts compared: only then is its manifest written. A dump whose proof fails is left
    /// alone (marked, when psql or the guard refused what it did).
    ///
    /// An adopted manifest is never signed, proof or not. A proof shows what the dump did as a role that could
    /// do little; a signature would let every later restore and drill apply it as the operator's connection,
    /// where the same dump may act otherwise (a function that checks `rolsuper` first), and would make it a
    /// retention keeper that can push a real backup out, though nothing proves whose rows it holds (another
    /// clinic's dump with the names replaced passes every check).
    public func adopt(tenant: String, dryRun: Bool = false, proveAs: String? = nil) async throws(AccessError) -> [Adoption] {
        let catalog = try catalog(tenant)
        let listed: [BackupCatalog.ListedBackup]
        do {
            listed = try await catalog.backups(of: .tenant(tenant))
        } catch {
            throw AccessError(tenant: tenant, .storage(error))
        }
        if listed.isEmpty { throw AccessError(tenant: tenant, try await emptyTenant(tenant, missing: nil)) }
        // The other clinics: of the database, and of the bucket (a clinic removed from the database).
        var others = Set((try? await context.inspectDatabase().discovered.tenants) ?? [])
        if let all = try? await catalog.allBackups(area: .tenant) { others.formUnion(all.map(\.key.schema)) }
        others.remove(tenant)
        var results: [Adoption] = []
        for backup in listed.filter({ !$0.hasManifest && !$0.hasMark }).sorted(by: { $0.key.timestamp < $1.key.timestamp }) {
            let adoption = try await adoptOne(backup, tenant: tenant, catalog: catalog, others: others, dryRun: dryRun, proveAs: proveAs)
            if let problem = adoption.problem, !dryRun {
                await auditBestEffort(.adopt, tenant: tenant, key: adoption.key, outcome: .failed, detail: problem)
                if adoption.proven { await writeMark(backup, sha256: adoption.sha256, reason: problem, by: "adopt", tenant: tenant) }
            }
            results.append(adoption)
        }
        return results
    }

    private func adoptOne(
        _ backup: BackupCatalog.ListedBackup, tenant: String, catalog: BackupCatalog, others: Set<String>, dryRun: Bool, proveAs: String?
    ) async throws(AccessError) -> Adoption {
        let key = backup.key.key
        var readDigest = ""
        func leftAlone(_ problem: String, proven: Bool = true) -> Adoption {
            logger.warning("backup not adopted", metadata: ["tenant": "\(tenant)", "s3_key": "\(key)", "problem": "\(problem)"])
            var adoption = Adoption(key: key, problem: problem, manifest: nil, written: false)
            adoption.proven = proven
            adoption.sha256 = readDigest
            return adoption
        }
        guard backup.key.format.dump == .plain, backup.key.format.isReadable else {
            return leftAlone("only plain-format, unencrypted dumps can be checked and adopted", proven: false)
        }
        var decompressor: StageChain? = try Self.readStages(for: backup.key, tenant: tenant)
        guard backup.size > 0 else { return leftAlone("it is empty (0 bytes)") }
        guard backup.key.timestamp <= catalog.futureHorizon else {
            return leftAlone("its name dates it in the future (\(BackupAccess.isoformat(backup.key.timestamp))): no backup of ours is named so")
        }
        var inspector = DumpInspector()
        inspector.watching = others
        var counter = CopyRowCounter()
        let filter = DumpFilter.Checker(schema: tenant, policy: .tenant)
        var dumpBytes: Int64 = 0
        let read: (bytes: Int64, sha256: String)
        do {
            read = try await streamObject(key, tenant: tenant) { chunk in
                let plain = try decompressor?.process(chunk) ?? chunk
                dumpBytes += Int64(plain.readableBytes)
                inspector.consume(plain)
                counter.consume(plain)
                filter.feed(plain)
            }
            if let tail = try decompressor?.finish() {
                dumpBytes += Int64(tail.readableBytes)
                inspector.consume(tail)
                counter.consume(tail)
                filter.feed(tail)
            }
            filter.end()
        } catch let error as S3Error {
            throw AccessError(tenant: tenant, .storage(error))
        } catch {
            return leftAlone("cannot be read as \(backup.key.suffix): \(error)")
        }
        inspector.finish()
        readDigest = read.sha256
        guard inspector.isComplete else {
            return leftAlone("not a complete pg_dump: it does not end with \"\(DumpInspector.completeLine)\" (truncated?)")
        }
        let others = inspector.schemas.subtracting([tenant])
        guard others.isEmpty else {
            return leftAlone("it holds objects of other schemas (\(others.sorted().map(BackupSchema.display).joined(separator: ", "))), not only \(BackupSchema.display(tenant))'s")
        }
        guard inspector.referenced.isEmpty else {
            return leftAlone(
                "its statements name other clinics' schemas (\(inspector.referenced.sorted().map(BackupSchema.display).joined(separator: ", "))): it is not \(BackupSchema.display(tenant))'s alone")
        }
        guard inspector.schemas.contains(tenant) else {
            return leftAlone("it creates nothing in schema \(BackupSchema.display(tenant))")
        }
        if let refusal = filter.refusal {
            return leftAlone("it holds what pg_dump never writes for one schema (\(refusal)); it would not be restored")
        }
        let fields = backup.key.format.manifestFields
        var manifest = BackupManifest(
            area: "tenant", schema: tenant, key: key, bytes: read.bytes, sha256: read.sha256, dumpBytes: dumpBytes, compression: fields.compression,
            encryption: fields.encryption, format: fields.format, pgDumpVersion: inspector.pgDumpVersion ?? "unknown", serverVersion: inspector.serverVersion ?? "unknown",
            toolVersion: TenantBackupVersion.current, startedAt: backup.key.timestamp, finishedAt: backup.lastModified ?? backup.key.timestamp,
            sharedBackups: [], tableRowCounts: counter.rowCounts)
        manifest.adopted = true
        guard !dryRun else { return Adoption(key: key, problem: nil, manifest: manifest, written: false) }
        // The shared dumps a restore into a fresh database would apply first (the newest of each).
        var shared: [String] = []
        for schema in context.settings.tenants.sharedSchemas {
            if let newest = try? await catalog.newest(of: .shared(schema)) { shared.append(newest.key) }
        }
        manifest.sharedBackups = shared
        // Unsigned (see above). The proof runs its SQL, so only as a role that is not a superuser (a function a
        // DEFAULT calls during COPY runs with that role's rights), in a throwaway database; the restore checks
        // the object against this manifest (size, SHA-256) before applying it.
        if let proveAs {
            let proof = try await drill(
                backup, manifest: manifest, tenant: tenant, trustUnsigned: true, proving: true, applyAs: ApplyRole(role: proveAs, throwaway: true))
            if let problem = proof.problem {
                let dumpFault = ["psql exited 3", "acted outside schema", "ended the restore's transaction", "is refused before anything was applied"]
                    .contains { problem.contains($0) }
                return leftAlone("its proof restore (as role \(proveAs), into a throwaway database) failed: \(problem)", proven: dumpFault)
            }
            if let differing = proof.tables?.filter({ !$0.matches }), !differing.isEmpty {
                return leftAlone("its proof restore holds other row counts than its COPY data (\(differing.map(\.table).joined(separator: ", ")))")
            }
        }
        try await audit(
            .adopt, tenant: tenant, key: key,
            detail: "\(counter.rowCounts.count) tables, \(read.bytes) bytes, unsigned" + (proveAs.map { ", proven by a restore as role \($0)" } ?? ""))
        do {
            let body = try manifest.encoded()
            try await client(tenant).putObject(key: backup.key.manifestKey, body: ByteBuffer(data: body), options: S3WriteOptions(contentType: "application/json"))
        } catch let error as S3Error where error.status == 412 {
            return leftAlone("a manifest appeared beside it meanwhile; it was not replaced", proven: false)
        } catch let error as S3Error {
            throw AccessError(tenant: tenant, .storage(error))
        } catch {
            throw AccessError(tenant: tenant, .output("cannot encode the manifest: \(error)"))
        }
        logger.notice("backup adopted", metadata: ["tenant": "\(tenant)", "s3_key": "\(key)", "tables": "\(counter.rowCounts.count)"])
        var adoption = Adoption(key: key, problem: nil, manifest: manifest, written: true)
        adoption.provenByRestore = proveAs != nil
        return adoption
    }
}
