import Foundation

/// A backup (or prune) run that could not start at all: its context could not be set up (no bucket, no
/// database), it selected no tenant or an unknown one, no pg_dump fits the server, or the cycle's snapshot
/// could not be exported.
public enum BackupCycleError: Error, Equatable, CustomStringConvertible {
    /// The settings' context could not be set up (no bucket, the database or the bucket did not answer).
    case setup(ContextError)
    /// Discovery selected nothing: a failure, or the staleness alert could never fire.
    case noTenantsSelected(TenantSelection)
    /// Tenants asked for by name that discovery does not know.
    case unknownTenants([String], discovered: [String])
    /// No usable pg_dump.
    case pgDump(PgDumpError)
    /// The cycle's snapshot could not be exported.
    case snapshot(PostgresError)

    public var description: String {
        switch self {
        case .setup(let error): return error.description
        case .noTenantsSelected(let selection): return BackupCycle.noTenantsMessage(selection)
        case .unknownTenants(let unknown, let discovered):
            return "no such tenant: \(unknown.map(BackupSchema.display).joined(separator: ", ")) (discovered: \(discovered.map(BackupSchema.display).joined(separator: ", ")))"
        case .pgDump(let error): return error.description
        case .snapshot(let reason):
            return "cannot export a snapshot for the cycle (\(reason)); fix the database connection, or set backup.consistent_snapshot: false to dump each schema at its own moment"
        }
    }

    /// Runs `body`, whose failure to set up is this run's.
    static func setUp<Value>(_ body: () async throws(ContextError) -> Value) async throws(BackupCycleError) -> Value {
        do throws(ContextError) {
            return try await body()
        } catch {
            throw .setup(error)
        }
    }
}
