import Foundation

/// The SQL tenant-backup runs itself (besides tenant discovery and the locks), in one place.
extension PostgresConnection {
    /// `15.18` for 15.18.
    public var serverVersion: String { "\(serverMajorVersion).\(serverVersionNumber % 10000)" }

    /// Every schema name in the database.
    func schemaNames() throws(PostgresError) -> [String] {
        try query("SELECT nspname FROM pg_catalog.pg_namespace", purpose: "listing schemas").rows.compactMap { $0.first ?? nil }
    }

    /// A schema's on-disk size (tables, indexes, TOAST), for choosing the part size. Measured with a short lock
    /// timeout: behind a lock (the very thing the no-output timeout is for) it falls back to the planner's
    /// page counts, which need no lock.
    func estimatedSize(ofSchema schema: String) throws(PostgresError) -> Int64 {
        let purpose = "estimating the size of schema \(BackupSchema.display(schema))"
        _ = try query("SET lock_timeout = '2s'", purpose: purpose)
        do {
            let rows = try query(
                """
                SELECT coalesce(sum(pg_catalog.pg_total_relation_size(c.oid)), 0)::bigint
                FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $1 AND c.relkind IN ('r', 'm', 'p')
                """, [schema], purpose: purpose
            ).rows
            return Int64(rows.first?.first.flatMap { $0 } ?? "0") ?? 0
        } catch .queryFailed(_, "55P03", _) {
            let rows = try query(
                """
                SELECT coalesce(sum(c.relpages::bigint * current_setting('block_size')::bigint), 0)::bigint
                FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = $1
                """, [schema], purpose: purpose
            ).rows
            return Int64(rows.first?.first.flatMap { $0 } ?? "0") ?? 0
        }
    }
}
