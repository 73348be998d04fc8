import Foundation

/// What a killed restore or drill leaves behind, and how the next run removes it: databases it created
/// (a `--create-database` target, `tenant_backup_drill_<id>`) and its private spool.
///
/// A database is ours while its comment says so (`tenant-backup: restoring …`, set when it is created, with
/// this host's name, the process id, the tenant and the time; cleared when the restore succeeds). It is a
/// leftover when that process is gone (same host) or, for another host's, when it is older than a day, so a
/// drill running elsewhere is never raced. A leftover that holds the tenant's schema (the process died after
/// its `COMMIT`) is kept and its comment cleared; an empty one is dropped.
public enum RestoreLeftovers {
    static let commentPrefix = "tenant-backup: restoring"
    /// The names of the throwaway databases of restore drills.
    public static let drillPrefix = "tenant_backup_drill_"
    /// Another host's database counts as a leftover only after this long.
    static let otherHostAge: TimeInterval = 86400

    /// One database a restore created and never finished.
    public struct Database: Sendable, Equatable, CustomStringConvertible {
        public let name: String
        public let host: String
        public let pid: Int32
        public let tenant: String
        public let since: Date
        public var description: String { "database \(name) (restore of \(BackupSchema.display(tenant)) by pid \(pid) on \(host), \(BackupAccess.isoformat(since)))" }
    }

    static var hostName: String { ProcessInfo.processInfo.hostName }

    /// The comment a restore puts on a database it creates.
    static func comment(tenant: String, now: Date = Date()) -> String {
        "\(commentPrefix) host=\(BackupKey.encode(hostName)) pid=\(getpid()) tenant=\(BackupKey.encode(tenant)) since=\(Int64(now.timeIntervalSince1970))"
    }

    static func parse(name: String, comment: String) -> Database? {
        guard comment.hasPrefix(commentPrefix + " ") else { return nil }
        var fields: [String: String] = [:]
        for part in comment.dropFirst(commentPrefix.count + 1).split(separator: " ") {
            let pair = part.split(separator: "=", maxSplits: 1)
            if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
        }
        guard let host = fields["host"].flatMap(BackupKey.decode), let pid = fields["pid"].flatMap({ Int32($0) }),
              let tenant = fields["tenant"].flatMap(BackupKey.decode), let since = fields["since"].flatMap({ Int64($0) })
        else { return nil }
        return Database(name: name, host: host, pid: pid, tenant: tenant, since: Date(timeIntervalSince1970: TimeInterval(since)))
    }

    /// Whether `database`'s restore is over: its process is gone, or (another host's) it is a day old.
    static func isAbandoned(_ database: Database, now: Date = Date()) -> Bool {
        if database.host == hostName {
            if database.pid == getpid() { return false }
            return kill(database.pid, 0) != 0 && errno == ESRCH
        }
        return now.timeIntervalSince(database.since) > otherHostAge
    }

    /// Our abandoned databases on the server `environment` reaches.
    public static func databases(environment: [String: String]) throws -> [Database] {
        var variables = environment
        variables["PGDATABASE"] = "postgres"
        let connection = try PostgresConnection(connectionString: nil, applicationName: "tenant-backup sweep", environment: variables)
        let rows = try connection.query(
            "SELECT datname, pg_catalog.shobj_description(oid, 'pg_database') FROM pg_catalog.pg_database WHERE pg_catalog.shobj_description(oid, 'pg_database') LIKE $1",
            [commentPrefix + " %"], purpose: "looking for databases of killed restores"
        ).rows
        return rows.compactMap { row in
            guard let name = row.first ?? nil, let comment = row.count > 1 ? row[1] : nil else { return nil }
            return parse(name: name, comment: comment)
        }.filter { isAbandoned($0) }
    }

    /// Drops our abandoned empty databases (a killed restore rolled back: nothing in them) and releases those
    /// that hold their tenant's schema; returns what it did, for the log.
    @discardableResult
    public static func sweepDatabases(environment: [String: String]) -> [String] {
        guard let found = try? databases(environment: environment) else { return [] }
        var done: [String] = []
        var variables = environment
        variables["PGDATABASE"] = "postgres"
        for database in found {
            do {
                let connection = try PostgresConnection(connectionString: nil, applicationName: "tenant-backup sweep", environment: variables)
                var inside = environment
                inside["PGDATABASE"] = database.name
                let holdsTenant = (try? PostgresConnection(connectionString: nil, environment: inside).schemaExists(database.tenant)) ?? false
                let quoted = BackupSchema.quoted(database.name)
                // A drill's database is always thrown away, whatever it holds (a drill killed after its COMMIT
                // leaves every clinic's shared rows and the clinic's patients in it).
                if holdsTenant, !database.name.hasPrefix(drillPrefix) {
                    _ = try connection.query("COMMENT ON DATABASE \(quoted) IS NULL", purpose: "releasing database \(database.name)")
                    done.append("kept \(database) (it holds the restored schema)")
                } else {
                    _ = try connection.query("DROP DATABASE IF EXISTS \(quoted) WITH (FORCE)", purpose: "dropping database \(database.name)")
                    done.append("dropped \(database)")
                }
            } catch {
                done.append("could not sweep \(database): \(error)")
            }
        }
        return done
    }

    /// Spool directories of dead processes under `base`.
    public static func spools(base: String) -> [String] {
        RestoreSpool.leftovers(base: base)
    }
}
