import Foundation
import NIOFoundationCompat

extension BackupAccess {
    /// One backup of a tenant, as `list` shows it.
    public struct ListedBackup: Sendable, Equatable {
        public enum ManifestState: String, Sendable, Equatable {
            /// A manifest beside it names this key and this size (the SHA-256 is checked by `verify`, which reads it all).
            case matches
            /// A manifest is there but names another key or size, or cannot be read.
            case mismatch
            /// No manifest (the old system's backups, or a manifest write that failed).
            case missing
        }

        public let key: BackupKey
        public let size: Int64
        public let lastModified: Date?
        public let storageClass: String?
        public let manifest: ManifestState
        /// The retention rules that keep it (`daily`, `monthly`, `newest`...); empty: the next prune deletes it.
        public let keptBy: [RetentionReason]
        /// The object's plain URL (no signature).
        public let url: String
        /// What its manifest's signature says (`signed by key …`, `unsigned`, ...); `nil` without a manifest.
        public var signature: String? = nil
        /// Why it was marked broken or foreign (by adopt or verify), when a trusted mark says so.
        public var mark: String? = nil
        /// A trusted signature vouches for it and no mark condemns it: what the API serves.
        public var vouched = false
        /// Deleted through the API (a trusted ``DeletionMark``): who deleted it, and when it is purged. The
        /// clinic no longer sees it; only an operator's listing shows it.
        public var deletion: DeletionMark? = nil
    }

    /// A tenant's backups, newest first.
    public struct TenantListing: Sendable, Equatable {
        public let tenant: String
        public let backups: [ListedBackup]

        /// The old API's list answer: `count`, `schema`, `backups[filename, s3_key, size, last_modified,
        /// storage_class, url]` (the `url` unsigned; the storage class `STANDARD` when S3 does not say;
        /// `last_modified` as `2025-10-20T16:20:00.000Z`), and an added `state`: `verified` (the API serves it)
        /// or `unverified`.
        public var oldAPIAnswer: OldAPI.ListAnswer {
            OldAPI.ListAnswer(
                count: backups.count, schema: tenant,
                backups: backups.map { backup in
                    OldAPI.Backup(
                        filename: backup.key.fileName, s3Key: backup.key.key, size: backup.size, lastModified: backup.lastModified.map(BackupAccess.oldAPITime),
                        storageClass: backup.storageClass ?? "STANDARD", url: backup.url,
                        state: backup.deletion != nil ? "deleted" : backup.vouched ? "verified" : "unverified")
                })
        }
    }

    /// The tenant's backups, newest first, each with its manifest's verdict and the retention rule that keeps
    /// it. Audited as one `list` access. A clinic (``Audience/clinic``) does not see the backups it deleted;
    /// an operator sees them with their ``ListedBackup/deletion``, kept by no rule (retention plans without them).
    public func list(tenant: String) async throws(AccessError) -> TenantListing {
        let catalog = try catalog(tenant)
        let client = try client(tenant)
        let listed: [BackupCatalog.ListedBackup]
        do {
            listed = try await catalog.backups(of: .tenant(tenant))
        } catch {
            await auditBestEffort(.list, tenant: tenant, key: nil, outcome: .failed, detail: "\(error)")
            throw AccessError(tenant: tenant, .storage(error))
        }
        if listed.isEmpty, case .unknownTenant = try await emptyTenant(tenant, missing: String?.none) {
            await auditBestEffort(.list, tenant: tenant, key: nil, outcome: .refused, detail: "no such tenant")
            throw AccessError(tenant: tenant, .unknownTenant)
        }
        var states: [BackupKey: ListedBackup.ManifestState] = [:]
        var signatures: [BackupKey: String] = [:]
        var marks: [BackupKey: String] = [:]
        var signed: Set<BackupKey> = []
        var deletions: [BackupKey: DeletionMark] = [:]
        let trust = context.manifestTrust()
        for backup in listed {
            if backup.hasDeletion, let deletion = await DeletionMark.read(for: backup, from: client, trust: trust) { deletions[backup.key] = deletion }
            if backup.hasMark, let mark = await BackupMark.read(for: backup, from: client, trust: trust) {
                marks[backup.key] = "\(mark.markedBy), \(BackupAccess.isoformat(mark.markedAt)): \(mark.reason)"
            }
            guard backup.hasManifest else {
                states[backup.key] = .missing
                continue
            }
            let manifest = try? BackupManifest.decode(Data(buffer: await client.get(key: backup.key.manifestKey, limit: 4 << 20)))
            states[backup.key] = manifest?.describes(key: backup.key.key, bytes: backup.size) == true ? .matches : .mismatch
            if let manifest { signatures[backup.key] = trust.verdict(for: manifest).summary }
            if let manifest, states[backup.key] == .matches, trust.verdict(for: manifest).isTrusted { signed.insert(backup.key) }
        }
        // As retention plans it: only a signed manifest vouches for a backup.
        let candidates = listed.filter { deletions[$0.key] == nil }.map {
            RetentionCandidate(
                key: $0.key.key, timestamp: $0.key.timestamp, size: $0.size, verified: signed.contains($0.key) && marks[$0.key] == nil,
                vouched: signed.contains($0.key), marked: marks[$0.key] != nil)
        }
        let plan = RetentionPlanner.plan(candidates, policy: context.settings.retention.policy, now: now())
        var reasons: [String: [RetentionReason]] = [:]
        for decision in plan.decisions { reasons[decision.candidate.key] = decision.keep ? decision.reasons : [] }
        let backups = listed
            .filter { audience == .operator || deletions[$0.key] == nil }
            .sorted { $0.key.timestamp != $1.key.timestamp ? $0.key.timestamp > $1.key.timestamp : $0.key.key > $1.key.key }
            .map { backup in
                ListedBackup(
                    key: backup.key, size: backup.size, lastModified: backup.lastModified, storageClass: backup.storageClass,
                    manifest: states[backup.key] ?? .missing, keptBy: reasons[backup.key.key] ?? [],
                    url: client.endpoint.url(path: client.endpoint.path(key: backup.key.key), query: []), signature: signatures[backup.key],
                    mark: marks[backup.key], vouched: signed.contains(backup.key) && marks[backup.key] == nil, deletion: deletions[backup.key])
            }
        try await audit(.list, tenant: tenant, key: nil, detail: "\(backups.count) backups")
        return TenantListing(tenant: tenant, backups: backups)
    }

    /// One tenant in the overview of every tenant.
    public struct TenantSummary: Sendable, Equatable {
        public let tenant: String
        public let backups: Int
        public let newest: BackupKey?
        public let totalBytes: Int64
        /// No backup, or the newest is older than `metrics.stale_after`.
        public let stale: Bool
        /// The database's tenant selection lists it.
        public let inDatabase: Bool
        /// It has a folder in the bucket.
        public let inBucket: Bool
    }

    /// Every tenant of the database and every tenant folder of the bucket, from one listing: the clinics with
    /// no backup at all and the folders whose tenant no longer exists show up too. Names and counts only; no
    /// tenant's backups are read, so it is not audited per tenant.
    public func overview() async throws(AccessError) -> [TenantSummary] {
        let catalog = try catalog("")
        let all: [BackupCatalog.ListedBackup]
        do {
            all = try await catalog.allBackups(area: .tenant)
        } catch {
            throw AccessError(tenant: "", .storage(error))
        }
        let discovered: [String]
        do throws(ContextError) {
            discovered = try await context.inspectDatabase().discovered.tenants
        } catch {
            throw AccessError(tenant: "", .database(error.description))
        }
        let horizon = catalog.futureHorizon
        let bySchema = Dictionary(grouping: all, by: \.key.schema)
        let staleBefore = now().addingTimeInterval(-Double(context.settings.metrics.staleAfter.components.seconds))
        return Set(discovered).union(bySchema.keys).sorted().map { tenant in
            let backups = bySchema[tenant] ?? []
            let newest = backups.map(\.key).filter { $0.timestamp <= horizon }.max { $0.timestamp < $1.timestamp }
            return TenantSummary(
                tenant: tenant, backups: backups.count, newest: newest, totalBytes: backups.reduce(0) { $0 + $1.size },
                stale: newest.map { $0.timestamp < staleBefore } ?? true, inDatabase: discovered.contains(tenant), inBucket: !backups.isEmpty)
        }
    }
}
