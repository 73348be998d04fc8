import Foundation
import Logging
import NIOCore
import Testing
import TenantBackupTesting

@testable import TenantBackup

/// Retention's brakes over the in-memory store and a fixed clock: no endpoint, every brake on its own.
@Suite struct RetentionBrakesTests {
    static let now = Date(timeIntervalSince1970: 1_795_918_530)  // 2026-11-29 02:15:30 UTC

    func key(_ tenant: String, hoursAgo: Double, suffix: String = ".sql.zst") -> BackupKey {
        BackupKey(prefix: "", area: .tenant, schema: tenant, timestamp: Self.now.addingTimeInterval(-hoursAgo * 3600), suffix: suffix)
    }

    /// Backups at these ages, each with a manifest that vouches for it.
    func store(_ tenant: String = "t", hoursAgo: [Double], manifests: Bool = true) throws -> (MemoryObjectStore, [BackupKey]) {
        let store = MemoryObjectStore()
        let keys = hoursAgo.map { key(tenant, hoursAgo: $0) }
        for key in keys {
            let body = "dump \(key.key)"
            store.put(key.key, body)
            if manifests {
                let manifest = BackupManifest(
                    area: "tenant", schema: tenant, key: key.key, bytes: Int64(body.utf8.count), sha256: "", dumpBytes: 0, compression: "zstd",
                    encryption: nil, format: "plain", pgDumpVersion: "15", serverVersion: "15", toolVersion: "test", startedAt: key.timestamp,
                    finishedAt: key.timestamp, sharedBackups: [], tableRowCounts: nil)
                store.put(key.manifestKey, bytes: ByteBuffer(data: try manifest.encoded()))
            }
        }
        return (store, keys)
    }

    func runner(_ store: MemoryObjectStore, _ settings: RetentionSettings = RetentionSettings(maxDeleteFraction: 1)) -> RetentionRunner {
        RetentionRunner(settings: settings, client: store, prefix: "", logger: .quiet, now: { Self.now })
    }

    static let zeros = RetentionPolicy(keepLast: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0)

    @Test func afterAFailedBackupNothingIsDeleted() async throws {
        let (store, _) = try store(hoursAgo: [1, 100, 200, 300])
        let outcome = try await runner(store, RetentionSettings(policy: Self.zeros, maxDeleteFraction: 1)).run(tenant: "t", trigger: .afterBackup(succeeded: false))
        #expect(outcome.status == .refused(.backupFailed))
        #expect(store.deletedKeys.isEmpty)
    }

    @Test func aManualPruneOfAStaleTenantIsRefusedUnlessForced() async throws {
        let (store, _) = try store(hoursAgo: [100, 200, 300])
        let settings = RetentionSettings(policy: Self.zeros, maxDeleteFraction: 1)
        let refused = try await runner(store, settings).run(tenant: "t", trigger: .manual)
        guard case .refused(.newestTooOld(_, let age, _)) = refused.status else { Issue.record("\(refused.status)"); return }
        #expect(age == .seconds(100 * 3600))
        #expect(store.deletedKeys.isEmpty)
        let forced = try await runner(store, settings).run(tenant: "t", trigger: .manual, force: true)
        #expect(forced.status == .applied && !store.deletedKeys.isEmpty)
    }

    @Test func aPlanOverTheFractionIsRefusedAndTheForcedOneKeepsTheNewest() async throws {
        let (store, keys) = try store(hoursAgo: [1, 30, 60, 90])
        let refused = try await runner(store, RetentionSettings(policy: Self.zeros, maxDeleteFraction: 0.5)).run(tenant: "t", trigger: .manual)
        #expect(refused.status == .refused(.tooManyDeletions(planned: 3, of: 4, limit: 0.5)))
        #expect(store.deletedKeys.isEmpty)
        let forced = try await runner(store, RetentionSettings(policy: Self.zeros, maxDeleteFraction: 0.5)).run(tenant: "t", trigger: .manual, force: true)
        #expect(forced.status == .applied)
        #expect(store.keys == [keys[0].key, keys[0].manifestKey])
    }

    @Test func theNewestVerifiedBackupSurvivesWhenTheNewestHasNoManifest() async throws {
        let (store, keys) = try store(hoursAgo: [30, 60, 90])
        let newest = key("t", hoursAgo: 1)
        store.put(newest.key, "manifest-less")
        let outcome = try await runner(store, RetentionSettings(policy: Self.zeros, maxDeleteFraction: 1)).run(tenant: "t", trigger: .manual)
        #expect(outcome.plan.kept.map(\.candidate.key) == [newest.key, keys[0].key])
        #expect(Set(store.keys) == [newest.key, keys[0].key, keys[0].manifestKey])
    }

    @Test func sidecarsOtherTenantsAndFutureKeysAreNeverTouched() async throws {
        let (store, keys) = try store(hoursAgo: [1, 30, 60, 90])
        let untouchable = [
            keys[1].key + ".sha256", keys[2].key + ".bak", "backups/t/notes.txt", "backups/t2/" + key("t2", hoursAgo: 500).fileName,
            key("t", hoursAgo: -24 * 365).key, "shared/public/" + key("public", hoursAgo: 500).fileName,
        ]
        for key in untouchable { store.put(key) }
        _ = try await runner(store, RetentionSettings(policy: Self.zeros, maxDeleteFraction: 1)).run(tenant: "t", trigger: .manual)
        for key in untouchable { #expect(store.keys.contains(key), "\(key)") }
        #expect(store.deletedKeys.allSatisfy { $0.hasPrefix("backups/t/backup-sql-t-") })
    }

    @Test func aDryRunDeletesAndAbortsNothing() async throws {
        let (store, _) = try store(hoursAgo: [1, 30, 60, 90])
        store.startUpload(key: key("t", hoursAgo: 48).key, initiated: Self.now.addingTimeInterval(-48 * 3600))
        let outcome = try await runner(store, RetentionSettings(policy: Self.zeros, maxDeleteFraction: 1)).run(tenant: "t", trigger: .manual, dryRun: true)
        #expect(outcome.plan.deleted.count == 3 && outcome.abortedUploads.count == 1)
        #expect(store.deletedKeys.isEmpty && store.uploads.count == 1)
    }

    @Test func onlyUploadsOlderThanTheGraceAreAborted() async throws {
        let (store, _) = try store(hoursAgo: [1])
        store.startUpload(key: key("t", hoursAgo: 48).key, initiated: Self.now.addingTimeInterval(-48 * 3600))
        store.startUpload(key: key("t", hoursAgo: 1).key, initiated: Self.now.addingTimeInterval(-3600))
        store.startUpload(key: key("t2", hoursAgo: 48).key, initiated: Self.now.addingTimeInterval(-48 * 3600))
        let outcome = try await runner(store).run(tenant: "t", trigger: .afterBackup(succeeded: true))
        #expect(outcome.abortedUploads == [key("t", hoursAgo: 48).key])
        #expect(store.uploads.map(\.key).sorted() == [key("t", hoursAgo: 1).key, key("t2", hoursAgo: 48).key].sorted())
    }
}
