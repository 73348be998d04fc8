import Foundation

/// The result of one schema in a cycle.
public struct SchemaResult: Sendable, Equatable {
    public let schema: BackupSchema
    public let result: Result<BackupOutcome, BackupError>
    /// What retention did after the backup, when the cycle applies it (tenants only).
    public var retention: Result<RetentionOutcome, S3Error>?

    public var succeeded: Bool { if case .success = result { true } else { false } }
}

/// What a running cycle reports as it goes, in order for each schema.
public enum CycleEvent: Sendable {
    /// A tenant's turn came: its name, its position (1-based) and the number of tenants.
    case tenantStarted(String, position: Int, count: Int)
    /// Live numbers of a running dump (at most every half second).
    case progress(BackupProgress)
    /// A schema's backup ended, with its retention when the cycle applies it: a shared schema, a tenant, or a
    /// tenant the registry names without a schema. Skipped tenants are in the report only.
    case finished(SchemaResult)
}

/// A tenant the cycle did not back up, and why (not a failure).
public struct SkippedTenant: Sendable, Equatable {
    public enum Reason: Sendable, Equatable {
        /// Another host (or an earlier run) already stored a backup at or after the slot's start.
        case alreadyBackedUp(key: String)
        /// The daemon is shutting down: no new tenant is started.
        case shuttingDown
    }

    public let schema: String
    public let reason: Reason

    public init(schema: String, reason: Reason) {
        self.schema = schema
        self.reason = reason
    }
}

/// Everything one cycle did: shared schemas first, then every tenant.
public struct BackupReport: Sendable, Equatable {
    public let startedAt: Date
    /// Ties the cycle's log lines together (`CYCLE_ID=` in the journal).
    public var cycleId: String = ""
    public var shared: [SchemaResult] = []
    public var tenants: [SchemaResult] = []
    public var skipped: [SkippedTenant] = []
    /// What the shared schemas' retention did after the tenants' (cycles that apply retention and dumped every
    /// shared schema), or why it could not run.
    public var sharedRetention: Result<[RetentionOutcome], PruneRun.PruneFailure>?

    public var allSucceeded: Bool { (shared + tenants).allSatisfy(\.succeeded) }
    /// Tenants whose retention could not run after their backup (the store did not answer): nothing of them
    /// was deleted, and `run --once` exits non-zero.
    public var retentionFailures: [(tenant: String, error: S3Error)] {
        tenants.compactMap { result in
            if case .failure(let error) = result.retention { (result.schema.name, error) } else { nil }
        }
    }
    public var failures: [BackupError] {
        (shared + tenants).compactMap { if case .failure(let error) = $0.result { error } else { nil } }
    }
}
