import Crypto
import Foundation

/// A PostgreSQL advisory lock on one tenant (DESIGN §6.10), so that several hosts running tenant-backup
/// against one database never work on the same tenant at once.
///
/// Two-key form: a project-specific first key and a stable hash of the tenant's name, taken with
/// `pg_try_advisory_lock` on a connection of its own and held until ``release()`` (or until that
/// connection ends, which releases it too).
public final class TenantLock: @unchecked Sendable {
    /// `TBKP`: the first key, shared by every lock of this project.
    public static let projectKey: Int32 = 0x5442_4B50

    /// A stable 32-bit key for a tenant: the first four bytes of the SHA-256 of its name.
    public static func tenantKey(_ tenant: String) -> Int32 {
        let digest = Array(SHA256.hash(data: Data(tenant.utf8)))
        return Int32(bitPattern: UInt32(digest[0]) << 24 | UInt32(digest[1]) << 16 | UInt32(digest[2]) << 8 | UInt32(digest[3]))
    }

    public let tenant: String
    private var connection: PostgresConnection?

    private init(tenant: String, connection: PostgresConnection) {
        self.tenant = tenant
        self.connection = connection
    }

    /// Takes the tenant's lock, or returns `nil` when another session holds it.
    public static func acquire(tenant: String, connectionString: String?, environment: [String: String]) async throws -> TenantLock? {
        try await Blocking.run { () throws -> TenantLock? in
            let connection = try PostgresConnection(
                connectionString: connectionString, applicationName: "tenant-backup lock", environment: environment)
            let result = try connection.query(
                "SELECT pg_catalog.pg_try_advisory_lock($1::int4, $2::int4)",
                [String(projectKey), String(tenantKey(tenant))], purpose: "locking tenant \(Doctor.display(tenant))")
            guard result.rows.first?.first == "t" else { return nil }
            return TenantLock(tenant: tenant, connection: connection)
        }
    }

    /// Releases the lock and closes its connection.
    public func release() async {
        _ = try? await Blocking.run { [self] () throws -> Bool in
            guard let connection = takeConnection() else { return false }
            _ = try connection.query(
                "SELECT pg_catalog.pg_advisory_unlock($1::int4, $2::int4)",
                [String(Self.projectKey), String(Self.tenantKey(tenant))], purpose: "unlocking tenant")
            return true
        }
    }

    private let guardLock = NSLock()

    /// Hands the connection over exactly once (it closes when the caller drops it).
    private func takeConnection() -> PostgresConnection? {
        guardLock.lock()
        defer { guardLock.unlock() }
        let taken = connection
        connection = nil
        return taken
    }
}
