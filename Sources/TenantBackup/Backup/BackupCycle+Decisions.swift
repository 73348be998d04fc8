import Foundation

/// The cycle's decisions that read the bucket's view and nothing else: whether a schema was backed up in this
/// slot, and whether another host's shared dump stands for this cycle's.
extension BackupCycle {
    /// Whether a tenant's newest backup (future-dated keys already left out by the catalog) was made in this
    /// schedule slot, by another host or an earlier run: then it is not backed up twice.
    static func alreadyBackedUp(newest: BackupKey, slot: Date) -> Bool {
        newest.timestamp >= slot
    }

    /// The schema's backup made in this slot (at or after `slot`, not future-dated, vouched for by a signed
    /// manifest), as the bucket says now: the re-check a tenant gets once its lock is taken. `nil`: back it up.
    static func backupInSlot(of schema: BackupSchema, catalog: BackupCatalog, trust: ManifestTrust, slot: Date) async throws(S3Error) -> BackupKey? {
        try await slotCheck(of: schema, catalog: catalog, trust: trust, slot: slot).inSlot
    }

    /// ``backupInSlot(of:catalog:trust:slot:)``, and the schema's newest backup of any kind from the same
    /// listing (the backup that follows needs it for its key, and need not list again).
    static func slotCheck(of schema: BackupSchema, catalog: BackupCatalog, trust: ManifestTrust, slot: Date) async throws(S3Error)
        -> (inSlot: BackupKey?, newest: BackupKey?)
    {
        try await slotCheck(among: try await catalog.backups(of: schema), of: schema, catalog: catalog, trust: trust, slot: slot)
    }

    /// ``slotCheck(of:catalog:trust:slot:)`` over a listing already made (the schema's backups only).
    static func slotCheck(among listed: [BackupCatalog.ListedBackup], of schema: BackupSchema, catalog: BackupCatalog, trust: ManifestTrust, slot: Date)
        async throws(S3Error) -> (inSlot: BackupKey?, newest: BackupKey?)
    {
        let (newest, vouched) = try await catalog.newestAndNewestVouched(among: listed, schema: schema, trust: trust)
        guard let vouched, alreadyBackedUp(newest: vouched, slot: slot) else { return (nil, newest) }
        return (vouched, newest)
    }

    /// The shared schema's newest dump, and whether this cycle can use it instead of dumping again
    /// (``reusesSharedDump(newest:since:snapshot:)``). A listing that fails reuses nothing.
    static func sharedDumpToReuse(
        of schema: BackupSchema, catalog: BackupCatalog, trust: ManifestTrust, since: Date?, snapshot: String?
    ) async -> (newest: BackupKey?, reuse: Bool) {
        guard let newest = try? await catalog.newestVouched(of: schema, trust: trust) else { return (nil, false) }
        return (newest, reusesSharedDump(newest: newest, since: since, snapshot: snapshot))
    }

    /// Whether another host's shared dump can stand for this cycle's: made within the cycle's window, and only
    /// when the cycle has no snapshot of its own (a dump of another snapshot would not match our tenants).
    static func reusesSharedDump(newest: BackupKey, since: Date?, snapshot: String?) -> Bool {
        guard snapshot == nil, let since else { return false }
        return newest.timestamp >= since
    }
}
