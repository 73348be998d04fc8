import Foundation

/// The manifest written beside each backup object (`<key>.manifest.json`), once the object is complete:
/// what verification and restore need to know about it.
///
/// A backup without a manifest (the old system's, or one whose manifest write failed) is still a backup.
public struct BackupManifest: Codable, Sendable, Equatable {
    /// Whether this manifest describes the object `key` of `bytes` bytes: it names that very key and size. A
    /// manifest copied beside another object, or left from one replaced, does not. Half of the rule that a
    /// manifest vouches for an object (``BackupCatalog/vouches(_:for:trust:)`` adds the signature).
    public func describes(key: String, bytes: Int64) -> Bool {
        self.key == key && self.bytes == bytes
    }

    public var manifestVersion: Int = 1
    /// `tenant` or `shared`.
    public var area: String
    /// The schema dumped (for a tenant, its name).
    public var schema: String
    public var key: String
    /// Bytes stored (after compression).
    public var bytes: Int64
    /// Hex SHA-256 of the stored bytes.
    public var sha256: String
    /// Bytes pg_dump wrote (before compression).
    public var dumpBytes: Int64
    public var compression: String
    /// `null` until client-side encryption exists; then the recipients' fingerprints.
    public var encryption: String?
    /// The server-side encryption the store confirmed for the object (`AES256`, `aws:kms`); absent when none
    /// was asked (or for a manifest written before stores were asked to confirm it).
    public var serverSideEncryption: String?
    /// `plain` or `custom`.
    public var format: String
    public var pgDumpVersion: String
    public var serverVersion: String
    public var toolVersion: String
    public var startedAt: Date
    public var finishedAt: Date
    /// The shared-schema backups of the same cycle: restore into a fresh database applies them first.
    public var sharedBackups: [String]
    /// Rows per table, counted from the COPY blocks of a plain dump; `null` for the custom format.
    public var tableRowCounts: [String: Int64]?
    /// `true` for a manifest `adopt` wrote afterwards for a backup made without one (the old system's);
    /// absent otherwise.
    public var adopted: Bool?
    /// The backup host's signature over ``signingText`` (``SigningKey``); `nil` for a manifest written before
    /// signing existed (or without a key): only `--trust-unsigned` restores from such a one.
    public var signature: ManifestSignature?

    /// The object's format as this manifest records it (``BackupFormat``), or `nil` when it names none of ours.
    public var backupFormat: BackupFormat? { BackupFormat(manifestFormat: format, compression: compression, encryption: encryption) }

    public init(
        area: String, schema: String, key: String, bytes: Int64, sha256: String, dumpBytes: Int64, compression: String,
        encryption: String?, format: String, pgDumpVersion: String, serverVersion: String, toolVersion: String,
        startedAt: Date, finishedAt: Date, sharedBackups: [String], tableRowCounts: [String: Int64]?
    ) {
        self.area = area
        self.schema = schema
        self.key = key
        self.bytes = bytes
        self.sha256 = sha256
        self.dumpBytes = dumpBytes
        self.compression = compression
        self.encryption = encryption
        self.format = format
        self.pgDumpVersion = pgDumpVersion
        self.serverVersion = serverVersion
        self.toolVersion = toolVersion
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.sharedBackups = sharedBackups
        self.tableRowCounts = tableRowCounts
    }

    enum CodingKeys: String, CodingKey {
        case manifestVersion = "manifest_version"
        case area, schema, key, bytes, sha256
        case dumpBytes = "dump_bytes"
        case compression, encryption, format
        case pgDumpVersion = "pg_dump_version"
        case serverVersion = "server_version"
        case toolVersion = "tool_version"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case sharedBackups = "shared_backups"
        case tableRowCounts = "table_row_counts"
        case adopted
        case signature
        case serverSideEncryption = "server_side_encryption"
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(self)
    }

    public static func decode(_ data: Data) throws -> BackupManifest {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(BackupManifest.self, from: data)
    }
}
