import Foundation

/// One exported snapshot for a whole cycle (`pg_export_snapshot()`), so the shared schemas and every
/// tenant are dumped as of the same instant (`pg_dump --snapshot=`).
///
/// Without it each pg_dump sees its own moment: a user created in `public` after the shared dump and
/// referenced by a tenant's rows dumped later makes that tenant's restore fail on its foreign key — a
/// backup that does not restore. The exporting transaction (`REPEATABLE READ READ ONLY`) stays open on its
/// own connection until ``release()``, as a whole-database `pg_dump` would hold its snapshot.
public final class SnapshotExport: @unchecked Sendable {
    /// The snapshot's name, passed to each pg_dump.
    public let name: String
    private let connection: HeldConnection

    private init(name: String, connection: PostgresConnection) {
        self.name = name
        self.connection = HeldConnection(connection)
    }

    /// Opens a connection, starts a read-only repeatable-read transaction and exports its snapshot.
    public static func export(connectionString: String?, environment: [String: String]) async throws(PostgresError) -> SnapshotExport {
        do {
            return try await export(connectionString, environment)
        } catch let error as PostgresError {
            throw error
        } catch {
            throw .queryFailed(purpose: "exporting the cycle's snapshot", sqlState: nil, message: "\(error)")
        }
    }

    private static func export(_ connectionString: String?, _ environment: [String: String]) async throws -> SnapshotExport {
        try await Blocking.run {
            let connection = try PostgresConnection(
                connectionString: connectionString, applicationName: "tenant-backup snapshot", environment: environment)
            // The session sits idle in its transaction for the whole cycle: a server-wide
            // idle_in_transaction_session_timeout (common in production) must not end it midway.
            _ = try connection.query("SET idle_in_transaction_session_timeout = 0", purpose: "keeping the cycle's snapshot open")
            _ = try connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", purpose: "starting the cycle's snapshot")
            let result = try connection.query("SELECT pg_catalog.pg_export_snapshot()", purpose: "exporting the cycle's snapshot")
            guard let name = result.rows.first?.first ?? nil, !name.isEmpty else {
                throw PostgresError.queryFailed(purpose: "exporting the cycle's snapshot", sqlState: nil, message: "pg_export_snapshot() returned nothing")
            }
            return SnapshotExport(name: name, connection: connection)
        }
    }

    /// Ends the transaction and closes the connection; the snapshot can no longer be imported.
    public func release() async {
        _ = try? await Blocking.run { [self] () throws -> Bool in
            guard let connection = connection.take() else { return false }
            _ = try connection.query("COMMIT", purpose: "ending the cycle's snapshot")
            return true
        }
    }
}
