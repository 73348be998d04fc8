import Foundation
import Testing
import TenantBackupTesting

@testable import TenantBackup

/// The cycle's decisions over the in-memory store and a fixed clock: the slot re-check, the reuse of another
/// host's shared dump, and catch-up, each with the bucket's view as the catalog gives it.
@Suite struct CycleDecisionsTests {
    static let now = Date(timeIntervalSince1970: 1_795_918_530)  // 2026-11-29 02:15:30 UTC
    static let slot = Date(timeIntervalSince1970: 1_795_917_600)  // 02:00:00, the daily slot

    func catalog(_ store: MemoryObjectStore) -> BackupCatalog {
        BackupCatalog(client: store, prefix: "", now: { Self.now })
    }

    func put(_ store: MemoryObjectStore, _ tenant: String, at date: Date, area: BackupKey.Area = .tenant) -> BackupKey {
        let key = BackupKey(prefix: "", area: area, schema: tenant, timestamp: date, suffix: ".sql.zst")
        store.put(key.key)
        return key
    }

    @Test func aTenantBackedUpInThisSlotIsSkippedAndOneFromYesterdayIsNot() async throws {
        let store = MemoryObjectStore()
        _ = put(store, "done", at: Self.slot.addingTimeInterval(300))
        _ = put(store, "due", at: Self.slot.addingTimeInterval(-86400))
        let done = try #require(try await catalog(store).newest(of: .tenant("done")))
        let due = try #require(try await catalog(store).newest(of: .tenant("due")))
        #expect(BackupCycle.alreadyBackedUp(newest: done, slot: Self.slot))
        #expect(!BackupCycle.alreadyBackedUp(newest: due, slot: Self.slot))
    }

    @Test func aFutureDatedKeyNeverMakesATenantLookBackedUp() async throws {
        let store = MemoryObjectStore()
        _ = put(store, "t", at: Self.now.addingTimeInterval(5 * 365 * 86400))
        let old = put(store, "t", at: Self.slot.addingTimeInterval(-86400))
        let newest = try await catalog(store).newest(of: .tenant("t"))
        #expect(newest == old)
        #expect(!BackupCycle.alreadyBackedUp(newest: try #require(newest), slot: Self.slot))
        #expect(try await catalog(store).newestOfEveryTenant() == ["t": old])
    }

    @Test func anotherHostsSharedDumpIsReusedOnlyWithoutASnapshotOfOurOwnAndOnlyWhenFresh() async throws {
        let store = MemoryObjectStore()
        let fresh = put(store, "public", at: Self.slot.addingTimeInterval(60), area: .shared)
        let newest = try #require(try await catalog(store).newest(of: .shared("public")))
        #expect(newest == fresh)
        #expect(BackupCycle.reusesSharedDump(newest: newest, since: Self.slot, snapshot: nil))
        #expect(!BackupCycle.reusesSharedDump(newest: newest, since: Self.slot, snapshot: "00000003-0000001B-1"))
        #expect(!BackupCycle.reusesSharedDump(newest: newest, since: Self.slot.addingTimeInterval(120), snapshot: nil))
        #expect(!BackupCycle.reusesSharedDump(newest: newest, since: nil, snapshot: nil))
    }

    @Test func catchUpTakesTenantsWithoutABackupOrOlderThanOnePeriod() async throws {
        let store = MemoryObjectStore()
        _ = put(store, "fresh", at: Self.now.addingTimeInterval(-3600))
        _ = put(store, "stale", at: Self.now.addingTimeInterval(-2 * 86400))
        _ = put(store, "clock", at: Self.now.addingTimeInterval(3 * 365 * 86400))  // only a future-dated key
        let schedule = try CronSchedule("0 2 * * *")
        let since = try #require(CycleScheduler.catchUpHorizon(schedule: schedule, now: Self.now))
        #expect(since == Self.now.addingTimeInterval(-86400))
        let newest = try await catalog(store).newestOfEveryTenant()
        let overdue = CycleScheduler.overdue(tenants: ["clock", "fresh", "never", "stale"], newest: newest, since: since)
        #expect(overdue == ["clock", "never", "stale"])
    }
}
