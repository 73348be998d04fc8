import Foundation
import Synchronization
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

    static let signingKey = SigningKey(.init())
    static let trust = ManifestTrust(keys: [signingKey.publicKey])

    /// How a test object got into the bucket.
    enum Writer {
        /// A backup of ours: its manifest signed by this host's key.
        case backup
        /// A bucket writer's object, with no manifest.
        case noManifest
        /// A bucket writer's object with a manifest no trusted key signed.
        case unsignedManifest
        /// A bucket writer's object with a manifest signed by a key we do not trust.
        case foreignSignature
    }

    func put(_ store: MemoryObjectStore, _ tenant: String, at date: Date, area: BackupKey.Area = .tenant, by writer: Writer = .backup) -> BackupKey {
        let key = BackupKey(prefix: "", area: area, schema: tenant, timestamp: date, suffix: ".sql.zst")
        store.put(key.key)
        let manifest = BackupManifest(
            area: area == .tenant ? "tenant" : "shared", schema: tenant, key: key.key, bytes: 5, sha256: "", dumpBytes: 5, compression: "zstd",
            encryption: nil, format: "plain", pgDumpVersion: "15", serverVersion: "15", toolVersion: "test", startedAt: date, finishedAt: date,
            sharedBackups: [], tableRowCounts: nil)
        let signed: BackupManifest?
        switch writer {
        case .backup: signed = try! Self.signingKey.sign(manifest)
        case .noManifest: signed = nil
        case .unsignedManifest: signed = manifest
        case .foreignSignature: signed = try! SigningKey(.init()).sign(manifest)
        }
        if let signed { store.put(key.manifestKey, String(decoding: try! signed.encoded(), as: UTF8.self)) }
        return key
    }

    /// A bucket writer's object in this slot never makes a tenant look backed up, whatever manifest it
    /// carries; nor does a genuine manifest copied beside another object.
    @Test(arguments: [Writer.noManifest, .unsignedManifest, .foreignSignature])
    func anObjectABucketWriterPutThereIsNeverABackupInThisSlot(writer: Writer) async throws {
        let store = MemoryObjectStore()
        let yesterday = put(store, "t", at: Self.slot.addingTimeInterval(-86400))
        _ = put(store, "t", at: Self.slot.addingTimeInterval(300), by: writer)
        #expect(try await BackupCycle.backupInSlot(of: .tenant("t"), catalog: catalog(store), trust: Self.trust, slot: Self.slot) == nil)
        #expect(try await catalog(store).newestVouchedOfEveryTenant(trust: Self.trust) == ["t": yesterday])
        let shared = put(store, "public", at: Self.slot.addingTimeInterval(60), area: .shared, by: writer)
        #expect(await BackupCycle.sharedDumpToReuse(of: .shared("public"), catalog: catalog(store), trust: Self.trust, since: Self.slot, snapshot: nil).reuse == false)
        #expect(shared.area == .shared)
        let tenants = ["t"]
        #expect(try await CycleScheduler.overdueTenants(tenants, catalog: catalog(store), trust: Self.trust, since: Self.slot) == ["t"])
    }

    @Test func aGenuineManifestCopiedBesideAnotherObjectDoesNotVouchForIt() async throws {
        let store = MemoryObjectStore()
        let genuine = put(store, "t", at: Self.slot.addingTimeInterval(-86400))
        let planted = BackupKey(prefix: "", area: .tenant, schema: "t", timestamp: Self.slot.addingTimeInterval(300), suffix: ".sql.zst")
        store.put(planted.key)
        store.put(planted.manifestKey, String(decoding: try await store.get(key: genuine.manifestKey, limit: 1 << 20).readableBytesView, as: UTF8.self))
        #expect(try await BackupCycle.backupInSlot(of: .tenant("t"), catalog: catalog(store), trust: Self.trust, slot: Self.slot) == nil)
    }

    @Test func aTenantBackedUpInThisSlotIsSkippedAndOneFromYesterdayIsNot() async throws {
        let store = MemoryObjectStore()
        let done = put(store, "done", at: Self.slot.addingTimeInterval(300))
        _ = put(store, "due", at: Self.slot.addingTimeInterval(-86400))
        #expect(try await BackupCycle.backupInSlot(of: .tenant("done"), catalog: catalog(store), trust: Self.trust, slot: Self.slot) == done)
        #expect(try await BackupCycle.backupInSlot(of: .tenant("due"), catalog: catalog(store), trust: Self.trust, slot: Self.slot) == nil)
        #expect(try await BackupCycle.backupInSlot(of: .tenant("never"), catalog: catalog(store), trust: Self.trust, slot: Self.slot) == nil)
        // Another tenant's backup in this slot, or a shared dump of the same name, never skips this one.
        _ = put(store, "due2", at: Self.slot.addingTimeInterval(60))
        _ = put(store, "due", at: Self.slot.addingTimeInterval(60), area: .shared)
        #expect(try await BackupCycle.backupInSlot(of: .tenant("due"), catalog: catalog(store), trust: Self.trust, slot: Self.slot) == nil)
    }

    @Test func aFutureDatedKeyNeverMakesATenantLookBackedUp() async throws {
        let store = MemoryObjectStore()
        _ = put(store, "t", at: Self.now.addingTimeInterval(5 * 365 * 86400))
        let old = put(store, "t", at: Self.slot.addingTimeInterval(-86400))
        #expect(try await catalog(store).newest(of: .tenant("t")) == old)
        #expect(try await BackupCycle.backupInSlot(of: .tenant("t"), catalog: catalog(store), trust: Self.trust, slot: Self.slot) == nil)
        #expect(try await catalog(store).newestOfEveryTenant() == ["t": old])
    }

    @Test func anotherHostsSharedDumpIsReusedOnlyWithoutASnapshotOfOurOwnAndOnlyWhenFresh() async throws {
        let store = MemoryObjectStore()
        let fresh = put(store, "public", at: Self.slot.addingTimeInterval(60), area: .shared)
        let shared = BackupSchema.shared("public")
        let reused = await BackupCycle.sharedDumpToReuse(of: shared, catalog: catalog(store), trust: Self.trust, since: Self.slot, snapshot: nil)
        #expect(reused.newest == fresh && reused.reuse)
        #expect(await BackupCycle.sharedDumpToReuse(of: shared, catalog: catalog(store), trust: Self.trust, since: Self.slot, snapshot: "00000003-0000001B-1").reuse == false)
        #expect(await BackupCycle.sharedDumpToReuse(of: shared, catalog: catalog(store), trust: Self.trust, since: Self.slot.addingTimeInterval(120), snapshot: nil).reuse == false)
        #expect(await BackupCycle.sharedDumpToReuse(of: shared, catalog: catalog(store), trust: Self.trust, since: nil, snapshot: nil).reuse == false)
        // A tenant's backup named like the shared schema is not a shared dump.
        let other = MemoryObjectStore()
        _ = put(other, "public", at: Self.slot.addingTimeInterval(60))
        let none = await BackupCycle.sharedDumpToReuse(of: shared, catalog: catalog(other), trust: Self.trust, since: Self.slot, snapshot: nil)
        #expect(none.newest == nil && !none.reuse)
    }

    @Test func catchUpOnTheSchedulersClockTakesTenantsWithoutABackupOrOlderThanOnePeriod() async throws {
        let store = MemoryObjectStore()
        let clock = VirtualClock(at: Self.now)
        _ = put(store, "fresh", at: Self.now.addingTimeInterval(-3600))
        _ = put(store, "stale", at: Self.now.addingTimeInterval(-2 * 86400))
        _ = put(store, "clock", at: Self.now.addingTimeInterval(3 * 365 * 86400))  // only a future-dated key
        let schedule = try CronSchedule("0 2 * * *")
        let since = try #require(CycleScheduler.catchUpHorizon(schedule: schedule, now: clock.now))
        #expect(since == Self.now.addingTimeInterval(-86400))
        let tenants = ["clock", "fresh", "never", "stale"]
        #expect(try await CycleScheduler.overdueTenants(tenants, catalog: catalog(store), trust: Self.trust, since: since) == ["clock", "never", "stale"])
        // A day later on the same clock, the fresh one is overdue too.
        try await clock.wallClock.sleep(.seconds(86400))
        let later = BackupCatalog(client: store, prefix: "", now: { clock.now })
        let tomorrow = try #require(CycleScheduler.catchUpHorizon(schedule: schedule, now: clock.now))
        #expect(try await CycleScheduler.overdueTenants(tenants, catalog: later, trust: Self.trust, since: tomorrow) == tenants)
    }

    @Test func aStopLeavesEveryTenantNotYetStartedAndTheLimitHolds() async throws {
        let tenants = (1...7).map { "t\($0)" }
        let counts = Mutex((running: 0, most: 0, started: [String]()))
        let stopping = Mutex(false)
        let outcomes = await BackupCycle.forEachTenant(
            tenants, limit: 2, shouldStart: { !stopping.withLock { $0 } },
            started: { name, position, count in
                counts.withLock { $0.started.append("\(name) \(position)/\(count)") }
                if position == 4 { stopping.withLock { $0 = true } }  // SIGTERM right after t4 started
            }
        ) { tenant in
            counts.withLock { state in
                state.running += 1
                state.most = max(state.most, state.running)
            }
            try? await Task.sleep(for: .milliseconds(20))
            counts.withLock { $0.running -= 1 }
            return tenant.uppercased()
        }
        // The tenants started before the stop finish; none starts after it.
        let ran = outcomes.compactMap { $0 }
        #expect(ran.count == 4 && ran == ["T1", "T2", "T3", "T4"], "\(outcomes)")
        #expect(outcomes[4...].allSatisfy { $0 == nil })
        #expect(counts.withLock { $0.most } == 2)
        #expect(counts.withLock { $0.started } == ["t1 1/7", "t2 2/7", "t3 3/7", "t4 4/7"])
    }

    @Test func withoutAStopEveryTenantRunsInOrder() async {
        let outcomes = await BackupCycle.forEachTenant(["a", "b", "c"], limit: 8, shouldStart: nil, started: nil) { $0 + "!" }
        #expect(outcomes == ["a!", "b!", "c!"])
        #expect(await BackupCycle.forEachTenant([String](), limit: 2, shouldStart: nil, started: nil) { $0 }.isEmpty)
    }
}
