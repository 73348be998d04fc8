/// The version of tenant-backup.
public enum TenantBackupVersion {
    /// Printed by `tenant-backup --version` and recorded in manifests.
    public static let current = "0.1.0"
}
