/// The key layout of the bucket, compatible with the system tenant-backup replaces:
///
/// ```
/// <prefix>backups/<tenant>/...   each clinic's backups
/// <prefix>shared/<schema>/...    shared schemas (public)
/// <prefix>audit/<tenant>/...     one record per access to a tenant's backups
/// <prefix>test/                  probe objects written by `tenant-backup doctor`
/// ```
///
/// A backup's own key, its manifest's and its folder are ``BackupKey``'s; ``BackupCatalog`` is the only
/// code that lists them.
public struct StorageLayout: Sendable, Equatable {
    /// Already normalised by the settings: empty or ending in `/`.
    public let prefix: String

    public init(prefix: String) {
        self.prefix = prefix
    }

    /// Every tenant's folder lies under this: `<prefix>backups/`.
    public var tenantsRoot: String { root(of: .tenant) }

    /// Every shared schema's folder lies under this: `<prefix>shared/`.
    public var sharedRoot: String { root(of: .shared) }

    /// Where the backups of an area lie: ``tenantsRoot`` or ``sharedRoot``.
    public func root(of area: BackupKey.Area) -> String { "\(prefix)\(area.rawValue)/" }

    /// Every audit record lies under this: `<prefix>audit/`, outside `backups/` so no retention plan sees it.
    public var auditRoot: String { "\(prefix)audit/" }

    /// Where `doctor` writes its probe objects; never under `backups/` or `shared/`.
    public var testPrefix: String { "\(prefix)test/" }
}
