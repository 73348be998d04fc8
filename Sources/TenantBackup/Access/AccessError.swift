/// Why an operator's (or the API's) access to a tenant's backups did not happen, or did not finish: always
/// naming the tenant and, where there is one, the key. ``kind`` keeps the cause whole so each interface words
/// its own advice (the CLI's flags, the API's status codes).
public struct AccessError: Error, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The text given is not a backup key of any tenant (`..`, `%2F`, a leading `/`, a manifest, garbage).
        case invalidKey(given: String, reason: String)
        /// A backup key, but not in this tenant's folder: another tenant's, a shared schema's, an audit record.
        case foreignKey(given: String)
        /// A key of this tenant that the bucket does not hold.
        case noSuchBackup(key: String)
        /// `--latest`, and the tenant has no backup.
        case noBackups
        /// Neither the database nor the bucket knows a tenant of this name.
        case unknownTenant
        /// A delete of the tenant's newest backup, or of its newest verified one, without force.
        case protectedBackup(key: String, newestVerified: Bool)
        /// Another session holds the tenant's advisory lock (a backup, a prune, another delete).
        case tenantBusy
        /// The object does not match its manifest (size or SHA-256); nothing was handed over.
        case verificationFailed(key: String, problem: String)
        /// A presigned URL's lifetime outside 1 s ... 7 days.
        case invalidExpiry(String)
        /// The audit record could not be stored, so the access was not carried out.
        case auditFailed(S3Error)
        /// The bucket failed (listing, reading, deleting).
        case storage(S3Error)
        /// The database could not be asked (tenant discovery, the lock).
        case database(String)
        /// The local file could not be written or already exists.
        case output(String)
        /// Decompression failed: the object is not what its name says.
        case codec(String)
        /// The settings cannot reach the bucket (no bucket configured).
        case configuration(String)
        /// A restore that would not be safe or cannot work; nothing was changed in the target.
        case restoreRefused(String)
        /// psql failed; its transaction was rolled back.
        case restoreFailed(String)
        /// A backup asked for now failed (nothing was stored).
        case backupFailed(String)
        /// The API serves only backups a trusted signature vouches for and no mark condemns; this one is not.
        case notServed(key: String, reason: String)
        /// A delete through the API of a backup retention keeps as the newest, newest verified, a monthly or a
        /// yearly one, under `api.delete_policy: floor`.
        case keptByFloor(key: String, rules: [RetentionReason])
        /// `api.delete_policy: none`: the API deletes nothing.
        case deletesNotAllowed
        /// An undelete of a backup that no trusted deletion mark hides.
        case notDeleted(key: String)
    }

    public let tenant: String
    public let kind: Kind

    public init(tenant: String, _ kind: Kind) {
        self.tenant = tenant
        self.kind = kind
    }

    /// The same error with `more` added to its message (what is left behind).
    func adding(_ more: String) -> AccessError {
        switch kind {
        case .restoreRefused(let message): AccessError(tenant: tenant, .restoreRefused(message + more))
        case .restoreFailed(let message): AccessError(tenant: tenant, .restoreFailed(message + more))
        case .database(let message): AccessError(tenant: tenant, .database(message + more))
        case .verificationFailed(let key, let problem): AccessError(tenant: tenant, .verificationFailed(key: key, problem: problem + more))
        case .codec(let message): AccessError(tenant: tenant, .codec(message + more))
        default: self
        }
    }

    /// What happened, without the tenant's name.
    public var message: String {
        switch kind {
        case .invalidKey(let given, let reason): return "\"\(given)\" is not a backup key: \(reason)"
        case .foreignKey(let given):
            return "\"\(given)\" lies outside this tenant's folder (\(BackupSchema.display(tenant))'s backups are under backups/\(BackupKey.encode(tenant))/); refused"
        case .noSuchBackup(let key): return "no backup \(key) in the bucket; list the tenant's backups to see what there is"
        case .noBackups: return "the tenant has no backup in the bucket"
        case .unknownTenant: return "no tenant of this name in the database or the bucket (names are exact: case and quotes count)"
        case .protectedBackup(let key, let newestVerified):
            return "\(key) is the tenant's \(newestVerified ? "newest verified" : "newest") backup; it is kept unless forced"
        case .tenantBusy: return "another tenant-backup (on this or another host) is working on this tenant; try again when it is done"
        case .verificationFailed(let key, let problem): return "\(key) failed verification: \(problem)"
        case .invalidExpiry(let reason): return "invalid expiry: \(reason)"
        case .auditFailed(let error): return "the audit record could not be stored, so the access was refused: \(error)"
        case .storage(let error): return "\(error)"
        case .database(let message): return message
        case .output(let message): return message
        case .codec(let message): return "cannot decompress: \(message)"
        case .configuration(let message), .restoreRefused(let message), .restoreFailed(let message): return message
        case .backupFailed(let message): return "the backup failed, nothing was stored: \(message)"
        case .notServed(let key, let reason): return "\(key) is not served through the API: \(reason)"
        case .keptByFloor(let key, let rules):
            return "\(key) is kept by retention (\(rules.map(\.rawValue).joined(separator: ", "))) and api.delete_policy is floor: "
                + "the API never deletes it (an operator can, with tenant-backup delete)"
        case .deletesNotAllowed: return "api.delete_policy is none: backups are not deleted through the API (an operator can, with tenant-backup delete)"
        case .notDeleted(let key): return "\(key) is not deleted (no deletion mark a trusted key signed is beside it); nothing to bring back"
        }
    }

    /// `tenant bienestar: ...`; an error about every tenant (the overview) names none.
    public var description: String { tenant.isEmpty ? message : "\(BackupSchema.tenant(tenant)): \(message)" }
}
