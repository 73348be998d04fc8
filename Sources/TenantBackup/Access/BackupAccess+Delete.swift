import Foundation

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
        let lock: TenantLock?
        do {
            lock = try await TenantLock.acquire(
                .tenant(tenant), connectionString: context.settings.postgres.connectionString, environment: context.environment)
        } catch {
            throw AccessError(tenant: tenant, .database("cannot take the tenant's lock: \(error)"))
        }
        guard let lock else {
            await auditBestEffort(.delete, tenant: tenant, key: given, outcome: .refused, detail: "the tenant's lock is held")
            throw AccessError(tenant: tenant, .tenantBusy)
        }
        do throws(AccessError) {
            let deletion = try await deleteLocked(tenant: tenant, given: given, force: force)
            await lock.release()
            return deletion
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
        var runner = RetentionRunner(settings: context.settings.retention, client: client, prefix: prefix, logger: logger, now: now)
        runner.trust = context.manifestTrust()
        let candidates: [RetentionCandidate]
        do {
            candidates = try await runner.candidates(tenant: tenant)
        } catch {
            throw AccessError(tenant: tenant, .storage(error))
        }
        let horizon = now().addingTimeInterval(RetentionPlanner.defaultClockSkewAllowance)
        let planned = candidates.filter { $0.timestamp <= horizon }.sorted(by: RetentionCandidate.newestFirst)
        let protected: Bool? = planned.first?.key == key ? false : planned.first(where: \.verified)?.key == key ? true : nil
        if let newestVerified = protected, !force {
            let refusal = AccessError(tenant: tenant, .protectedBackup(key: key, newestVerified: newestVerified))
            await auditBestEffort(.delete, tenant: tenant, key: key, outcome: .refused, detail: refusal.message)
            throw refusal
        }
        var keys = [key]
        if backup.hasManifest { keys.append(backup.key.manifestKey) }
        if backup.hasMark { keys.append(backup.key.markKey) }
        try await audit(.delete, tenant: tenant, key: key, detail: protected != nil ? "forced past the newest-backup brake" : nil)
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
        logger.notice("backup deleted by an operator", metadata: ["tenant": "\(tenant)", "s3_key": "\(key)", "actor": "\(actor)", "forced": "\(protected != nil)"])
        return Deletion(key: key, deletedKeys: result.deleted, forced: protected != nil)
    }
}
