import Foundation

/// A durable mark beside an object that `adopt` or `verify` proved broken or foreign
/// (`<key>.rejected.json`): list, verify, downloads, restores and retention read it, so a bad object is never
/// served, restored or kept in place of a good backup, and later runs do not have to find it out again.
///
/// A mark counts only when a trusted key signed it (``ManifestTrust``): a bucket writer's mark on a good
/// backup is ignored, so marks cannot be used to steer retention into deleting good backups.
public struct BackupMark: SignedSidecar, Equatable {
    public var markVersion = 1
    /// The object marked, with the size and SHA-256 it had when it was proved bad (a mark does not carry over
    /// to another object put at the same key).
    public var key: String
    public var bytes: Int64
    public var sha256: String
    /// What was wrong with it, in words.
    public var reason: String
    /// `adopt` or `verify`.
    public var markedBy: String
    public var markedAt: Date
    public var signature: ManifestSignature?

    public init(key: String, bytes: Int64, sha256: String, reason: String, markedBy: String, markedAt: Date) {
        self.key = key
        self.bytes = bytes
        self.sha256 = sha256
        self.reason = reason
        self.markedBy = markedBy
        self.markedAt = Date(timeIntervalSince1970: markedAt.timeIntervalSince1970.rounded(.down))
    }

    enum CodingKeys: String, CodingKey {
        case markVersion = "mark_version"
        case key, bytes, sha256, reason
        case markedBy = "marked_by"
        case markedAt = "marked_at"
        case signature
    }

    public static let suffix = BackupKey.markSuffix

    /// The text the signature covers.
    public var signingText: String {
        [
            "tenant-backup mark signature v1", "mark_version=\(markVersion)", "key=\(Self.escaped(key))", "bytes=\(bytes)",
            "sha256=\(Self.escaped(sha256))", "reason=\(Self.escaped(reason))", "marked_by=\(Self.escaped(markedBy))",
            "marked_at=\(Int64(markedAt.timeIntervalSince1970))",
        ].joined(separator: "\n") + "\n"
    }

    /// The mark of `backup` that counts, or `nil` (none, unreadable, unsigned, or not this object's).
    public static func read(for backup: BackupCatalog.ListedBackup, from store: any ObjectStore, trust: ManifestTrust) async -> BackupMark? {
        (try? await checkedRead(for: backup, from: store, trust: trust)) ?? nil
    }

    /// ``read(for:from:trust:)``, with the store's failure to answer for a listed mark thrown.
    public static func checkedRead(for backup: BackupCatalog.ListedBackup, from store: any ObjectStore, trust: ManifestTrust) async throws(S3Error) -> BackupMark? {
        guard backup.hasMark else { return nil }
        return try await checkedRead(backup.key, size: backup.size, from: store, trust: trust)
    }
}
