import Foundation
import Logging
import Synchronization
import Testing
import TenantBackupTesting

@testable import TenantBackup

/// The scheduler on a virtual wall clock: when a cycle starts, how it waits for its slot, and what wakes it
/// early (a reload) or ends the wait (a stop). Days pass in a moment and no server is involved.
@Suite struct SchedulerClockTests {
    static let start = Date(timeIntervalSince1970: 1_795_917_540)  // 2026-11-29 01:59:00 UTC

    func scheduler(_ clock: VirtualClock, state: DaemonState) -> CycleScheduler {
        CycleScheduler(state: state, logger: .quiet, clock: clock.wallClock)
    }

    func daemonState() -> DaemonState {
        DaemonState(context: BackupContext(settings: Settings(), environment: [:], logger: .quiet), notifier: SystemdNotifier(environment: [:]))
    }

    @Test func theCycleStartsAtTheSlotPlusAtMostTheRandomDelay() throws {
        let schedule = try CronSchedule("0 2 * * *")
        let slot = Self.start.addingTimeInterval(60)
        let exact = try #require(CycleScheduler.nextStart(schedule: schedule, after: Self.start, randomDelay: .zero, random: { _ in 99 }))
        #expect(exact.slot == slot && exact.startAt == slot)
        let latest = try #require(CycleScheduler.nextStart(schedule: schedule, after: Self.start, randomDelay: .seconds(600), random: { $0.upperBound }))
        #expect(latest.slot == slot && latest.startAt == slot.addingTimeInterval(600))
        let earliest = try #require(CycleScheduler.nextStart(schedule: schedule, after: Self.start, randomDelay: .seconds(600), random: { $0.lowerBound }))
        #expect(earliest.startAt == slot)
        // At the slot itself the next one is tomorrow's: a cycle that ended within its second never runs twice.
        #expect(CycleScheduler.nextStart(schedule: schedule, after: slot, randomDelay: .zero)?.slot == slot.addingTimeInterval(86400))
    }

    @Test func theSchedulerWaitsOnItsClockUntilTheStartBeatingEverySecond() async throws {
        let clock = VirtualClock(at: Self.start)
        let state = daemonState()
        let target = Self.start.addingTimeInterval(3 * 86400 + 0.5)
        let cameDue = await scheduler(clock, state: state).sleep(until: target, unlessReloadedFrom: state.current.generation)
        #expect(cameDue)
        #expect(clock.now >= target && clock.now < target.addingTimeInterval(1))
        // Ticks of at most a second, each a heartbeat, so the watchdog never sees a quiet scheduler while it
        // waits for days (and a reload or stop is noticed within a second).
        #expect(clock.longestSleep <= .seconds(1))
        #expect(clock.sleeps >= 3 * 86400)
        #expect(clock.slept >= .seconds(3 * 86400) && clock.slept < .seconds(3 * 86400 + 2))
    }

    @Test func aReloadWakesTheSchedulerBeforeItsSlot() async throws {
        let state = daemonState()
        let reloadAt = Self.start.addingTimeInterval(3600)
        let clock = VirtualClock(at: Self.start) { now in
            if now >= reloadAt, state.current.generation == 0 { state.replace(settings: Settings()) }
        }
        let cameDue = await scheduler(clock, state: state).sleep(until: Self.start.addingTimeInterval(86400), unlessReloadedFrom: 0)
        #expect(cameDue, "a reload returns true: plan again")
        #expect(state.current.generation == 1)
        #expect(clock.now >= reloadAt && clock.now < reloadAt.addingTimeInterval(2), "woke \(clock.now.timeIntervalSince(reloadAt)) s after the reload")
    }

    @Test func aStopEndsTheWaitWithoutRunningTheCycle() async throws {
        let state = daemonState()
        let waiting = Mutex<Task<Bool, Never>?>(nil)
        let stopAt = Self.start.addingTimeInterval(7200)
        let clock = VirtualClock(at: Self.start) { now in
            if now >= stopAt { waiting.withLock { $0?.cancel() } }
        }
        let scheduler = scheduler(clock, state: state)
        let task = waiting.withLock { waiting in
            let task = Task { await scheduler.sleep(until: Self.start.addingTimeInterval(86400), unlessReloadedFrom: 0) }
            waiting = task
            return task
        }
        #expect(await task.value == false)
        #expect(clock.now < stopAt.addingTimeInterval(5))
    }
}
