import Foundation

/// A soft delete (`<key>.deleted.json`): a clinic deleted this backup through the API. From then on the clinic
/// no longer sees it (list, download, get-url, delete answer as if it were gone), retention plans as if it
/// were gone (it never holds a period's place), and it stays in the bucket until ``purgeAfter``, when the
/// next retention run deletes it for good. Until then an operator can bring it back (`tenant-backup
/// undelete`), which removes the mark.
///
/// Signed like every sidecar: a bucket writer's mark is ignored (the backup stays visible and planned), so
/// a forged mark can never make tenant-backup purge a good backup. And bound to when it was written: a mark
/// counts only while the store's own time of the mark object is within ``writeWindow`` of ``deletedAt``, so a
/// signed mark saved by a bucket writer and put back after an operator's undelete (a replay) counts no more:
/// S3 sets an object's time, no writer can. A store that gives no time makes no mark count (the backups
/// stay visible and kept: the safe side).
public struct DeletionMark: SignedSidecar, Equatable {
    public var markVersion = 1
    /// The backup deleted, and its size when it was.
    public var key: String
    public var bytes: Int64
    /// Who deleted it (the API token's id, or the operator).
    public var deletedBy: String
    public var deletedAt: Date
    /// From then on the next retention run purges it.
    public var purgeAfter: Date
    public var signature: ManifestSignature?

    public static let suffix = BackupKey.deletionSuffix

    public init(key: String, bytes: Int64, deletedBy: String, deletedAt: Date, purgeAfter: Date) {
        self.key = key
        self.bytes = bytes
        self.deletedBy = deletedBy
        self.deletedAt = Date(timeIntervalSince1970: deletedAt.timeIntervalSince1970.rounded(.down))
        self.purgeAfter = Date(timeIntervalSince1970: purgeAfter.timeIntervalSince1970.rounded(.up))
    }

    enum CodingKeys: String, CodingKey {
        case markVersion = "mark_version"
        case key, bytes
        case deletedBy = "deleted_by"
        case deletedAt = "deleted_at"
        case purgeAfter = "purge_after"
        case signature
    }

    public var signingText: String {
        [
            "tenant-backup deletion signature v1", "mark_version=\(markVersion)", "key=\(Self.escaped(key))", "bytes=\(bytes)",
            "deleted_by=\(Self.escaped(deletedBy))", "deleted_at=\(Int64(deletedAt.timeIntervalSince1970))",
            "purge_after=\(Int64(purgeAfter.timeIntervalSince1970))",
        ].joined(separator: "\n") + "\n"
    }

    /// How far the store's time of the mark object may be from ``deletedAt`` (clocks and a slow write).
    public static let writeWindow: TimeInterval = 120

    /// The deletion of `backup` that counts, or `nil` (none, unreadable, unsigned, not this object's, or not
    /// written when it says: a replay).
    public static func read(for backup: BackupCatalog.ListedBackup, from store: any ObjectStore, trust: ManifestTrust) async -> DeletionMark? {
        (try? await checkedRead(for: backup, from: store, trust: trust)) ?? nil
    }

    /// ``read(for:from:trust:)``, with the store's failure to answer for a listed mark thrown (retention must
    /// not take a deleted backup for a live one, nor the other way round, on a 500).
    public static func checkedRead(for backup: BackupCatalog.ListedBackup, from store: any ObjectStore, trust: ManifestTrust) async throws(S3Error) -> DeletionMark? {
        guard let stored = backup.deletionStored, let mark = try await checkedRead(backup.key, size: backup.size, from: store, trust: trust) else { return nil }
        guard abs(stored.timeIntervalSince(mark.deletedAt)) <= writeWindow else { return nil }
        return mark
    }

    /// Whether the grace has passed at `now`.
    public func isDue(at now: Date) -> Bool { now >= purgeAfter }
}
