import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The daemon's restore drills: at each slot of `drill.cron`, the newest backup of `drill.tenants_per_run`
/// tenants (those drilled longest ago first, never-drilled ones before all) is restored into a throwaway
/// database on the same server, every table's rows compared with the manifest, and the database dropped.
/// Results go to `tenant_backup_last_drill_success{tenant}`, `tenant_backup_last_drill_timestamp_seconds`
/// and the journal. Off unless `drill.cron` is set; a reload can turn it on or off.
public struct DrillService: Service {
    let state: DaemonState
    let logger: Logger
    let clock: WallClock
    let history = DrillHistory()

    public init(state: DaemonState, logger: Logger, clock: WallClock = .system) {
        self.state = state
        self.logger = logger
        self.clock = clock
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let (context, generation) = state.currentContext
                guard let schedule = context.settings.drill.schedule, let slot = schedule.next(after: clock.now()) else {
                    // No drills configured: wait for a reload that may set drill.cron.
                    _ = await state.sleep(until: .distantFuture, unlessReloadedFrom: generation, clock: clock)
                    continue
                }
                guard await state.sleep(until: slot, unlessReloadedFrom: generation, clock: clock) else { return }
                guard state.current.generation == generation, !Task.isCancelled else { continue }
                await drill(context)
            }
        }
    }

    /// One run: the tenants due, one after the other.
    func drill(_ context: BackupContext) async {
        let tenants: [String]
        do throws(ContextError) {
            tenants = try await context.inspectDatabase().discovered.tenants
        } catch {
            logger.error("restore drills skipped: the tenants could not be listed", metadata: ["error": "\(error)"])
            return
        }
        let chosen = Self.due(tenants, lastDrilled: history.snapshot, count: context.settings.drill.tenantsPerRun)
        let access = BackupAccess(context: context, actor: "tenant-backup daemon (restore drill)")
        for tenant in chosen where !Task.isCancelled {
            do throws(AccessError) {
                // verify logs the drill's outcome and sets its metrics.
                _ = try await access.verify(tenant: tenant, .one(.latest), restore: true)
                history.record(tenant, at: clock.now())
            } catch {
                history.record(tenant, at: clock.now())
                if !Task.isCancelled { BackupMetrics.recordDrill(tenant: tenant, succeeded: false, at: clock.now()) }
                logger.error("restore drill could not run", metadata: ["tenant": "\(tenant)", "error": "\(error.message)"])
            }
        }
    }

    /// The tenants to drill now: never-drilled ones first (by name), then those drilled longest ago.
    static func due(_ tenants: [String], lastDrilled: [String: Date], count: Int) -> [String] {
        let ordered = tenants.sorted { left, right in
            switch (lastDrilled[left], lastDrilled[right]) {
            case (nil, nil): return left < right
            case (nil, _): return true
            case (_, nil): return false
            case (let l?, let r?): return l != r ? l < r : left < right
            }
        }
        return Array(ordered.prefix(max(0, count)))
    }
}

/// When each tenant was last drilled by this daemon (a restart starts over: never-drilled first).
final class DrillHistory: Sendable {
    private let last = Mutex<[String: Date]>([:])

    var snapshot: [String: Date] { last.withLock { $0 } }

    func record(_ tenant: String, at date: Date) {
        last.withLock { $0[tenant] = date }
    }
}
