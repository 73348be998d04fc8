import Crypto
import Foundation

/// A PostgreSQL advisory lock on one tenant, so that several hosts running tenant-backup
/// against one database never work on the same tenant at once.
///
/// Two-key form: a project-specific first key and a stable hash of the tenant's name, taken with
/// `pg_try_advisory_lock` on a connection of its own and held until ``release()`` (or until that
/// connection ends, which releases it too).
public final class TenantLock: @unchecked Sendable {
    /// `TBKP`: the first key of every tenant's lock.
    public static let projectKey: Int32 = 0x5442_4B50
    /// `TBKS`: the first key of a shared schema's lock (so `public` the tenant and `public` the shared schema differ).
    public static let sharedProjectKey: Int32 = 0x5442_4B53

    /// A stable 32-bit key for a tenant: the first four bytes of the SHA-256 of its name.
    public static func tenantKey(_ tenant: String) -> Int32 {
        let digest = Array(SHA256.hash(data: Data(tenant.utf8)))
        return Int32(bitPattern: UInt32(digest[0]) << 24 | UInt32(digest[1]) << 16 | UInt32(digest[2]) << 8 | UInt32(digest[3]))
    }

    public let schema: BackupSchema
    private let connection: HeldConnection
    /// Whether another session held the lock when it was first tried: whoever held it may just have changed
    /// the schema's backups, so a listing made before is stale. Set before ``acquire(_:connectionString:environment:waitingUpTo:pollInterval:)`` returns.
    public private(set) var waited = false

    private init(schema: BackupSchema, connection: PostgresConnection) {
        self.schema = schema
        self.connection = HeldConnection(connection)
    }

    /// The first key: ``projectKey`` for tenants, ``sharedProjectKey`` for shared schemas.
    public var firstKey: Int32 { schema.area == .tenant ? Self.projectKey : Self.sharedProjectKey }

    /// Takes the tenant's lock, trying again every `pollInterval` while another session holds it, for at most
    /// `wait` (zero: one try); returns `nil` when it is still held then (or the task is cancelled). Polling with
    /// `pg_try_advisory_lock` on one connection keeps no thread blocked inside the server.
    public static func acquire(
        _ schema: BackupSchema, connectionString: String?, environment: [String: String], waitingUpTo wait: Duration = .zero,
        pollInterval: Duration = .seconds(1)
    ) async throws -> TenantLock? {
        let lock = try await Blocking.run { () throws -> TenantLock in
            let connection = try PostgresConnection(
                connectionString: connectionString, applicationName: "tenant-backup lock", environment: environment)
            return TenantLock(schema: schema, connection: connection)
        }
        let deadline = ContinuousClock.now + wait
        while true {
            if try await lock.tryLock() { return lock }
            lock.waited = true
            guard ContinuousClock.now + pollInterval <= deadline, !Task.isCancelled else { break }
            try? await Task.sleep(for: pollInterval)
        }
        _ = await lock.takeAndClose()
        return nil
    }

    private func tryLock() async throws -> Bool {
        try await Blocking.run { [self] () throws -> Bool in
            try connection.with { connection in
                let result = try connection.query(
                    "SELECT pg_catalog.pg_try_advisory_lock($1::int4, $2::int4)",
                    [String(firstKey), String(Self.tenantKey(schema.name))], purpose: "locking \(schema)")
                return result.rows.first?.first == "t"
            } ?? false
        }
    }

    /// Whether the lock's connection still answers. When it does not, the server has ended the session and
    /// with it the lock: another host may take the tenant, so this host's work on it must stop.
    public func isHeld() async -> Bool {
        (try? await Blocking.run { [self] () throws -> Bool in
            try connection.with { connection in
                _ = try connection.query("SELECT 1", purpose: "checking the lock of \(schema)")
                return true
            } ?? false
        }) ?? false
    }

    /// Returns when the lock's connection stops answering (checked every `interval`); never returns while
    /// it holds, except when the task is cancelled. Returns whether the lock was lost.
    public func waitUntilLost(checkingEvery interval: Duration) async -> Bool {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return false
            }
            if Task.isCancelled { return false }
            if await !isHeld() { return true }
        }
        return false
    }

    /// Releases the lock and closes its connection.
    public func release() async {
        _ = try? await Blocking.run { [self] () throws -> Bool in
            guard let connection = connection.take() else { return false }
            _ = try connection.query(
                "SELECT pg_catalog.pg_advisory_unlock($1::int4, $2::int4)",
                [String(firstKey), String(Self.tenantKey(schema.name))], purpose: "unlocking \(schema)")
            return true
        }
    }

    private func takeAndClose() async -> Bool {
        (try? await Blocking.run { [self] in connection.take() != nil }) ?? false
    }
}
