/// Why one schema's backup failed: which schema, at which stage, and the underlying cause, kept whole (as
/// NIO's `FileSystemError` keeps a code, a message and the error beneath). Callers match on ``stage`` and
/// ``cause``; ``description`` says it all in one line, naming the schema.
public struct BackupError: Error, Equatable, CustomStringConvertible {
    /// Where in a backup it failed.
    public enum Stage: String, Sendable, Equatable {
        /// Taking the schema's advisory lock, or keeping it.
        case lock
        /// Checking the bucket before the dump (the slot re-check).
        case check
        /// Preparing the dump: the size estimate, the part size, pg_dump's connection, the codec, a local copy.
        case preparation
        /// pg_dump and the stream into S3.
        case dump
        /// Completing the upload, after pg_dump succeeded.
        case completion
        /// Before anything started: the tenant registry names a schema that does not exist.
        case discovery
    }

    /// What went wrong.
    public enum Cause: Equatable, Sendable {
        case postgres(PostgresError)
        case pgDump(PgDumpFailure)
        case s3(S3Error)
        case codec(StreamTransformError)
        /// The backup format's stages cannot be built (an encryption not supported yet).
        case format(BackupFormatError)
        case partSize(PartSizePlanner.PlanError)
        /// The settings' connection string could not be turned into pg_dump's variables (libpq's reason).
        case connectionString(String)
        /// The local copy (`--output`) could not be written.
        case localCopy(String)
        /// Another run holds the lock: at once (`waited` nil), or past the daemon's lock wait.
        case lockBusy(waited: Duration?)
        /// The lock's database connection ended during the backup; the upload was aborted.
        case lockLost
        /// Stopped from outside (a signal, the stop timeout): pg_dump stopped, the upload aborted.
        case stopped
        /// The object is stored, its signed manifest could not be: kept, but nothing vouches for it.
        case manifestNotWritten(key: String, reason: String)
        /// The key exists already: another backup of the schema started in the same second.
        case alreadyExists(key: String)
        /// The tenant registry lists the schema, the database has no such schema.
        case noSuchSchema
        /// A failure of another kind, in its own words.
        case other(String)

        /// The cause of any error thrown below a backup, kept typed where it is one of ours.
        public init(_ error: any Error) {
            switch error {
            case let error as PostgresError: self = .postgres(error)
            case let error as PgDumpFailure: self = .pgDump(error)
            case let error as S3Error: self = .s3(error)
            case let error as StreamTransformError: self = .codec(error)
            case let error as BackupFormatError: self = .format(error)
            case let error as PartSizePlanner.PlanError: self = .partSize(error)
            case let error as BackupError: self = error.cause
            default: self = .other("\(error)")
            }
        }
    }

    public let schema: BackupSchema
    public let stage: Stage
    public let cause: Cause

    public init(schema: BackupSchema, stage: Stage, cause: Cause) {
        self.schema = schema
        self.stage = stage
        self.cause = cause
    }

    /// What happened, without the schema's name.
    public var message: String {
        let noun = schema.noun
        switch (stage, cause) {
        case (.lock, .postgres(let error)): return "cannot take the \(noun)'s lock: \(error)"
        case (.check, .s3(let error)): return "cannot list the \(noun)'s backups to check this slot: \(error)"
        default: break
        }
        switch cause {
        case .postgres(let error): return "\(error)"
        case .pgDump(let failure): return "\(failure)"
        case .s3(let error): return "\(error)"
        case .codec(let error): return "\(error)"
        case .format(let error): return "cannot write a \(error)"
        case .partSize(let error): return "\(error)"
        case .connectionString(let reason): return "postgres.url is not a valid connection string: \(reason)"
        case .localCopy(let reason): return "cannot write the local copy: \(reason)"
        case .lockBusy(nil):
            return "another tenant-backup (on this or another host) is working on this \(noun); try again when it is done"
        case .lockBusy(let waited?):
            return "another tenant-backup (on this or another host) held this \(noun)'s lock for longer than \(waited); not backed up in this slot"
        case .lockLost:
            return "lost the tenant's advisory lock (its database connection ended); the upload was aborted and nothing was stored"
        case .stopped:
            return "stopped before it finished: pg_dump was stopped and the upload aborted; nothing was stored"
        case .manifestNotWritten(let key, let reason):
            return "\(key) was stored but its manifest could not be written (\(reason)); without a signed manifest it is not a "
                + "verified backup (no drill, API download or restore takes it): fix the bucket's permissions for \(key)\(BackupKey.manifestSuffix) and back up again"
        case .alreadyExists(let key):
            return "\(key) already exists: another backup of this schema started in the same second; nothing was overwritten, back it up again"
        case .noSuchSchema:
            return "the tenants query lists this tenant but the database has no schema of that name; it was not backed up (fix the query or the tenant's row)"
        case .other(let message): return message
        }
    }

    public var description: String {
        "\(schema): \(message)"
    }
}
