import Crypto
import Foundation
import NIOCore
import Testing
import TenantBackupTesting

@testable import TenantBackup

/// Retention reads every kept tenant manifest: for the tenant's plan (which backups a signature vouches for),
/// then again for the shared dumps (which ones a kept backup names). A ``ManifestCache`` shared by the
/// runners of a context reads each once, and in the daemon, once until a reload; a manifest replaced since
/// is read and judged again (the bucket is not trusted).
@Suite struct ManifestCacheTests {
    static let now = Date(timeIntervalSince1970: 1_795_918_530)  // 2026-11-29 02:15:30 UTC
    static let day = 86400.0

    struct Bucket {
        let store = MemoryObjectStore()
        let key = SigningKey(Curve25519.Signing.PrivateKey())
        let tenants = ["alba", "brisa", "cora"]

        /// One cycle `days` ago: a shared dump of `public`, and a signed backup of each tenant naming it.
        func cycle(daysAgo days: Double) throws {
            let time = ManifestCacheTests.now.addingTimeInterval(-days * ManifestCacheTests.day - 3600)
            let shared = BackupKey(prefix: "", area: .shared, schema: "public", timestamp: time, suffix: ".sql.zst")
            store.put(shared.key, "shared dump")
            for tenant in tenants {
                let backup = BackupKey(prefix: "", schema: .tenant(tenant), timestamp: time.addingTimeInterval(60), suffix: ".sql.zst")
                try store.putBackup(backup, "\(tenant) rows", sharedBackups: [shared.key], signedBy: key)
            }
        }

        func runner(_ cache: ManifestCache) -> RetentionRunner {
            var settings = RetentionSettings(maxDeleteFraction: 0.9)
            settings.policy = RetentionPolicy(keepLast: 1, keepDaily: 7, keepWeekly: 0, keepMonthly: 0)
            var runner = RetentionRunner(settings: settings, client: store, prefix: "", logger: .quiet, now: { ManifestCacheTests.now })
            runner.trust = ManifestTrust(keys: [key.publicKey])
            runner.manifests = cache
            return runner
        }

        /// The tenants' retention, then the shared dumps': what a cycle runs.
        func prune(_ cache: ManifestCache) async throws -> [RetentionOutcome] {
            let runner = runner(cache)
            for tenant in tenants { _ = try await runner.run(tenant: tenant, trigger: .afterBackup(succeeded: true)) }
            return try await runner.runSharedSchemas()
        }

        var manifestReads: Int { store.reads.filter { $0.hasSuffix(BackupKey.manifestSuffix) }.count }
    }

    @Test func aCycleReadsEachManifestOnceAndTheNextOnlyTheNewOnes() async throws {
        let bucket = Bucket()
        for days in 1...5 { try bucket.cycle(daysAgo: Double(days)) }
        // A shared dump older than every kept backup, that none names: the one thing to prune.
        let unnamed = BackupKey(prefix: "", area: .shared, schema: "public", timestamp: Self.now.addingTimeInterval(-20 * Self.day), suffix: ".sql.zst")
        bucket.store.put(unnamed.key, "an old shared dump")
        let cache = ManifestCache()
        let outcomes = try await bucket.prune(cache)
        #expect(outcomes.flatMap(\.deletedKeys).contains(unnamed.key))
        #expect(bucket.manifestReads == 15, "3 tenants × 5 manifests, each read once (twice without the cache)")
        // The next cycle: one new backup per tenant; only their manifests are read.
        try bucket.cycle(daysAgo: 0)
        _ = try await bucket.prune(cache)
        #expect(bucket.manifestReads == 15 + 3)
        // A new process (`prune` from the CLI) starts with an empty cache: each manifest once, not once for the
        // tenants' retention and again for the shared dumps'.
        let before = bucket.manifestReads
        _ = try await bucket.prune(ManifestCache())
        #expect(bucket.manifestReads - before == 18)
    }

    @Test func aManifestReplacedAfterItWasReadIsReadAndJudgedAgain() async throws {
        let bucket = Bucket()
        for days in 1...3 { try bucket.cycle(daysAgo: Double(days)) }
        let unnamed = BackupKey(prefix: "", area: .shared, schema: "public", timestamp: Self.now.addingTimeInterval(-20 * Self.day), suffix: ".sql.zst")
        bucket.store.put(unnamed.key, "an old shared dump")
        let cache = ManifestCache()
        let runner = bucket.runner(cache)
        for tenant in bucket.tenants { _ = try await runner.run(tenant: tenant, trigger: .afterBackup(succeeded: true)) }
        // Read and believed; then a bucket writer replaces one with an edit that names no shared dump, unsigned.
        let victim = try #require(bucket.store.keys.first { $0.hasPrefix("backups/brisa/") && $0.hasSuffix(BackupKey.manifestSuffix) })
        let backup = try #require(BackupKey.parseManifest(victim, prefix: ""))
        var edited = BackupManifest.describing(backup, body: "\(backup.schema) rows")
        edited.signature = nil
        bucket.store.put(victim, bytes: ByteBuffer(data: try edited.encoded()))
        let reads = bucket.store.reads.count
        await #expect(throws: RetentionRunner.UnreadableManifest.self) { try await runner.runSharedSchemas() }
        #expect(bucket.store.reads.suffix(from: reads).contains(victim), "the replaced manifest was answered from the cache")
        #expect(bucket.store.keys.contains(unnamed.key), "shared retention pruned past a manifest no trusted key signed")
        // And the tenant's own retention no longer counts that backup as vouched for.
        let inspection = try await runner.inspect(tenant: "brisa")
        #expect(inspection.candidates.first { $0.key == backup.key }?.vouched == false)
    }

    @Test func anEntryReadUnderOtherTrustedKeysIsReadAgain() async throws {
        let bucket = Bucket()
        try bucket.cycle(daysAgo: 1)
        let cache = ManifestCache()
        let listed = try await BackupCatalog(client: bucket.store, prefix: "").backups(of: .tenant("alba"))
        let backup = try #require(listed.first)
        let trusted = ManifestTrust(keys: [bucket.key.publicKey])
        let first = try await cache.read(backup.key.manifestKey, eTag: backup.manifestETag, from: bucket.store, trust: trusted)
        #expect(first.verdict.isTrusted)
        _ = try await cache.read(backup.key.manifestKey, eTag: backup.manifestETag, from: bucket.store, trust: trusted)
        #expect(cache.storeReads == 1)
        // A reload that no longer trusts the key (the context's cache is new then; this one must not answer anyway).
        let other = ManifestTrust(keys: [SigningKey(Curve25519.Signing.PrivateKey()).publicKey])
        let again = try await cache.read(backup.key.manifestKey, eTag: backup.manifestETag, from: bucket.store, trust: other)
        #expect(!again.verdict.isTrusted)
        #expect(cache.storeReads == 2)
        // A verdict that does not trust it is not kept: one forged answer must not stand for the manifest until
        // the next reload; the next read asks the store again.
        _ = try await cache.read(backup.key.manifestKey, eTag: backup.manifestETag, from: bucket.store, trust: other)
        #expect(cache.storeReads == 3)
    }

    /// A daemon runs for months: what it keeps must follow the bucket, not grow with every cycle.
    @Test func entriesOfManifestsGoneFromTheBucketAreDroppedAndTheCacheIsBounded() async throws {
        let bucket = Bucket()
        for days in 1...3 { try bucket.cycle(daysAgo: Double(days)) }
        let cache = ManifestCache()
        _ = try await bucket.prune(cache)
        #expect(cache.count == 9)
        let gone = try #require(bucket.store.keys.first { $0.hasPrefix("backups/cora/") && $0.hasSuffix(BackupKey.manifestSuffix) })
        _ = try await bucket.store.delete(keys: [gone, String(gone.dropLast(BackupKey.manifestSuffix.count))])
        _ = try await bucket.runner(cache).run(tenant: "cora", trigger: .afterBackup(succeeded: true))
        #expect(cache.count == 8)
        let small = ManifestCache(maximumEntries: 4)
        _ = try await bucket.prune(small)
        #expect(small.count <= 4)
    }
}
