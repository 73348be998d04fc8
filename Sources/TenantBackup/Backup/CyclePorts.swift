import Foundation

/// The I/O a backup cycle runs over, as values: the bucket, the database, the dumps and the clock. The context
/// builds the real ones (``CyclePorts/init(context:)``); unit tests of the cycle's decisions build fakes
/// (`MemoryObjectStore`, a database that answers from a list, dumps that store a few bytes or fail), so each
/// decision is tested without a server.
public struct CyclePorts: Sendable {
    /// The bucket: the catalog, retention and the audit trail read and write it.
    public var store: any ObjectStore
    public var database: any CycleDatabase
    public var dumps: any SchemaDumps
    /// The clock keys, retention and the audit trail are dated by.
    public var now: @Sendable () -> Date

    public init(store: any ObjectStore, database: any CycleDatabase, dumps: any SchemaDumps, now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.database = database
        self.dumps = dumps
        self.now = now
    }

    /// The real ports of a context: its S3 client, its PostgreSQL, pg_dump into S3 and the system clock.
    public init(context: BackupContext) throws(ContextError) {
        let client = try context.client()
        self.init(store: client, database: PostgresCycleDatabase(context: context), dumps: PgDumpSchemaDumps(client: client, context: context))
    }
}

/// What a cycle asks of the database: what it holds, a schema's advisory lock, and a snapshot for the cycle.
public protocol CycleDatabase: Sendable {
    /// The server's version, the tenants discovery selects and the shared schemas that exist.
    func inventory() async throws(ContextError) -> BackupContext.DatabaseInventory
    /// The schema's lock, trying again while another session holds it for at most `wait` (zero: one try);
    /// `nil` when it is still held then. Throws when the database cannot be asked.
    func lock(_ schema: BackupSchema, waitingUpTo wait: Duration) async throws -> (any SchemaLock)?
    /// A snapshot every dump of the cycle can use, held until released.
    func exportSnapshot() async throws(PostgresError) -> any CycleSnapshot
}

/// A schema's advisory lock, held until released (or until its session ends, which releases it too).
public protocol SchemaLock: Sendable {
    /// Whether another session held it when it was first tried: a listing made before is stale.
    var waited: Bool { get }
    /// Returns when the lock is lost (checked every `interval`): `true`; `false` when the task is cancelled.
    func waitUntilLost(checkingEvery interval: Duration) async -> Bool
    func release() async
}

extension SchemaLock {
    /// Runs `body` holding the lock, and releases it however `body` ends.
    public func holding<Result: Sendable>(_ body: () async -> Result) async -> Result {
        let result = await body()
        await release()
        return result
    }

    /// ``holding(_:)`` for a body that throws: the lock is released before the error goes on.
    public func holding<Result: Sendable>(_ body: () async throws -> Result) async throws -> Result {
        do {
            let result = try await body()
            await release()
            return result
        } catch {
            await release()
            throw error
        }
    }
}

/// An exported snapshot, held until released.
public protocol CycleSnapshot: Sendable {
    /// What `pg_dump --snapshot` is given.
    var name: String { get }
    func release() async
}

/// Dumps one schema and stores it: the real one runs pg_dump → the format's stages → S3 (``SchemaBackup``).
public protocol SchemaDumps: Sendable {
    /// The pg_dump that can dump a server of this major version.
    func locate(serverMajor: Int) async throws(PgDumpError) -> PgDumpBinary
    /// Runs `job`: the object is stored and its manifest written, or nothing is stored and the error says why.
    func backUp(_ job: SchemaBackup, startedAt: Date) async throws(BackupError) -> BackupOutcome
}

extension TenantLock: SchemaLock {}
extension SnapshotExport: CycleSnapshot {}

/// The database of a context, through libpq.
struct PostgresCycleDatabase: CycleDatabase {
    let context: BackupContext

    func inventory() async throws(ContextError) -> BackupContext.DatabaseInventory {
        try await context.inspectDatabase()
    }

    func lock(_ schema: BackupSchema, waitingUpTo wait: Duration) async throws -> (any SchemaLock)? {
        try await TenantLock.acquire(schema, connectionString: context.settings.postgres.connectionString, environment: context.environment, waitingUpTo: wait)
    }

    func exportSnapshot() async throws(PostgresError) -> any CycleSnapshot {
        try await SnapshotExport.export(connectionString: context.settings.postgres.connectionString, environment: context.environment)
    }
}

/// pg_dump into the context's bucket.
struct PgDumpSchemaDumps: SchemaDumps {
    let client: S3Client
    let context: BackupContext

    func locate(serverMajor: Int) async throws(PgDumpError) -> PgDumpBinary {
        try await PgDumpLocator.locate(configured: context.settings.postgres.pgDumpPath, serverMajor: serverMajor, environment: context.environment)
    }

    func backUp(_ job: SchemaBackup, startedAt: Date) async throws(BackupError) -> BackupOutcome {
        try await job.run(startedAt: startedAt, store: client)
    }
}
