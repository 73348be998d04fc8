/// The key layout of the bucket (DESIGN §4), compatible with the system tenant-backup replaces:
///
/// ```
/// <prefix>backups/<tenant>/...   each clinic's backups
/// <prefix>shared/<schema>/...    shared schemas (public)
/// <prefix>test/                  probe objects written by `tenant-backup doctor`
/// ```
public struct StorageLayout: Sendable, Equatable {
    /// Already normalised by the settings: empty or ending in `/`.
    public let prefix: String

    public init(prefix: String) {
        self.prefix = prefix
    }

    /// Every tenant's folder lies under this: `<prefix>backups/`.
    public var tenantsRoot: String { "\(prefix)\(BackupKey.Area.tenant.rawValue)/" }

    /// Every shared schema's folder lies under this: `<prefix>shared/`.
    public var sharedRoot: String { "\(prefix)\(BackupKey.Area.shared.rawValue)/" }

    /// Where `doctor` writes its probe objects; never under `backups/` or `shared/`.
    public var testPrefix: String { "\(prefix)test/" }
}
