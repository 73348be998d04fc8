import Foundation
import Logging

/// `tenant-backup prune`: the retention policy applied to the named tenants, or to every discovered one,
/// each under its advisory lock (a dry run needs none). One tenant's failure does not stop the others.
public struct PruneRun: Sendable {
    /// The same context a backup takes: pruning needs no backup cycle to reach the bucket or the database.
    public let context: BackupContext
    var settings: Settings { context.settings }
    var logger: Logger { context.logger }

    /// Who prunes, for the audit trail.
    public var actor = "tenant-backup"

    public init(context: BackupContext) {
        self.context = context
    }

    /// What happened to one tenant.
    public struct TenantResult: Sendable {
        public let tenant: String
        /// The plan and what was done, or why nothing could be (the tenant is named in the message).
        public let result: Result<RetentionOutcome, PruneFailure>

        /// Refused by a brake, or some key could not be deleted, or it failed outright.
        public var needsAttention: Bool {
            switch result {
            case .success(let outcome):
                if case .refused = outcome.status { return true }
                return !outcome.failedKeys.isEmpty
            case .failure:
                return true
            }
        }
    }

    /// A tenant (or the shared schemas) that could not be pruned at all, and the cause, kept typed.
    public struct PruneFailure: Error, Equatable, CustomStringConvertible {
        public enum Cause: Sendable, Equatable {
            /// Another run holds the tenant's advisory lock.
            case busy
            /// The bucket did not answer, or refused.
            case s3(S3Error)
            /// A tenant manifest could not be read, so no shared dump may be judged unnamed.
            case unreadableManifest(RetentionRunner.UnreadableManifest)
            /// The tenant's lock could not be asked for.
            case database(PostgresError)
            case other(String)
        }

        /// The tenant's name, or `nil` for the shared schemas as a whole.
        public let tenant: String?
        public let cause: Cause

        public var description: String {
            let subject = tenant.map { BackupSchema.tenant($0).description } ?? "shared schemas"
            switch cause {
            case .busy: return "\(subject): another tenant-backup (on this or another host) is working on this tenant; try again when it is done"
            case .s3(let error) where error.operation == "GetObject" && error.key?.hasSuffix(BackupKey.manifestSuffix) == true:
                return "\(subject): \(error); nothing of it is deleted until every manifest of its backups can be read (retry when the store answers)"
            case .s3(let error): return "\(subject): \(error)"
            case .unreadableManifest(let error): return "\(subject): \(error)"
            case .database(let error): return "\(subject): \(error)"
            case .other(let message): return "\(subject): \(message)"
            }
        }

        static func cause(of error: any Error) -> Cause {
            switch error {
            case is TenantBusyError: return .busy
            case let error as S3Error: return .s3(error)
            case let error as RetentionRunner.UnreadableManifest: return .unreadableManifest(error)
            case let error as PostgresError: return .database(error)
            default: return .other("\(error)")
            }
        }
    }

    public func run(tenants requested: [String]?, force: Bool, dryRun: Bool) async throws(BackupCycleError) -> [TenantResult] {
        let client = try await BackupCycleError.setUp { () throws(ContextError) in try context.client() }
        let tenants: [String]
        if let requested, !requested.isEmpty {
            // Exact names, as backup takes them: a tenant of the database, or one whose folder is in the bucket
            // (a clinic removed from the database still has backups to prune).
            let discovered = (try? await context.inspectDatabase().discovered.tenants) ?? []
            let inBucket = Set(try await BackupCycleError.setUp { () async throws(ContextError) in try await context.newestBackupOfEveryTenant() }.keys)
            let unknown = requested.filter { !discovered.contains($0) && !inBucket.contains($0) }
            guard unknown.isEmpty else { throw .unknownTenants(unknown, discovered: discovered) }
            tenants = requested
        } else {
            tenants = try await BackupCycleError.setUp { () async throws(ContextError) in try await context.inspectDatabase() }.discovered.tenants
            // As for backup: selecting nothing is a failure (a typo in a pattern), not a quiet success.
            guard !tenants.isEmpty else { throw .noTenantsSelected(settings.tenants) }
        }
        var runner = RetentionRunner(settings: settings.retention, client: client, prefix: settings.s3.prefix, logger: logger)
        runner.audit = try await BackupCycleError.setUp { () throws(ContextError) in try context.auditTrail() }
        runner.actor = actor
        runner.trust = context.manifestTrust()
        runner.manifests = context.manifestCache
        var results: [TenantResult] = []
        for tenant in tenants {
            do {
                let outcome = try await runner.runLocked(
                    tenant: tenant, trigger: .manual, force: force, dryRun: dryRun, postgres: settings.postgres, environment: context.environment)
                results.append(TenantResult(tenant: tenant, result: .success(outcome)))
            } catch {
                logger.error("prune failed", metadata: ["tenant": "\(tenant)", "error": "\(error)"])
                results.append(TenantResult(tenant: tenant, result: .failure(PruneFailure(tenant: tenant, cause: PruneFailure.cause(of: error)))))
            }
        }
        // The shared schemas' dumps, once every tenant was pruned (not for a few named tenants): those no kept
        // tenant backup names go. A dry run leaves out the manifests of the tenant backups it would delete.
        if requested?.isEmpty ?? true, !results.contains(where: { if case .failure = $0.result { true } else { false } }) {
            var ignoring: Set<String> = []
            if dryRun {
                for result in results { if case .success(let outcome) = result.result, outcome.status == .applied {
                    ignoring.formUnion(outcome.plan.deleted.map(\.candidate.key))
                } }
            }
            do {
                for outcome in try await runner.runSharedSchemas(force: force, dryRun: dryRun, ignoring: ignoring) {
                    results.append(TenantResult(tenant: outcome.tenant, result: .success(outcome)))
                }
            } catch {
                logger.error("shared retention failed", metadata: ["error": "\(error)"])
                results.append(TenantResult(tenant: "shared schemas", result: .failure(PruneFailure(tenant: nil, cause: PruneFailure.cause(of: error)))))
            }
        }
        return results
    }
}
