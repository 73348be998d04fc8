import Crypto
import Foundation
import NIOCore
import Testing
import TenantBackupTesting

@testable import TenantBackup

/// Found by the adversarial trial of issue 17: junk objects put beside genuine backups, each with a manifest
/// copied from a genuine one and edited (key, size, no signature), made `prune` delete the genuine backups,
/// the newest among them. With the trusted keys known, only a signed manifest vouches for a backup.
@Suite struct ForgedManifestRetentionTests {
    static let now = Date(timeIntervalSince1970: 1_795_918_530)  // 2026-11-29 02:15:30 UTC

    @Test func junkWithForgedUnsignedManifestsNeverDisplacesSignedBackups() async throws {
        let store = MemoryObjectStore()
        let key = SigningKey(Curve25519.Signing.PrivateKey())
        var genuine: [String] = []
        for day in 0..<5 {
            let backup = BackupKey(prefix: "", schema: .tenant("t"), timestamp: Self.now.addingTimeInterval(-7200 - Double(day) * 86400), suffix: ".sql.zst")
            let manifest = try store.putBackup(backup, "genuine backup \(day)", signedBy: key)
            genuine.append(backup.key)
            // The same day, later: junk with a forged manifest that names it.
            let junk = BackupKey(prefix: "", schema: .tenant("t"), timestamp: backup.timestamp.addingTimeInterval(3600), suffix: ".sql.zst")
            store.put(junk.key, "junk \(day)")
            var forged = manifest
            forged.key = junk.key
            forged.bytes = Int64("junk \(day)".utf8.count)
            store.put(junk.manifestKey, bytes: ByteBuffer(data: try forged.encoded()))
        }
        var settings = RetentionSettings(maxDeleteFraction: 0.5)
        settings.policy = RetentionPolicy(keepLast: 1, keepDaily: 7, keepWeekly: 0, keepMonthly: 0)
        var runner = RetentionRunner(settings: settings, client: store, prefix: "", logger: .quiet, now: { Self.now })
        runner.trust = ManifestTrust(keys: [key.publicKey])
        let outcome = try await runner.run(tenant: "t", trigger: .afterBackup(succeeded: true))
        let left = Set(try await store.list(prefix: "backups/t/", limit: nil).map(\.key))
        for key in genuine { #expect(left.contains(key), "a genuine backup was deleted: \(outcome.deletedKeys)") }
        // The newest-verified brake protects the newest genuine one, not the junk beside it.
        let verified = outcome.plan.decisions.first { $0.reasons.contains(.newestVerified) }
        #expect(verified?.candidate.key == genuine[0])
    }
}
