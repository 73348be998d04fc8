/// tenant-backup: streams pg_dump of each tenant schema into S3 and prunes old backups.
public enum TenantBackupVersion {
    /// The version printed by `tenant-backup --version`.
    public static let current = "0.1.0"
}
