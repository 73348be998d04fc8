import Foundation

/// A soft delete (`<key>.deleted.json`): a clinic deleted this backup through the API. From then on the clinic
/// no longer sees it (list, download, get-url, delete answer as if it were gone), retention plans as if it
/// were gone (it never holds a period's place), and it stays in the bucket until ``purgeAfter``, when the
/// next retention run deletes it for good. Until then an operator can bring it back (`tenant-backup
/// undelete`), which removes the mark.
///
/// Signed like every sidecar: a bucket writer's mark is ignored (the backup stays visible and planned), so
/// a forged mark can never make tenant-backup purge a good backup.
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

    /// The deletion of `backup` that counts, or `nil` (none, unreadable, unsigned, or not this object's).
    public static func read(for backup: BackupCatalog.ListedBackup, from store: any ObjectStore, trust: ManifestTrust) async -> DeletionMark? {
        guard backup.hasDeletion else { return nil }
        return await read(backup.key, size: backup.size, from: store, trust: trust)
    }

    /// Whether the grace has passed at `now`.
    public func isDue(at now: Date) -> Bool { now >= purgeAfter }
}
