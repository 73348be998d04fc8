import Foundation
import Logging
import ServiceLifecycle

/// The daemon's heart: waits for each slot of the cron schedule (plus the random delay), then runs a cycle
/// — every tenant's backup, then its retention — and reports to systemd and the logs.
///
/// On start and after each reload, tenants whose newest backup is older than one schedule period are
/// caught up at once. On graceful shutdown no new tenant starts; tenants in flight have
/// `daemon.stop_timeout` to finish, then their dumps are stopped and their uploads aborted.
///
/// - Important: In `once` mode it runs one cycle for the current slot and returns; its ``CycleOutcomeBox``
///   says whether every schema of that cycle succeeded (`run --once`'s exit status).
public struct CycleScheduler: Service {
    let state: DaemonState
    let logger: Logger
    let once: Bool
    let freshness: FreshnessMonitor?
    let outcome: CycleOutcomeBox
    let clock: WallClock

    public init(
        state: DaemonState, logger: Logger, once: Bool = false,
        freshness: FreshnessMonitor? = nil, outcome: CycleOutcomeBox = CycleOutcomeBox(), clock: WallClock = .system
    ) {
        self.state = state
        self.logger = logger
        self.once = once
        self.freshness = freshness
        self.outcome = outcome
        self.clock = clock
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            try await loop()
        } onGracefulShutdown: {
            state.requestStop()
            state.notifyStopping()
            state.setActivity("stopping: no new tenant starts")
        }
    }

    private func loop() async throws {
        if once {
            let context = state.currentContext.context
            let slot = context.settings.daemon.schedule.previous(atOrBefore: clock.now())
            await runCycle(context, tenants: nil, skipIfBackedUpSince: slot, reuseSharedSince: slot, reason: "once")
            return
        }
        var plannedGeneration = -1
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let (context, generation) = state.currentContext
            let settings = context.settings
            if generation != plannedGeneration {
                plannedGeneration = generation
                if settings.daemon.catchUp { await beating { await catchUp(context) } }
                continue
            }
            let schedule = settings.daemon.schedule
            let now = clock.now()
            guard let (slot, startAt) = Self.nextStart(schedule: schedule, after: now, randomDelay: settings.daemon.randomDelay) else {
                state.setActivity("idle: the schedule \(schedule) never runs; fix schedule.cron and reload")
                guard await sleep(until: .distantFuture, unlessReloadedFrom: generation) else { return }
                continue
            }
            state.setActivity("idle, next cycle \(Self.describe(slot, in: schedule.timeZone, now: now))")
            logger.info("next cycle scheduled", metadata: ["slot": "\(BackupKey.format(slot))", "start_at": "\(BackupKey.format(startAt))"])
            guard await sleep(until: startAt, unlessReloadedFrom: generation) else { return }
            guard state.current.generation == generation else { continue }  // reloaded: plan again
            await runCycle(context, tenants: nil, skipIfBackedUpSince: slot, reuseSharedSince: slot, reason: "schedule")
        }
    }

    /// The next slot after `now` and when its cycle starts: the slot plus a random delay of at most
    /// `randomDelay` (so several hosts, or a fleet of daemons, do not all start in the same second).
    /// `nil` when the schedule never runs again.
    static func nextStart(
        schedule: CronSchedule, after now: Date, randomDelay: Duration, random: (ClosedRange<Double>) -> Double = { Double.random(in: $0) }
    ) -> (slot: Date, startAt: Date)? {
        guard let slot = schedule.next(after: now) else { return nil }
        let delay = randomDelay > .zero ? random(0...Double(randomDelay.components.seconds)) : 0
        return (slot, slot.addingTimeInterval(delay))
    }

    /// Runs `body` while a heartbeat ticks every second, so the watchdog knows the scheduler is at work (a
    /// cycle, or a catch-up check waiting on the database and the bucket).
    private func beating<T: Sendable>(_ body: () async -> T) async -> T {
        let state = self.state
        return await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while !Task.isCancelled {
                    state.beat()
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            let result = await body()
            group.cancelAll()
            return result
        }
    }

    /// Sleeps in one-second ticks (each a heartbeat) until `date`. Returns `false` on shutdown, `true` when
    /// the time came or the settings were reloaded.
    func sleep(until date: Date, unlessReloadedFrom generation: Int) async -> Bool {
        await state.sleep(until: date, unlessReloadedFrom: generation, clock: clock) { state.beat() }
    }

    /// Backs up, at once, every tenant whose newest backup is older than one schedule period.
    private func catchUp(_ context: BackupContext) async {
        let now = clock.now()
        guard let since = Self.catchUpHorizon(schedule: context.settings.daemon.schedule, now: now) else { return }
        let overdue: [String]
        do throws(ContextError) {
            let tenants = try await context.inspectDatabase().discovered.tenants
            if tenants.isEmpty {
                // Selecting nothing is a failure to report (status line, exit status, metrics), not "all caught up".
                await runCycle(context, tenants: nil, skipIfBackedUpSince: since, reuseSharedSince: nil, reason: "catch-up")
                return
            }
            let catalog = try context.catalog()
            do throws(S3Error) {
                overdue = try await Self.overdueTenants(tenants, catalog: catalog, trust: context.manifestTrust(), since: since)
            } catch {
                throw .bucket(error)
            }
        } catch {
            logger.error("catch-up check failed; waiting for the next slot", metadata: ["error": "\(error)"])
            return
        }
        guard !overdue.isEmpty else {
            logger.info("catch-up: every tenant has a backup younger than one schedule period")
            return
        }
        logger.notice("catch-up: backing up tenants whose newest backup is older than one schedule period", metadata: ["tenants": "\(overdue.count)"])
        // Tenants restore on top of the shared dump of their cycle: reuse only one made moments ago (by another
        // host catching up at the same time), never an old one.
        await runCycle(context, tenants: overdue, skipIfBackedUpSince: since, reuseSharedSince: now.addingTimeInterval(-300), reason: "catch-up")
    }

    /// Backups older than this are overdue at start or after a reload: one schedule period before `now`.
    static func catchUpHorizon(schedule: CronSchedule, now: Date) -> Date? {
        schedule.period(after: now).map { now.addingTimeInterval(-Double($0.components.seconds)) }
    }

    /// The tenants to catch up, from one listing of the bucket: those with no backup, or whose newest one (not
    /// future-dated) is older than `since`.
    static func overdueTenants(_ tenants: [String], catalog: BackupCatalog, trust: ManifestTrust, since: Date) async throws(S3Error) -> [String] {
        overdue(tenants: tenants, newest: try await catalog.newestVouchedOfEveryTenant(trust: trust), since: since)
    }

    /// The tenants to catch up: those with no backup, or whose newest one is older than `since`.
    static func overdue(tenants: [String], newest: [String: BackupKey], since: Date) -> [String] {
        tenants.filter { tenant in newest[tenant].map { $0.timestamp < since } ?? true }
    }

    /// One cycle, with a heartbeat while it runs and the stop deadline enforced on graceful shutdown.
    private func runCycle(_ context: BackupContext, tenants: [String]?, skipIfBackedUpSince since: Date?, reuseSharedSince: Date?, reason: String) async {
        let settings = context.settings
        var cycle = BackupCycle(context: context)
        cycle.applyRetention = true
        cycle.skipIfBackedUpSince = since
        cycle.reuseSharedSince = reuseSharedSince
        cycle.lockWait = settings.daemon.lockWait
        cycle.lockCheckInterval = settings.daemon.lockCheckInterval
        let state = self.state
        cycle.shouldStartTenant = { !state.stopRequested }
        cycle.onEvent = { event in
            if case .tenantStarted(let tenant, let position, let count) = event {
                state.setActivity("backing up \(BackupSchema.display(tenant)) (\(position)/\(count))")
            }
        }
        state.setActivity("backing up (\(reason))")
        let logger = self.logger
        let stopTimeout = settings.daemon.stopTimeout
        let configured = cycle
        let (result, _) = await beating {
            await withWatcher { () async -> Result<BackupReport, BackupCycleError> in
                do throws(BackupCycleError) {
                    return .success(try await configured.run(tenants: tenants))
                } catch {
                    return .failure(error)
                }
            } until: {
                // On SIGTERM no new tenant starts; those in flight get the stop timeout, then are cancelled (their
                // dumps stopped, their uploads aborted).
                do {
                    try await gracefulShutdown()
                    logger.notice("stopping: no new tenant starts; tenants in flight may finish", metadata: ["stop_timeout": "\(stopTimeout)"])
                    try await Task.sleep(for: stopTimeout)
                    return ()
                } catch {
                    return nil
                }
            } onEvent: { _ in
                logger.warning("stop timeout passed: stopping the dumps in flight and aborting their uploads")
            }
        }
        switch result {
        case .success(let report):
            let attempted = report.tenants.count + report.skipped.filter { $0.reason != .shuttingDown }.count
            let ok = attempted - report.tenants.filter { !$0.succeeded }.count
            let sharedFailed = report.shared.filter { !$0.succeeded }.count
            var summary = "\(ok)/\(attempted) ok"
            if sharedFailed > 0 { summary += ", \(sharedFailed) shared schema(s) failed" }
            if !report.retentionFailures.isEmpty { summary += ", retention failed for \(report.retentionFailures.count) tenant(s)" }
            let notStarted = report.skipped.filter { $0.reason == .shuttingDown }.count
            if notStarted > 0 { summary += ", \(notStarted) not started (stopping)" }
            state.setLastCycle(summary)
            outcome.record(succeeded: report.allSucceeded && report.retentionFailures.isEmpty)
        case .failure(let error):
            logger.error("backup cycle could not run", metadata: ["error": "\(error)"])
            state.setLastCycle("cycle failed: \(error)")
            outcome.record(succeeded: false)
        }
        state.setActivity(state.stopRequested ? "stopping" : "idle")
        await freshness?.refresh()
    }

    /// `02:00 Europe/Madrid` when today (in that zone), `Mon 02:00 Europe/Madrid` otherwise.
    static func describe(_ date: Date, in zone: TimeZone, now: Date = Date()) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = calendar.isDate(date, inSameDayAs: now) ? "HH:mm" : "EEE HH:mm"
        return "\(formatter.string(from: date)) \(zone.identifier)"
    }
}

/// Whether the last cycle succeeded, for `run --once` to turn into an exit status.
public final class CycleOutcomeBox: @unchecked Sendable {
    private let lock = NSLock()
    private var lastSucceeded = false

    public init() {}

    func record(succeeded: Bool) {
        lock.lock()
        lastSucceeded = succeeded
        lock.unlock()
    }

    /// Whether the last cycle ran and every schema in it succeeded (false before any cycle).
    public var succeeded: Bool {
        lock.lock()
        defer { lock.unlock() }
        return lastSucceeded
    }
}
