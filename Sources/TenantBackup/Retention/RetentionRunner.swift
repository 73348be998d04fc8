import Foundation
import Logging
import NIOCore
import NIOFoundationCompat

/// Retention settings: the policy plus the brakes around applying it.
public struct RetentionSettings: Sendable, Equatable {
    public var policy: RetentionPolicy
    /// A plan deleting more than this fraction of a tenant's backups is refused unless forced.
    public var maxDeleteFraction: Double
    /// A manual prune runs only when the tenant's newest backup is younger than this, unless forced.
    public var maxNewestAge: Duration
    /// Incomplete multipart uploads older than this under a tenant's prefix are aborted.
    public var incompleteUploadGrace: Duration

    public init(
        policy: RetentionPolicy = RetentionPolicy(), maxDeleteFraction: Double = 0.5, maxNewestAge: Duration = .seconds(48 * 3600),
        incompleteUploadGrace: Duration = .seconds(24 * 3600)
    ) {
        self.policy = policy
        self.maxDeleteFraction = maxDeleteFraction
        self.maxNewestAge = maxNewestAge
        self.incompleteUploadGrace = incompleteUploadGrace
    }
}

/// Which brake stopped a plan. The description says what happened; each interface adds how to go on
/// (the command line's `--force`, the daemon's next cycle).
public enum RetentionRefusal: Sendable, Equatable, CustomStringConvertible {
    /// In a cycle: this tenant's backup failed, so nothing is pruned.
    case backupFailed
    /// A manual prune of a tenant without backups.
    case noBackups
    /// A manual prune while the newest backup is older than `retention.max_newest_age`.
    case newestTooOld(key: String, age: Duration, limit: Duration)
    /// The plan would delete more than `retention.max_delete_fraction` of the backups (or dumps).
    case tooManyDeletions(planned: Int, of: Int, limit: Double)

    /// Whether forcing lifts this brake.
    public var canBeForced: Bool {
        switch self {
        case .newestTooOld, .tooManyDeletions: true
        case .backupFailed, .noBackups: false
        }
    }

    public var description: String {
        switch self {
        case .backupFailed:
            return "this cycle's backup of the tenant failed; nothing is pruned until one succeeds"
        case .noBackups:
            return "the tenant has no backups"
        case .newestTooOld(let key, let age, let limit):
            return "the newest backup (\(key)) is \(age.components.seconds / 3600) h old, older than retention.max_newest_age "
                + "(\(limit.components.seconds / 3600) h); back the tenant up first"
        case .tooManyDeletions(let planned, let total, let limit):
            let fraction = total == 0 ? 0 : Double(planned) / Double(total)
            return "the plan would delete \(planned) of \(total) (\(Int((fraction * 100).rounded())) %), more than "
                + "retention.max_delete_fraction (\(Int((limit * 100).rounded())) %); check the policy"
        }
    }
}

/// Why retention is being applied, which decides the first brake.
public enum RetentionTrigger: Sendable, Equatable {
    /// In a cycle, right after this tenant's backup: runs only if that backup succeeded.
    case afterBackup(succeeded: Bool)
    /// `tenant-backup prune`: runs only when the newest backup is fresh enough, unless forced.
    case manual
}

/// What retention did (or, in a dry run, would do) for one tenant.
public struct RetentionOutcome: Sendable, Equatable {
    public enum Status: Sendable, Equatable {
        /// The plan was applied (or shown, in a dry run).
        case applied
        /// A brake stopped it; nothing was deleted.
        case refused(RetentionRefusal)
    }

    /// The tenant (or, for ``RetentionRunner/runSharedSchemas(force:dryRun:ignoring:)``, the shared schema).
    public let schema: BackupSchema
    public let status: Status
    public let plan: RetentionPlan
    /// Keys deleted (objects and their manifests); empty in a dry run or when refused.
    public let deletedKeys: [String]
    /// Keys S3 refused to delete.
    public let failedKeys: [String]
    /// Incomplete multipart uploads aborted.
    public let abortedUploads: [String]
    public let dryRun: Bool
    /// What the operator should look at, though nothing stopped the plan (a newest backup whose manifest
    /// does not vouch for it).
    public var warnings: [String] = []
    /// Backups deleted through the API (``DeletionMark``) whose grace passed: purged (or, in a dry run, to be).
    public var purged: [String] = []
    /// Backups deleted through the API still in their grace: left out of the plan, kept in the bucket.
    public var softDeleted: [String] = []

    /// The schema's name.
    public var tenant: String { schema.name }
}

/// Applies the retention policy to one tenant's backups behind the brakes: never without a good backup
/// first, never the newest or the newest verified backup, never a key that is not one of our backups or
/// lies outside the tenant's folder, never more than `maxDeleteFraction` of the backups unless forced.
public struct RetentionRunner: Sendable {
    public let settings: RetentionSettings
    public let client: any ObjectStore
    public let prefix: String
    public let logger: Logger
    public let now: @Sendable () -> Date
    /// Where each deletion is recorded before it happens (a record that cannot be stored stops the deletions),
    /// and whose expired records go with the tenant's retention; `nil`: no audit (unit tests of the planner).
    public var audit: AuditTrail?
    /// The keys whose marks (``BackupMark``) count; `nil`: marks are not read (every backup ranks by its
    /// manifest alone).
    public var trust: ManifestTrust?
    /// Who prunes: the daemon, or the operator running `prune`.
    public var actor = "tenant-backup"
    /// The manifests already read (the context's, so a cycle reads each once: for the tenant, then for the
    /// shared dumps; in the daemon, once until the next reload).
    public var manifests = ManifestCache()

    public init(settings: RetentionSettings, client: any ObjectStore, prefix: String, logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.settings = settings
        self.client = client
        self.prefix = prefix
        self.logger = logger
        self.now = now
    }

    /// The tenant's backups: every object in its folder whose key parses as one of ours for this tenant.
    ///
    /// `verified` (a manifest beside it vouches for it: same key, same size) is established newest first,
    /// among the backups the planner will plan (not future-dated), and only until the first verified one —
    /// all the planner needs for its "newest verified backup" brake. One manifest GET per tenant and cycle
    /// in the usual case, instead of one per backup.
    public func candidates(tenant: String) async throws(S3Error) -> [RetentionCandidate] {
        try await inspect(tenant: tenant).candidates
    }

    /// What ``inspect(tenant:)`` found.
    struct Inspection {
        /// What the planner plans: every backup but the soft-deleted ones.
        var candidates: [RetentionCandidate]
        /// The backups read newest first whose manifest exists but does not vouch for them (another key or
        /// size, or unreadable).
        var failedManifests: [String]
        /// The keys of the marks (``BackupMark``) beside backups.
        var marks: Set<String>
        /// The backups a trusted ``DeletionMark`` says were deleted through the API, with that mark.
        var softDeleted: [(backup: BackupCatalog.ListedBackup, deletion: DeletionMark)]
    }

    /// ``candidates(tenant:)``, and what else retention needs to know about the tenant's folder. With the
    /// trusted keys known, a backup deleted through the API (a trusted ``DeletionMark``) is no candidate: it
    /// never holds a period's place, nor the newest or newest-verified brake. A listed manifest or mark the store
    /// does not answer for (an error, a 404 included, or a manifest cut short) is thrown: read as "no manifest", it would hand the newest good
    /// backup's place to an older one, and the plan would delete it.
    ///
    /// `listed`: the tenant's backups from a listing already made (the cycle's one listing of the bucket, with
    /// the cycle's own new backup); `nil` lists the tenant's folder.
    func inspect(tenant: String, listed given: [BackupCatalog.ListedBackup]? = nil) async throws(S3Error) -> Inspection {
        let catalog = BackupCatalog(client: client, prefix: prefix, now: now)
        let all: [BackupCatalog.ListedBackup]
        if let given { all = given } else { all = try await catalog.backups(of: .tenant(tenant)) }
        // An empty object named like a backup is no backup: it must not take a daily or weekly slot from a
        // real one. It is left out of planning, and kept.
        let listed = all.filter { $0.size > 0 }
        for empty in all where empty.size == 0 {
            logger.warning("an empty object named like a backup is not planned (kept)", metadata: ["tenant": "\(tenant)", "s3_key": "\(empty.key.key)"])
        }
        let manifestKeys = Set(listed.filter(\.hasManifest).map(\.key.manifestKey))
        manifests.keepOnly(Set(all.filter(\.hasManifest).map(\.key.manifestKey)), under: BackupKey.folder(prefix: prefix, of: .tenant(tenant)))
        var candidates: [RetentionCandidate] = []
        var mismatched: Set<String> = []
        var softDeleted: [(backup: BackupCatalog.ListedBackup, deletion: DeletionMark)] = []
        for backup in listed {
            if let trust, backup.hasDeletion, let deletion = try await DeletionMark.checkedRead(for: backup, from: client, trust: trust) {
                softDeleted.append((backup, deletion))
                continue
            }
            var marked = false
            if let trust, backup.hasMark { marked = try await BackupMark.checkedRead(for: backup, from: client, trust: trust) != nil }
            if marked { logger.info("a backup marked broken or foreign is not kept in place of another", metadata: ["tenant": "\(tenant)", "s3_key": "\(backup.key.key)"]) }
            // With the trusted keys known, only a manifest a trusted key signed (for this key and size) vouches
            // for a backup: a bucket writer's object with a copied, edited, unsigned manifest must not take a
            // period's place, or the newest-verified brake, from a genuine backup.
            var vouched = backup.hasManifest
            if let trust, backup.hasManifest {
                let manifest: ManifestCache.Entry?
                do {
                    manifest = try await manifests.read(backup.key.manifestKey, eTag: backup.manifestETag, size: backup.manifestSize, from: client, trust: trust)
                } catch {
                    // Unanswered is not unsigned: the tenant's deletions stop until the store answers.
                    if let failure = error.unanswered { throw failure }
                    manifest = nil
                }
                if manifest?.describes(key: backup.key.key, bytes: backup.size) != true { mismatched.insert(backup.key.key) }
                vouched = manifest.map { BackupCatalog.vouches($0, for: backup) } ?? false
            }
            candidates.append(RetentionCandidate(
                key: backup.key.key, timestamp: backup.key.timestamp, size: backup.size, verified: trust != nil && vouched && !marked, vouched: vouched, marked: marked))
        }
        let marks = Set(listed.filter(\.hasMark).map(\.key.markKey))
        func inspection(_ failed: [String]) -> Inspection {
            Inspection(candidates: candidates, failedManifests: failed, marks: marks, softDeleted: softDeleted)
        }
        let horizon = catalog.futureHorizon
        let newestFirst = candidates.indices
            .filter { candidates[$0].timestamp <= horizon }
            .sorted { RetentionCandidate.newestFirst(candidates[$0], candidates[$1]) }
        if trust != nil {
            // Every manifest was read above (the planner's newest-verified brake takes the newest signed one).
            return inspection(newestFirst.map { candidates[$0].key }.filter(mismatched.contains))
        }
        var failedManifests: [String] = []
        for index in newestFirst {
            let candidate = candidates[index]
            let manifestKey = candidate.key + BackupKey.manifestSuffix
            guard manifestKeys.contains(manifestKey) else { continue }
            // Listed, so a failure to read it is the store's (a 404 included), and stops the tenant's deletions.
            let data = try await client.get(key: manifestKey, limit: 4 << 20)
            guard let manifest = try? BackupManifest.decode(Data(buffer: data)),
                  manifest.describes(key: candidate.key, bytes: candidate.size)
            else {
                failedManifests.append(candidate.key)
                continue
            }
            candidates[index] = RetentionCandidate(key: candidate.key, timestamp: candidate.timestamp, size: candidate.size, verified: true, vouched: true)
            break
        }
        return inspection(failedManifests)
    }

    /// Plans and, unless `dryRun` or a brake says no, deletes the expired backups of `tenant`.
    ///
    /// `listed` and `uploads`: the tenant's backups and the bucket's incomplete uploads from listings already
    /// made (a cycle's, taken before its backups: what they miss is newer, and is kept); `nil` lists them.
    public func run(
        tenant: String, trigger: RetentionTrigger, force: Bool = false, dryRun: Bool = false,
        listed: [BackupCatalog.ListedBackup]? = nil, uploads: [S3MultipartUpload]? = nil
    ) async throws(S3Error) -> RetentionOutcome {
        var log = logger
        log[metadataKey: BackupSchema.tenant(tenant).metadataKey] = "\(tenant)"
        let inspection = try await inspect(tenant: tenant, listed: listed)
        let (candidates, failedManifests, marks) = (inspection.candidates, inspection.failedManifests, inspection.marks)
        let current = now()
        let plan = RetentionPlanner.plan(candidates, policy: settings.policy, now: current)
        var warnings: [String] = []
        // Soft deletes whose grace passed are purged; never while no backup the tenant keeps is verified
        // (then the deleted ones may be all that is left of it).
        let due = inspection.softDeleted.filter { $0.deletion.isDue(at: current) }
        let purges = trust == nil || plan.kept.contains(where: \.candidate.verified) ? due : []
        if purges.isEmpty, !due.isEmpty {
            warnings.append(
                "\(due.count) backup(s) deleted through the API are past their grace but kept: no other backup of the tenant is verified; "
                    + "back the tenant up, or undelete one")
            log.warning("soft-deleted backups kept: no verified backup is kept", metadata: ["due": "\(due.count)"])
        }
        let softDeleted = inspection.softDeleted.map(\.backup.key.key).filter { key in !purges.contains { $0.backup.key.key == key } }
        func outcome(_ status: RetentionOutcome.Status, deleted: [String] = [], failed: [String] = [], aborted: [String] = [], dryRun: Bool, purged: [String] = [])
            -> RetentionOutcome
        {
            var result = RetentionOutcome(
                schema: .tenant(tenant), status: status, plan: plan, deletedKeys: deleted, failedKeys: failed, abortedUploads: aborted, dryRun: dryRun, warnings: warnings)
            result.purged = purged
            result.softDeleted = softDeleted
            return result
        }
        if let newest = plan.decisions.first(where: { !$0.reasons.contains(.future) }), failedManifests.contains(newest.candidate.key) {
            let warning = "the newest backup (\(newest.candidate.key)) does not match its manifest (another key or size, or unreadable); "
                + "it is kept, but check it before relying on it"
            log.warning("newest backup fails manifest verification", metadata: ["s3_key": "\(newest.candidate.key)"])
            warnings.append(warning)
        }
        for decision in plan.decisions {
            log.trace(
                "retention decision",
                metadata: ["s3_key": "\(decision.candidate.key)", "keep": "\(decision.keep)", "reasons": "\(decision.reasons.map(\.rawValue).joined(separator: ","))"])
        }
        func refused(_ refusal: RetentionRefusal) -> RetentionOutcome {
            log.warning("retention refused", metadata: ["reason": "\(refusal)"])
            return outcome(.refused(refusal), dryRun: dryRun)
        }
        switch trigger {
        case .afterBackup(let succeeded):
            if !succeeded { return refused(.backupFailed) }
        case .manual:
            let planned = plan.decisions.filter { !$0.reasons.contains(.future) }
            if !force {
                guard let newest = planned.first else { return refused(.noBackups) }
                let age = current.timeIntervalSince(newest.candidate.timestamp)
                if age > Double(settings.maxNewestAge.components.seconds) {
                    return refused(.newestTooOld(key: newest.candidate.key, age: .seconds(Int64(age)), limit: settings.maxNewestAge))
                }
            }
        }
        let toDelete = plan.deleted
        let fraction = candidates.isEmpty ? 0 : Double(toDelete.count) / Double(candidates.count)
        if !force, fraction > settings.maxDeleteFraction {
            return refused(.tooManyDeletions(planned: toDelete.count, of: candidates.count, limit: settings.maxDeleteFraction))
        }

        // Incomplete multipart uploads of this tenant, older than the grace period: never visible, never backups.
        let folder = BackupKey.folder(prefix: prefix, of: .tenant(tenant))
        var aborted: [String] = []
        let grace = Double(settings.incompleteUploadGrace.components.seconds)
        let incomplete: [S3MultipartUpload]
        if let uploads { incomplete = uploads.filter { $0.key.hasPrefix(folder) } } else { incomplete = try await client.incompleteUploads(prefix: folder) }
        for upload in incomplete {
            guard let initiated = upload.initiated, current.timeIntervalSince(initiated) > grace else { continue }
            if !dryRun { try await client.abortUpload(key: upload.key, uploadId: upload.uploadId) }
            aborted.append(upload.key)
        }

        guard !dryRun else {
            return outcome(.applied, aborted: aborted, dryRun: true, purged: purges.map(\.backup.key.key))
        }
        // Each backup goes with its manifest; every key is re-checked to lie in the tenant's folder.
        var keys: [String] = []
        for decision in toDelete {
            let key = decision.candidate.key
            precondition(key.hasPrefix(folder), "retention planned a key outside the tenant's folder")
            keys.append(key)
            keys.append(key + BackupKey.manifestSuffix)
            if marks.contains(key + BackupKey.markSuffix) { keys.append(key + BackupKey.markSuffix) }
        }
        for purge in purges {
            let backup = purge.backup
            precondition(backup.key.key.hasPrefix(folder), "a purge named a key outside the tenant's folder")
            keys.append(backup.key.key)
            if backup.hasManifest { keys.append(backup.key.manifestKey) }
            if backup.hasMark { keys.append(backup.key.markKey) }
            keys.append(backup.key.deletionKey)
        }
        // Every deletion is on the audit trail before it happens; a record that cannot be stored stops them all.
        if let audit {
            for decision in toDelete {
                try await audit.write(AuditRecord(
                    action: .retentionDelete, tenant: tenant, key: decision.candidate.key, outcome: .ok, actor: actor,
                    detail: "expired by the retention policy", time: current))
            }
            for purge in purges {
                try await audit.write(AuditRecord(
                    action: .purge, tenant: tenant, key: purge.backup.key.key, outcome: .ok, actor: actor,
                    detail: "deleted through the API by \(purge.deletion.deletedBy) on \(BackupAccess.isoformat(purge.deletion.deletedAt)); "
                        + "the grace ended \(BackupAccess.isoformat(purge.deletion.purgeAfter))",
                    time: current))
            }
        }
        var deleted: [String] = []
        var failed: [String] = []
        if !keys.isEmpty {
            let result = try await client.delete(keys: keys)
            deleted = result.deleted
            failed = result.failures.map(\.key)
            for failure in result.failures {
                log.error("retention could not delete a key", metadata: ["s3_key": "\(failure.key)", "code": "\(failure.code)"])
            }
        }
        for decision in toDelete {
            log.info("backup deleted by retention", metadata: ["s3_key": "\(decision.candidate.key)", "bytes": "\(decision.candidate.size)"])
        }
        for purge in purges {
            log.notice("backup deleted through the API purged after its grace", metadata: ["s3_key": "\(purge.backup.key.key)", "deleted_by": "\(purge.deletion.deletedBy)"])
        }
        BackupMetrics.recordDeletions(toDelete.count + purges.count)
        if let audit {
            // The trail's own expiry: best effort, it never stops retention.
            do throws(S3Error) {
                let pruned = try await audit.pruneExpired(tenant: tenant, now: current)
                if pruned > 0 { log.info("expired audit records deleted", metadata: ["count": "\(pruned)", "retention_days": "\(audit.retentionDays)"]) }
            } catch {
                log.warning("expired audit records could not be deleted", metadata: ["error": "\(error)"])
            }
        }
        log.info(
            "retention applied",
            metadata: ["kept": "\(plan.kept.count)", "deleted": "\(toDelete.count)", "purged": "\(purges.count)", "aborted_uploads": "\(aborted.count)"])
        return outcome(.applied, deleted: deleted, failed: failed, aborted: aborted, dryRun: false, purged: purges.map(\.backup.key.key))
    }
}

/// Another tenant-backup holds the tenant's advisory lock.
public struct TenantBusyError: Error, CustomStringConvertible {
    public let tenant: String
    public var description: String {
        "\(BackupSchema.tenant(tenant)): another tenant-backup (on this or another host) is working on this tenant; try again when it is done"
    }
}

extension RetentionRunner {
    /// ``run(tenant:trigger:force:dryRun:)`` under the tenant's advisory lock, so a manual
    /// prune never races a backup or a prune of the same tenant on another host. A dry run needs no lock.
    public func runLocked(
        tenant: String, trigger: RetentionTrigger, force: Bool = false, dryRun: Bool = false, postgres: PostgresSettings, environment: [String: String]
    ) async throws -> RetentionOutcome {
        if dryRun { return try await run(tenant: tenant, trigger: trigger, force: force, dryRun: true) }
        guard let lock = try await TenantLock.acquire(.tenant(tenant), connectionString: postgres.connectionString, environment: environment) else {
            throw TenantBusyError(tenant: tenant)
        }
        do {
            let outcome = try await run(tenant: tenant, trigger: trigger, force: force, dryRun: false)
            await lock.release()
            return outcome
        } catch {
            await lock.release()
            throw error
        }
    }
}
