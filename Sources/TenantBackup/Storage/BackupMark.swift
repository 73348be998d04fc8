import Foundation

/// A durable mark beside an object that `adopt` or `verify` proved broken or foreign
/// (`<key>.rejected.json`): list, verify, downloads, restores and retention read it, so a bad object is never
/// served, restored or kept in place of a good backup, and later runs do not have to find it out again.
///
/// A mark counts only when a trusted key signed it (``ManifestTrust``): a bucket writer's mark on a good
/// backup is ignored, so marks cannot be used to steer retention into deleting good backups.
public struct BackupMark: Codable, Sendable, Equatable {
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

    /// The text the signature covers.
    public var signingText: String {
        func escaped(_ text: String) -> String {
            text.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "\n", with: "%0A").replacingOccurrences(of: "\r", with: "%0D")
        }
        return [
            "tenant-backup mark signature v1", "mark_version=\(markVersion)", "key=\(escaped(key))", "bytes=\(bytes)", "sha256=\(escaped(sha256))",
            "reason=\(escaped(reason))", "marked_by=\(escaped(markedBy))", "marked_at=\(Int64(markedAt.timeIntervalSince1970))",
        ].joined(separator: "\n") + "\n"
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(self)
    }

    public static func decode(_ data: Data) throws -> BackupMark {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(BackupMark.self, from: data)
    }

    /// This mark, signed.
    public func signed(with key: SigningKey) throws -> BackupMark {
        var mark = self
        mark.signature = nil
        mark.signature = try key.signature(for: mark.signingText)
        return mark
    }

    /// Whether a trusted key signed it and it names `key` of `size` bytes.
    public func counts(for key: String, size: Int64, trust: ManifestTrust) -> Bool {
        guard self.key == key, bytes == size, let signature else { return false }
        var unsigned = self
        unsigned.signature = nil
        return trust.verifies(signature, of: unsigned.signingText)
    }

    /// The mark of `backup` that counts, or `nil` (none, unreadable, unsigned, or not this object's).
    public static func read(for backup: BackupCatalog.ListedBackup, from store: any ObjectStore, trust: ManifestTrust) async -> BackupMark? {
        guard backup.hasMark, let data = try? await store.get(key: backup.key.markKey, limit: 1 << 20),
              let mark = try? decode(Data(buffer: data)), mark.counts(for: backup.key.key, size: backup.size, trust: trust)
        else { return nil }
        return mark
    }
}
