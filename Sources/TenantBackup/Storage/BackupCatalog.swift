import Foundation

/// What the bucket says about backups, from listings alone (no manifest is read): the newest backup of
/// one tenant, or of every tenant in one pass over `<prefix>backups/`.
///
/// The bucket, not this process's memory, is the truth: it is right with several hosts and after a
/// restart. Only keys that parse as ours count; an object becomes visible only once complete, so every
/// key listed is a finished backup.
public struct BackupCatalog: Sendable {
    public let client: S3Client
    public let prefix: String

    public init(client: S3Client, prefix: String) {
        self.client = client
        self.prefix = prefix
    }

    /// The newest backup of one schema, or `nil` when it has none.
    public func newest(area: BackupKey.Area = .tenant, schema: String) async throws(S3Error) -> BackupKey? {
        let folder = BackupKey.folder(prefix: prefix, area: area, schema: schema)
        var newest: BackupKey?
        for object in try await client.listObjects(prefix: folder).collect() {
            guard let key = BackupKey.parse(object.key, prefix: prefix), key.area == area, key.schema == schema, key.folder == folder else { continue }
            if newest.map({ key.timestamp > $0.timestamp }) ?? true { newest = key }
        }
        return newest
    }

    /// The newest backup of every tenant that has one, from one listing of `<prefix>backups/`.
    public func newestOfEveryTenant() async throws(S3Error) -> [String: BackupKey] {
        var newest: [String: BackupKey] = [:]
        for object in try await client.listObjects(prefix: "\(prefix)\(BackupKey.Area.tenant.rawValue)/").collect() {
            guard let key = BackupKey.parse(object.key, prefix: prefix), key.area == .tenant else { continue }
            if newest[key.schema].map({ key.timestamp > $0.timestamp }) ?? true { newest[key.schema] = key }
        }
        return newest
    }
}
