import Foundation
import Logging

/// What the bucket says about backups, from listings alone (no manifest is read): the newest backup of
/// one tenant, or of every tenant in one pass over `<prefix>backups/`.
///
/// The bucket, not this process's memory, is the truth: it is right with several hosts and after a
/// restart. Only keys that parse as ours count; an object becomes visible only once complete, so every
/// key listed is a finished backup.
///
/// A key dated in the future (beyond the clock-skew allowance), as a host with a wrong clock writes it, is
/// never "the newest backup": it would make a tenant look backed up until that date, so the slot check,
/// catch-up and the freshness metrics would all stay silent. Such keys are logged with a warning and counted
/// in `tenant_backup_future_dated_backups{tenant}`; retention leaves them out of planning and keeps them.
public struct BackupCatalog: Sendable {
    public let client: any ObjectStore
    public let prefix: String
    public var logger: Logger
    /// The clock "future" is measured against.
    public var now: @Sendable () -> Date
    public var clockSkewAllowance: TimeInterval
    /// The manifests already read (the context's: the slot check, catch-up, freshness and retention share them).
    public var manifests = ManifestCache()

    public init(
        client: any ObjectStore, prefix: String, logger: Logger = Logger(label: "tenant-backup", factory: { _ in SwiftLogNoOpLogHandler() }),
        now: @escaping @Sendable () -> Date = { Date() }, clockSkewAllowance: TimeInterval = RetentionPlanner.defaultClockSkewAllowance
    ) {
        self.client = client
        self.prefix = prefix
        self.logger = logger
        self.now = now
        self.clockSkewAllowance = clockSkewAllowance
    }

    /// Lists one key of the tenants' root: proof that the bucket exists and these credentials may list it.
    public func checkListable() async throws(S3Error) {
        _ = try await client.list(prefix: StorageLayout(prefix: prefix).tenantsRoot, limit: 1)
    }

    /// One backup as a listing shows it.
    public struct ListedBackup: Sendable, Equatable {
        public let key: BackupKey
        /// The stored object's size.
        public let size: Int64
        /// Whether `<key>.manifest.json` is beside it (not yet whether it vouches for it).
        public let hasManifest: Bool
        /// The ETag the listing gives `<key>.manifest.json` (``ManifestCache`` reads a manifest again when it changes).
        public var manifestETag: String? = nil
        /// The size the listing gives `<key>.manifest.json`: a read that returns another length is not the
        /// stored manifest (a store that cut its answer short), never "a manifest that does not vouch".
        public var manifestSize: Int64? = nil
        /// Whether `<key>.rejected.json` is beside it (not yet whether it counts: ``BackupMark/read(for:from:trust:)``).
        public var hasMark: Bool = false
        /// Whether `<key>.deleted.json` is beside it (not yet whether it counts: ``DeletionMark/read(for:from:trust:)``).
        public var hasDeletion: Bool { deletionStored != nil }
        /// When the store says `<key>.deleted.json` was written (`.distantPast` when it does not say).
        public var deletionStored: Date? = nil
        /// When S3 stored it, and in which storage class, as the listing says.
        public var lastModified: Date? = nil
        public var storageClass: String? = nil
    }

    /// The backups of one schema: every object of its folder whose key parses as one of its backups, and
    /// nothing else (sidecar files, other schemas' keys).
    public func backups(of schema: BackupSchema) async throws(S3Error) -> [ListedBackup] {
        let folder = BackupKey.folder(prefix: prefix, area: schema.area, schema: schema.name)
        return try await listed(under: folder).filter { $0.key.owner == schema && $0.key.folder == folder }
    }

    /// Every tenant's backups from one listing of `<prefix>backups/`, by tenant, each filtered as
    /// ``backups(of:)`` filters its folder: what one cycle decides from (the slot check, the new key's
    /// second, retention) instead of one or two listings a tenant.
    public func backupsOfEveryTenant() async throws(S3Error) -> [String: [ListedBackup]] {
        var byTenant: [String: [ListedBackup]] = [:]
        for backup in try await allBackups(area: .tenant) {
            let schema = backup.key.owner
            guard backup.key.folder == BackupKey.folder(prefix: prefix, area: schema.area, schema: schema.name) else { continue }
            byTenant[schema.name, default: []].append(backup)
        }
        return byTenant
    }

    /// The backups of every schema of an area (`backups/` or `shared/`), from one listing.
    public func allBackups(area: BackupKey.Area) async throws(S3Error) -> [ListedBackup] {
        let layout = StorageLayout(prefix: prefix)
        return try await listed(under: layout.root(of: area)).filter { $0.key.area == area }
    }

    private func listed(under folder: String) async throws(S3Error) -> [ListedBackup] {
        let objects = try await client.list(prefix: folder, limit: nil)
        let manifests = Dictionary(
            objects.compactMap { object in BackupKey.parseManifest(object.key, prefix: prefix).map { ($0.key, object) } }, uniquingKeysWith: { first, _ in first })
        func sidecars(_ suffix: String) -> Set<String> { Set(objects.filter { $0.key.hasSuffix(suffix) }.map { String($0.key.dropLast(suffix.count)) }) }
        let marks = sidecars(BackupKey.markSuffix)
        let deletions = Dictionary(
            objects.filter { $0.key.hasSuffix(BackupKey.deletionSuffix) }.map { (String($0.key.dropLast(BackupKey.deletionSuffix.count)), $0.lastModified ?? .distantPast) },
            uniquingKeysWith: { first, _ in first })
        return objects.compactMap { object in
            BackupKey.parse(object.key, prefix: prefix).map {
                ListedBackup(
                    key: $0, size: object.size, hasManifest: manifests[$0.key] != nil, manifestETag: manifests[$0.key]?.eTag,
                    manifestSize: manifests[$0.key]?.size, hasMark: marks.contains($0.key),
                    deletionStored: deletions[$0.key], lastModified: object.lastModified,
                    storageClass: object.storageClass)
            }
        }
    }

    /// A backup named later than this is dated in the future (a host with a wrong clock, or a planted name):
    /// it never counts as the newest, and `adopt` leaves it alone.
    public var futureHorizon: Date { now().addingTimeInterval(clockSkewAllowance) }

    /// The newest backup of one schema that is not dated in the future, or `nil` when it has none.
    public func newest(of schema: BackupSchema) async throws(S3Error) -> BackupKey? {
        newest(among: try await backups(of: schema), schema: schema)
    }

    /// From one listing: the schema's newest backup (any, for a new key's second) and its newest vouched one
    /// (``newestVouched(of:trust:)``, for "backed up in this slot").
    public func newestAndNewestVouched(of schema: BackupSchema, trust: ManifestTrust) async throws(S3Error) -> (newest: BackupKey?, vouched: BackupKey?) {
        try await newestAndNewestVouched(among: try await backups(of: schema), schema: schema, trust: trust)
    }

    /// ``newestAndNewestVouched(of:trust:)`` from a listing already made (the schema's backups only).
    public func newestAndNewestVouched(among listed: [ListedBackup], schema: BackupSchema, trust: ManifestTrust) async throws(S3Error)
        -> (newest: BackupKey?, vouched: BackupKey?)
    {
        (newest(among: listed, schema: schema), try await newestVouched(among: listed, trust: trust)[schema.name])
    }

    func newest(among backups: [ListedBackup], schema: BackupSchema) -> BackupKey? {
        let horizon = futureHorizon
        var newest: BackupKey?
        var future: [BackupKey] = []
        for backup in backups {
            let key = backup.key
            if key.timestamp > horizon {
                future.append(key)
                continue
            }
            if newest.map({ key.timestamp > $0.timestamp }) ?? true { newest = key }
        }
        warn(about: future, schema: schema)
        return newest
    }

    /// Whether `manifest` vouches for `backup`: it names this very key and size, and a trusted key signed it.
    /// The one rule for "this object is one of our backups"; a trusted mark beside it still condemns it.
    public static func vouches(_ manifest: BackupManifest, for backup: ListedBackup, trust: ManifestTrust) -> Bool {
        vouches(ManifestCache.Entry(manifest, verdict: trust.verdict(for: manifest)), for: backup)
    }

    /// ``vouches(_:for:trust:)`` for a manifest as ``ManifestCache`` keeps it (judged when it was read).
    public static func vouches(_ manifest: ManifestCache.Entry, for backup: ListedBackup) -> Bool {
        manifest.describes(key: backup.key.key, bytes: backup.size) && manifest.verdict.isTrusted
    }

    /// How many manifests are read, newest first, to find a schema's newest vouched backup: past that many
    /// objects that are not (a bucket writer's), the schema counts as having none, and is backed up.
    public static let vouchedSearchLimit = 8

    /// The newest backup of `schema` (not future-dated) that a signed manifest vouches for and no trusted
    /// mark condemns: what the slot check and shared-dump reuse count as "backed up". An object a bucket
    /// writer put there, with no manifest or one we did not sign, never makes a schema look backed up.
    public func newestVouched(of schema: BackupSchema, trust: ManifestTrust) async throws(S3Error) -> BackupKey? {
        try await newestVouched(among: try await backups(of: schema), trust: trust)[schema.name]
    }

    /// ``newestVouched(of:trust:)`` for every tenant, from one listing of `<prefix>backups/` (one manifest
    /// read per tenant in the usual case): what catch-up and the freshness metrics count.
    /// Also sets `tenant_backup_future_dated_backups` for every tenant found, as ``newestOfEveryTenant()``.
    public func newestVouchedOfEveryTenant(trust: ManifestTrust) async throws(S3Error) -> [String: BackupKey] {
        let all = try await allBackups(area: .tenant)
        recordFutureDated(all)
        manifests.keepOnly(Set(all.filter(\.hasManifest).map(\.key.manifestKey)), under: StorageLayout(prefix: prefix).root(of: .tenant))
        return try await newestVouched(among: all, trust: trust)
    }

    /// Warns about and counts each tenant's future-dated keys (zero for a tenant with none).
    private func recordFutureDated(_ backups: [ListedBackup]) {
        let horizon = futureHorizon
        var future: [String: [BackupKey]] = [:]
        for backup in backups { future[backup.key.schema, default: []].append(contentsOf: backup.key.timestamp > horizon ? [backup.key] : []) }
        for (tenant, keys) in future {
            warn(about: keys, schema: .tenant(tenant))
            BackupMetrics.recordFutureDated(tenant: tenant, count: keys.count)
        }
    }

    /// The newest vouched backup of each schema among `backups`, reading manifests newest first: at most
    /// `searchLimit` per schema (`nil`: until one vouches). A manifest the store does not answer for counts as
    /// not vouching, unless `strict` (what a read picks must not silently fall back to an older backup): then
    /// the store's failure is thrown.
    func newestVouched(
        among backups: [ListedBackup], trust: ManifestTrust, searchLimit: Int? = BackupCatalog.vouchedSearchLimit, strict: Bool = false
    ) async throws(S3Error) -> [String: BackupKey] {
        let horizon = futureHorizon
        var found: [String: BackupKey] = [:]
        let bySchema = Dictionary(grouping: backups.filter { $0.hasManifest && $0.size > 0 && $0.key.timestamp <= horizon }, by: \.key.schema)
        for (schema, listed) in bySchema {
            for backup in listed.sorted(by: { $0.key.timestamp > $1.key.timestamp }).prefix(searchLimit ?? listed.count) {
                let manifest: ManifestCache.Entry?
                do {
                    manifest = try await manifests.read(backup.key.manifestKey, eTag: backup.manifestETag, size: backup.manifestSize, from: client, trust: trust)
                } catch {
                    if strict, let failure = error.unanswered { throw failure }
                    manifest = nil
                }
                guard let manifest, Self.vouches(manifest, for: backup) else {
                    logger.warning(
                        "a backup's manifest does not vouch for it; it does not count as backed up",
                        metadata: ["tenant": "\(schema)", "s3_key": "\(backup.key.key)"])
                    continue
                }
                if backup.hasMark, await BackupMark.read(for: backup, from: client, trust: trust) != nil { continue }
                found[schema] = backup.key
                break
            }
        }
        return found
    }

    /// The newest backup of every tenant that has one (future-dated keys left out), from one listing of
    /// `<prefix>backups/`. Also sets `tenant_backup_future_dated_backups` for every tenant found.
    public func newestOfEveryTenant() async throws(S3Error) -> [String: BackupKey] {
        let horizon = futureHorizon
        var newest: [String: BackupKey] = [:]
        let all = try await allBackups(area: .tenant)
        for backup in all where backup.key.timestamp <= horizon {
            let key = backup.key
            if newest[key.schema].map({ key.timestamp > $0.timestamp }) ?? true { newest[key.schema] = key }
        }
        recordFutureDated(all)
        return newest
    }

    private func warn(about future: [BackupKey], schema: BackupSchema) {
        for key in future.sorted(by: { $0.timestamp > $1.timestamp }) {
            logger.warning(
                "backup key dated in the future (written by a host with a wrong clock?); it does not count as the newest backup",
                metadata: [schema.metadataKey: "\(schema.name)", "s3_key": "\(key.key)"])
        }
    }
}
