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

/// What a restore asks of its target database.
extension PostgresConnection {
    func schemaExists(_ schema: String) throws(PostgresError) -> Bool {
        try query("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", [schema], purpose: "looking for schema \(BackupSchema.display(schema))")
            .rows.count == 1
    }

    /// The tables (plain and partitioned) of a schema, by name.
    func tables(inSchema schema: String) throws(PostgresError) -> [String] {
        try query(
            """
            SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname
            """, [schema], purpose: "listing the tables of schema \(BackupSchema.display(schema))"
        ).rows.compactMap { $0.first ?? nil }
    }

    /// Whether a schema holds nothing at all (no relation, function or type): the empty `public` of a
    /// freshly created database.
    func schemaIsEmpty(_ schema: String) throws(PostgresError) -> Bool {
        let rows = try query(
            """
            SELECT (SELECT count(*) FROM pg_catalog.pg_class WHERE relnamespace = n.oid)
                 + (SELECT count(*) FROM pg_catalog.pg_proc WHERE pronamespace = n.oid)
                 + (SELECT count(*) FROM pg_catalog.pg_type WHERE typnamespace = n.oid)
            FROM pg_catalog.pg_namespace n WHERE n.nspname = $1
            """, [schema], purpose: "checking that schema \(BackupSchema.display(schema)) is empty"
        ).rows
        return rows.first?.first.flatMap { $0 } == "0"
    }

    /// Exact row counts of every table of a schema, keyed as pg_dump's COPY lines name them.
    func rowCounts(inSchema schema: String) throws(PostgresError) -> [String: Int64] {
        var counts: [String: Int64] = [:]
        for table in try tables(inSchema: schema) {
            let rows = try query(
                "SELECT count(*) FROM \(BackupSchema.quoted(schema)).\(BackupSchema.quoted(table))", purpose: "counting the rows of \(table)"
            ).rows
            counts[QualifiedName(schema: schema, table: table).description] = Int64(rows.first?.first.flatMap { $0 } ?? "0") ?? 0
        }
        return counts
    }
}

/// `schema.table` as pg_dump writes it in its COPY lines: each part bare when it is a plain lower-case name,
/// else double-quoted with `"` doubled. Parsing undoes that, so a manifest's keys compare by value.
public struct QualifiedName: Hashable, Sendable, CustomStringConvertible {
    public let schema: String
    public let table: String

    public init(schema: String, table: String) {
        self.schema = schema
        self.table = table
    }

    public var description: String { "\(BackupSchema.display(schema)).\(BackupSchema.display(table))" }

    /// `bienestar.patients`, `"Clínica ""Sur""".patients`, `bienestar."order"`.
    public static func parse(_ text: String) -> QualifiedName? {
        var parts: [String] = []
        var current = ""
        var quoted = false
        var index = text.startIndex
        while index < text.endIndex {
            let character = text[index]
            if quoted {
                if character == "\"" {
                    let next = text.index(after: index)
                    if next < text.endIndex, text[next] == "\"" {
                        current.append("\"")
                        index = next
                    } else {
                        quoted = false
                    }
                } else {
                    current.append(character)
                }
            } else if character == "\"" {
                quoted = true
            } else if character == "." {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
            index = text.index(after: index)
        }
        parts.append(current)
        guard parts.count == 2, !quoted, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        return QualifiedName(schema: parts[0], table: parts[1])
    }
}
