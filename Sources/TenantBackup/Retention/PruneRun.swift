import AsyncHTTPClient
import Foundation
import Logging

/// `tenant-backup prune`: the retention policy applied to the named tenants, or to every discovered one,
/// each under its advisory lock (a dry run needs none). One tenant's failure does not stop the others.
public struct PruneRun: Sendable {
    public let settings: Settings
    public let environment: [String: String]
    public let logger: Logger
    public var httpClient: HTTPClient? = nil

    public init(settings: Settings, environment: [String: String], logger: Logger) {
        self.settings = settings
        self.environment = environment
        self.logger = logger
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

    /// A tenant that could not be pruned at all.
    public struct PruneFailure: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    public func run(tenants requested: [String]?, force: Bool, dryRun: Bool) async throws(BackupCycleError) -> [TenantResult] {
        let cycle = BackupCycle(settings: settings, environment: environment, logger: logger, httpClient: httpClient)
        let client = try cycle.makeClient()
        let tenants: [String]
        if let requested, !requested.isEmpty {
            tenants = requested
        } else {
            tenants = try await cycle.inspectDatabase().discovered.tenants
        }
        let runner = RetentionRunner(settings: settings.retention, client: client, prefix: settings.s3.prefix, logger: logger)
        var results: [TenantResult] = []
        for tenant in tenants {
            do {
                let outcome = try await runner.runLocked(
                    tenant: tenant, trigger: .manual, force: force, dryRun: dryRun, postgres: settings.postgres, environment: environment)
                results.append(TenantResult(tenant: tenant, result: .success(outcome)))
            } catch {
                let message = error is TenantBusyError ? "\(error)" : "tenant \(Doctor.display(tenant)): \(error)"
                logger.error("prune failed", metadata: ["tenant": "\(tenant)", "error": "\(error)"])
                results.append(TenantResult(tenant: tenant, result: .failure(PruneFailure(message: message))))
            }
        }
        return results
    }
}
