import Foundation
import Logging
import ServiceLifecycle

/// Keeps `tenant_backup_tenant_stale` and `tenant_backup_newest_backup_timestamp_seconds` right from the
/// bucket — one listing of `<prefix>backups/` — and the database's tenant list, every
/// `metrics.refresh_interval` and after each cycle. A tenant with no backup at all is stale.
///
/// Because the numbers come from the bucket, they are right with several hosts and after a restart: the
/// alert "a clinic has had no backup for 26 h" does not depend on which host did the work.
public struct FreshnessMonitor: Service {
    let state: DaemonState
    let logger: Logger

    public init(state: DaemonState, logger: Logger) {
        self.state = state
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await refresh()
                try? await Task.sleep(for: state.current.settings.metrics.refreshInterval)
            }
        }
    }

    /// Lists the bucket once and updates every tenant's freshness.
    public func refresh() async {
        let context = state.currentContext.context
        let settings = context.settings
        do throws(ContextError) {
            let newest = try await context.newestVouchedBackupOfEveryTenant()
            // The database's tenants (a clinic that was removed is not an alert); the bucket's when the
            // database cannot be asked.
            let tenants: Set<String>
            do throws(ContextError) {
                tenants = Set(try await context.inspectDatabase().discovered.tenants)
            } catch {
                logger.warning("tenant discovery failed; staleness is reported for the tenants found in the bucket", metadata: ["error": "\(error)"])
                tenants = Set(newest.keys)
            }
            let now = Date()
            for tenant in tenants.sorted() {
                BackupMetrics.recordFreshness(tenant: tenant, newest: newest[tenant]?.timestamp, staleAfter: settings.metrics.staleAfter, now: now)
            }
        } catch {
            logger.warning("could not refresh backup freshness metrics", metadata: ["error": "\(error)"])
        }
    }
}
