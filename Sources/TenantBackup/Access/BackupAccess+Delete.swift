import Foundation
import NIOCore
import NIOFoundationCompat

extension BackupAccess {
    /// What a delete removed.
    public struct Deletion: Sendable, Equatable {
        public let key: String
        /// The backup's key and, when it had one, its manifest's.
        public let deletedKeys: [String]
        /// Whether force lifted a brake to allow it.
        public let forced: Bool
    }

    /// Deletes one backup and its manifest, under the tenant's advisory lock (so it never races a backup or a
    /// prune on any host). The brakes retention has apply: the tenant's newest backup and its newest verified
    /// one are refused unless `force`.
    public func delete(tenant: String, key given: String, force: Bool = false) async throws(AccessError) -> Deletion {
        // Refuse what is not this tenant's key before taking any lock or reading anything.
        do {
            _ = try Self.resolve(given, tenant: tenant, prefix: prefix)
        } catch {
            await auditBestEffort(.delete, tenant: tenant, key: given, outcome: .refused, detail: error.message)
            throw error
        }
        return try await underLock(tenant: tenant, action: .delete, key: given) { () throws(AccessError) in
            try await deleteLocked(tenant: tenant, given: given, force: force)
        }
    }

    /// The tenant's backups as retention plans them (signed manifests vouch; soft-deleted ones left out).
    func retentionCandidates(tenant: String, client: S3Client) async throws(AccessError) -> [RetentionCandidate] {
        var runner = RetentionRunner(settings: context.settings.retention, client: client, prefix: prefix, logger: logger, now: now)
        runner.trust = context.manifestTrust()
        do {
            return try await runner.candidates(tenant: tenant)
        } catch {
            throw AccessError(tenant: tenant, .storage(error))
        }
    }

    /// Runs `body` holding the tenant's advisory lock; a lock held elsewhere is a refusal of `action`.
    func underLock<T>(tenant: String, action: AuditRecord.Action, key: String?, _ body: () async throws(AccessError) -> T) async throws(AccessError) -> T {
        let lock: TenantLock?
        do {
            lock = try await TenantLock.acquire(
                .tenant(tenant), connectionString: context.settings.postgres.connectionString, environment: context.environment)
        } catch {
            throw AccessError(tenant: tenant, .database("cannot take the tenant's lock: \(error)"))
        }
        guard let lock else {
            await auditBestEffort(action, tenant: tenant, key: key, outcome: .refused, detail: "the tenant's lock is held")
            throw AccessError(tenant: tenant, .tenantBusy)
        }
        do throws(AccessError) {
            let result = try await body()
            await lock.release()
            return result
        } catch {
            await lock.release()
            throw error
        }
    }

    private func deleteLocked(tenant: String, given: String, force: Bool) async throws(AccessError) -> Deletion {
        // Under the lock, the bucket's view is current: no backup of this tenant can start or finish meanwhile.
        let backup = try await locate(.key(given), tenant: tenant, for: .delete)
        let key = backup.key.key
        let client = try client(tenant)
        let candidates = try await retentionCandidates(tenant: tenant, client: client)
        // The planner's brakes: the newest backup and the newest verified one.
        let brake = RetentionPlanner.brake(on: key, among: candidates, now: now())
        let protected = brake != nil
        if let brake, !force {
            let refusal = AccessError(tenant: tenant, .protectedBackup(key: key, newestVerified: brake == .newestVerified))
            await auditBestEffort(.delete, tenant: tenant, key: key, outcome: .refused, detail: refusal.message)
            throw refusal
        }
        var keys = [key]
        if backup.hasManifest { keys.append(backup.key.manifestKey) }
        if backup.hasMark { keys.append(backup.key.markKey) }
        if backup.hasDeletion { keys.append(backup.key.deletionKey) }
        try await audit(.delete, tenant: tenant, key: key, detail: protected ? "forced past the newest-backup brake" : nil)
        let result: S3DeleteResult
        do {
            result = try await client.delete(keys: keys)
        } catch {
            await auditBestEffort(.delete, tenant: tenant, key: key, outcome: .failed, detail: "\(error)")
            throw AccessError(tenant: tenant, .storage(error))
        }
        if let failure = result.failures.first {
            let error = S3Error(operation: "DeleteObjects", bucket: client.bucket, key: failure.key, cause: .service(status: 200, code: failure.code, message: failure.message, requestId: nil))
            await auditBestEffort(.delete, tenant: tenant, key: key, outcome: .failed, detail: "\(error)")
            throw AccessError(tenant: tenant, .storage(error))
        }
        logger.notice("backup deleted by an operator", metadata: ["tenant": "\(tenant)", "s3_key": "\(key)", "actor": "\(actor)", "forced": "\(protected)"])
        return Deletion(key: key, deletedKeys: result.deleted, forced: protected)
    }
}

// MARK: - Soft deletes (the API)

extension BackupAccess {
    /// What a delete through the API did: hid the backup from the clinic until it is purged.
    public struct SoftDeletion: Sendable, Equatable {
        public let key: String
        public let purgeAfter: Date
    }

    /// The rules of retention's plan that `api.delete_policy: floor` never lets the API delete.
    public static let floorRules: Set<RetentionReason> = [.newest, .newestVerified, .monthly, .yearly]

    /// Deletes a backup the way a clinic may, through the API: softly. A signed ``DeletionMark`` beside it
    /// hides it from the clinic at once and takes it out of retention's plan; the object stays in the bucket
    /// until `grace` has passed, when the next retention run purges it, unless an operator brings it back
    /// (``undelete(tenant:key:)``). Under the tenant's lock; audited before the mark is written.
    ///
    /// The floor (`policy` ``APISettings/DeletePolicy/floor``): a backup retention keeps as the newest, the
    /// newest verified, a monthly or a yearly one (planned without the backups already deleted) is refused,
    /// so no token can leave the clinic without its last good backup and its monthly history.
    public func softDelete(tenant: String, key given: String, policy: APISettings.DeletePolicy, grace: Duration) async throws(AccessError) -> SoftDeletion {
        do throws(AccessError) {
            _ = try Self.resolve(given, tenant: tenant, prefix: prefix)
            if policy == .none { throw AccessError(tenant: tenant, .deletesNotAllowed) }
        } catch {
            await auditBestEffort(.delete, tenant: tenant, key: given, outcome: .refused, detail: error.message)
            throw error
        }
        return try await underLock(tenant: tenant, action: .delete, key: given) { () throws(AccessError) in
            try await softDeleteLocked(tenant: tenant, given: given, policy: policy, grace: grace)
        }
    }

    private func softDeleteLocked(tenant: String, given: String, policy: APISettings.DeletePolicy, grace: Duration) async throws(AccessError) -> SoftDeletion {
        let backup = try await locate(.key(given), tenant: tenant, for: .delete)
        let key = backup.key.key
        if await deletion(of: backup, tenant: tenant) != nil {
            // Deleted already (the operator's view: the clinic's locate has said "no such backup").
            let refusal = AccessError(tenant: tenant, .noSuchBackup(key: key))
            await auditBestEffort(.delete, tenant: tenant, key: key, outcome: .refused, detail: "already deleted")
            throw refusal
        }
        let client = try client(tenant)
        if policy == .floor {
            let candidates = try await retentionCandidates(tenant: tenant, client: client)
            let plan = RetentionPlanner.plan(candidates, policy: context.settings.retention.policy, now: now())
            if let decision = plan.decisions.first(where: { $0.candidate.key == key }), decision.keep {
                let rules = decision.reasons.filter(Self.floorRules.contains)
                if !rules.isEmpty {
                    let refusal = AccessError(tenant: tenant, .keptByFloor(key: key, rules: rules))
                    await auditBestEffort(.delete, tenant: tenant, key: key, outcome: .refused, detail: refusal.message)
                    throw refusal
                }
            }
        }
        let signingKey: SigningKey
        do {
            signingKey = try context.signingKey()
        } catch {
            throw AccessError(tenant: tenant, .configuration("a delete through the API needs this host's signing key to sign its mark: \(error)"))
        }
        let current = now()
        let seconds = Double(grace.components.seconds) + Double(grace.components.attoseconds) / 1e18
        let mark: DeletionMark
        let body: ByteBuffer
        do {
            mark = try DeletionMark(key: key, bytes: backup.size, deletedBy: actor, deletedAt: current, purgeAfter: current.addingTimeInterval(seconds))
                .signed(with: signingKey)
            body = ByteBuffer(data: try mark.encoded())
        } catch {
            throw AccessError(tenant: tenant, .configuration("cannot sign the deletion mark: \(error)"))
        }
        try await audit(.delete, tenant: tenant, key: key, detail: "soft: hidden from the clinic now, purged after \(BackupAccess.isoformat(mark.purgeAfter)) unless undeleted")
        do throws(S3Error) {
            _ = try await client.putObject(key: backup.key.deletionKey, body: body, options: S3WriteOptions(contentType: "application/json"))
        } catch {
            await auditBestEffort(.delete, tenant: tenant, key: key, outcome: .failed, detail: "\(error)")
            throw AccessError(tenant: tenant, .storage(error))
        }
        logger.notice(
            "backup deleted through the API (soft)",
            metadata: ["tenant": "\(tenant)", "s3_key": "\(key)", "actor": "\(actor)", "purge_after": "\(BackupAccess.isoformat(mark.purgeAfter))"])
        return SoftDeletion(key: key, purgeAfter: mark.purgeAfter)
    }

    /// Brings back a backup deleted through the API, before its grace passed: removes its deletion mark, so
    /// the clinic sees it again and retention plans it like any other. Under the tenant's lock; audited first.
    public func undelete(tenant: String, key given: String) async throws(AccessError) -> DeletionMark {
        do {
            _ = try Self.resolve(given, tenant: tenant, prefix: prefix)
        } catch {
            await auditBestEffort(.undelete, tenant: tenant, key: given, outcome: .refused, detail: error.message)
            throw error
        }
        return try await underLock(tenant: tenant, action: .undelete, key: given) { () throws(AccessError) in
            let backup = try await locate(.key(given), tenant: tenant, for: .undelete)
            let key = backup.key.key
            guard let mark = await deletion(of: backup, tenant: tenant) else {
                let refusal = AccessError(tenant: tenant, .notDeleted(key: key))
                await auditBestEffort(.undelete, tenant: tenant, key: key, outcome: .refused, detail: refusal.message)
                throw refusal
            }
            let client = try client(tenant)
            try await audit(.undelete, tenant: tenant, key: key, detail: "deleted through the API by \(mark.deletedBy) on \(BackupAccess.isoformat(mark.deletedAt))")
            do throws(S3Error) {
                try await client.deleteObject(key: backup.key.deletionKey)
            } catch {
                await auditBestEffort(.undelete, tenant: tenant, key: key, outcome: .failed, detail: "\(error)")
                throw AccessError(tenant: tenant, .storage(error))
            }
            logger.notice("backup deleted through the API brought back", metadata: ["tenant": "\(tenant)", "s3_key": "\(key)", "actor": "\(actor)"])
            return mark
        }
    }
}
