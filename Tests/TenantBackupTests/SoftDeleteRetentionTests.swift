import Crypto
import Foundation
import NIOCore
import Testing
import TenantBackupTesting

@testable import TenantBackup

/// Retention and the soft deletes of the API (``DeletionMark``): a deleted backup holds no period's place,
/// stays until its grace has passed, and is then purged with everything beside it; a mark the bucket writer
/// made (unsigned, or for another object) changes nothing; and no purge leaves a tenant without a verified
/// backup.
@Suite struct SoftDeleteRetentionTests {
    static let now = Date(timeIntervalSince1970: 1_795_918_530)  // 2026-11-29 02:15:30 UTC
    let key = SigningKey(Curve25519.Signing.PrivateKey())

    /// Five daily backups of tenant `t`, newest first, each with a signed manifest (`signed: false`: unsigned).
    func backups(in store: MemoryObjectStore, signed: Bool = true) throws -> [BackupKey] {
        try (0..<5).map { day in
            let backup = BackupKey(prefix: "", schema: .tenant("t"), timestamp: Self.now.addingTimeInterval(-7200 - Double(day) * 86400), suffix: ".sql.zst")
            try store.putBackup(backup, "backup \(day)", signedBy: signed ? key : nil)
            return backup
        }
    }

    /// Every backup of ``backups(in:signed:)`` is 8 bytes (`backup N`).
    func delete(_ backup: BackupKey, in store: MemoryObjectStore, purgeAfter: Date, signedBy signer: SigningKey?) throws {
        let size = Int64("backup 0".utf8.count)
        var mark = DeletionMark(key: backup.key, bytes: size, deletedBy: "token:abc", deletedAt: Self.now.addingTimeInterval(-86400), purgeAfter: purgeAfter)
        if let signer { mark = try mark.signed(with: signer) }
        store.put(backup.deletionKey, bytes: ByteBuffer(data: try mark.encoded()), lastModified: mark.deletedAt.addingTimeInterval(1))
    }

    func runner(_ store: MemoryObjectStore) -> RetentionRunner {
        var settings = RetentionSettings(maxDeleteFraction: 0.9)
        settings.policy = RetentionPolicy(keepLast: 1, keepDaily: 7, keepWeekly: 0, keepMonthly: 0)
        var runner = RetentionRunner(settings: settings, client: store, prefix: "", logger: .quiet, now: { Self.now })
        runner.trust = ManifestTrust(keys: [key.publicKey])
        return runner
    }

    @Test func aDeletedBackupIsHeldThroughItsGraceThenPurgedWithItsSidecars() async throws {
        let store = MemoryObjectStore()
        let keys = try backups(in: store)
        try delete(keys[2], in: store, purgeAfter: Self.now.addingTimeInterval(3600), signedBy: key)
        try delete(keys[3], in: store, purgeAfter: Self.now.addingTimeInterval(-1), signedBy: key)
        let outcome = try await runner(store).run(tenant: "t", trigger: .afterBackup(succeeded: true))
        // Neither is planned (no daily place), one is held, one purged with its manifest and mark.
        #expect(!outcome.plan.decisions.contains { [keys[2].key, keys[3].key].contains($0.candidate.key) })
        #expect(outcome.softDeleted == [keys[2].key] && outcome.purged == [keys[3].key])
        let left = Set(store.keys)
        #expect(left.isSuperset(of: [keys[2].key, keys[2].manifestKey, keys[2].deletionKey]))
        #expect(left.isDisjoint(with: [keys[3].key, keys[3].manifestKey, keys[3].deletionKey]))
        for other in [keys[0], keys[1], keys[4]] { #expect(left.contains(other.key)) }
        // A dry run after the grace says what would go and deletes nothing.
        let later = runner(store)
        var dry = later
        dry.audit = nil
        let dryRun = try await dry.run(tenant: "t", trigger: .afterBackup(succeeded: true), dryRun: true)
        #expect(dryRun.purged.isEmpty && dryRun.softDeleted == [keys[2].key])
    }

    @Test func aMarkTheBucketWriterMadeChangesNothing() async throws {
        let store = MemoryObjectStore()
        let keys = try backups(in: store)
        // Unsigned, signed by another key, signed for another size, replayed, or of no known time: none hides or
        // purges a good backup.
        try delete(keys[1], in: store, purgeAfter: Self.now.addingTimeInterval(-86400), signedBy: nil)
        try delete(keys[2], in: store, purgeAfter: Self.now.addingTimeInterval(-86400), signedBy: SigningKey(Curve25519.Signing.PrivateKey()))
        var wrongSize = DeletionMark(key: keys[3].key, bytes: 1, deletedBy: "x", deletedAt: Self.now, purgeAfter: Self.now.addingTimeInterval(-86400))
        wrongSize = try wrongSize.signed(with: key)
        store.put(keys[3].deletionKey, bytes: ByteBuffer(data: try wrongSize.encoded()), lastModified: Self.now)
        // A genuine mark replayed (put back days after it was written, say after an operator's undelete).
        var replayed = DeletionMark(key: keys[4].key, bytes: 8, deletedBy: "token:abc", deletedAt: Self.now.addingTimeInterval(-3 * 86400), purgeAfter: Self.now.addingTimeInterval(-86400))
        replayed = try replayed.signed(with: key)
        store.put(keys[4].deletionKey, bytes: ByteBuffer(data: try replayed.encoded()), lastModified: Self.now.addingTimeInterval(-3600))
        // And one the store gives no time for.
        try delete(keys[0], in: store, purgeAfter: Self.now.addingTimeInterval(-86400), signedBy: key)
        store.put(keys[0].deletionKey, bytes: try await store.get(key: keys[0].deletionKey, limit: 1 << 20), lastModified: nil)
        let outcome = try await runner(store).run(tenant: "t", trigger: .afterBackup(succeeded: true))
        #expect(outcome.purged.isEmpty && outcome.softDeleted.isEmpty && outcome.deletedKeys.isEmpty)
        for backup in keys { #expect(store.keys.contains(backup.key)) }
        #expect(outcome.plan.kept.count == 5)
    }

    @Test func noPurgeLeavesTheTenantWithoutAVerifiedBackup() async throws {
        let store = MemoryObjectStore()
        // The one signed backup is the deleted one; the others' manifests are unsigned (a bucket writer's).
        let keys = try backups(in: store, signed: false)
        let size = Int64("backup 4".utf8.count)
        let manifest = BackupManifest(
            area: "tenant", schema: "t", key: keys[4].key, bytes: size, sha256: "00", dumpBytes: 1, compression: "zstd", encryption: nil, format: "plain",
            pgDumpVersion: "15", serverVersion: "15", toolVersion: "test", startedAt: keys[4].timestamp, finishedAt: keys[4].timestamp, sharedBackups: [],
            tableRowCounts: [:])
        store.put(keys[4].manifestKey, bytes: ByteBuffer(data: try key.sign(manifest).encoded()))
        try delete(keys[4], in: store, purgeAfter: Self.now.addingTimeInterval(-1), signedBy: key)
        let outcome = try await runner(store).run(tenant: "t", trigger: .afterBackup(succeeded: true))
        #expect(outcome.purged.isEmpty && outcome.softDeleted == [keys[4].key])
        #expect(store.keys.contains(keys[4].key))
        #expect(outcome.warnings.contains { $0.contains("past their grace but kept") }, "\(outcome.warnings)")
    }
}

/// Found by the adversarial trial of issue 18: with an unsigned manifest put over a signed one (naming no
/// shared dump), shared retention deleted the dump a signed backup restores on. With the trusted keys known,
/// a manifest no trusted key signed stops the shared prune, as an unreadable one does.
@Suite struct SharedRetentionTrustTests {
    static let now = Date(timeIntervalSince1970: 1_795_918_530)

    @Test func anUnsignedManifestCannotUnNameASharedDump() async throws {
        let store = MemoryObjectStore()
        let key = SigningKey(Curve25519.Signing.PrivateKey())
        let old = BackupKey(prefix: "", area: .shared, schema: "public", timestamp: Self.now.addingTimeInterval(-5 * 86400), suffix: ".sql.zst")
        let newest = BackupKey(prefix: "", area: .shared, schema: "public", timestamp: Self.now.addingTimeInterval(-3600), suffix: ".sql.zst")
        for dump in [old, newest] { store.put(dump.key, "shared") }
        let tenant = BackupKey(prefix: "", schema: .tenant("t"), timestamp: old.timestamp, suffix: ".sql.zst")
        store.put(tenant.key, "tenant")
        var manifest = BackupManifest(
            area: "tenant", schema: "t", key: tenant.key, bytes: 6, sha256: "00", dumpBytes: 1, compression: "zstd", encryption: nil, format: "plain",
            pgDumpVersion: "15", serverVersion: "15", toolVersion: "test", startedAt: tenant.timestamp, finishedAt: tenant.timestamp, sharedBackups: [old.key],
            tableRowCounts: [:])
        // The bucket writer's edit: no shared dump named, the signature gone.
        manifest.sharedBackups = []
        store.put(tenant.manifestKey, bytes: ByteBuffer(data: try manifest.encoded()))
        var runner = RetentionRunner(settings: RetentionSettings(maxDeleteFraction: 0.9), client: store, prefix: "", logger: .quiet, now: { Self.now })
        runner.trust = ManifestTrust(keys: [key.publicKey])
        await #expect(throws: RetentionRunner.UnreadableManifest.self) { try await runner.runSharedSchemas() }
        #expect(store.keys.contains(old.key))
        // Signed, the same manifest is believed.
        store.put(tenant.manifestKey, bytes: ByteBuffer(data: try key.sign(manifest).encoded()))
        let outcomes = try await runner.runSharedSchemas()
        #expect(outcomes.first?.deletedKeys.contains(old.key) == true)
    }
}
