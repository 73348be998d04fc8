import Crypto
import Foundation
import NIOCore
import Testing
import TenantBackupTesting

@testable import TenantBackup

/// A store that fails to answer for one listed object: an error, a 404 for what it just listed, or a body cut
/// short (200 with fewer bytes than listed).
final class UnansweringStore: ObjectStore {
    enum Failure: String, CaseIterable, Sendable { case error, notFound, cutShort }
    let inner: MemoryObjectStore
    let key: String
    let failure: Failure

    init(_ inner: MemoryObjectStore, failing key: String, with failure: Failure) {
        (self.inner, self.key, self.failure) = (inner, key, failure)
    }

    func list(prefix: String, limit: Int?) async throws(S3Error) -> [S3ObjectSummary] { try await inner.list(prefix: prefix, limit: limit) }
    func get(key: String, limit: Int) async throws(S3Error) -> ByteBuffer {
        guard key == self.key else { return try await inner.get(key: key, limit: limit) }
        switch failure {
        case .error:
            throw S3Error(operation: "GetObject", bucket: "b", key: key, cause: .service(status: 500, code: "InternalError", message: nil, requestId: nil), attempts: 5)
        case .notFound:
            throw S3Error(operation: "GetObject", bucket: "b", key: key, cause: .service(status: 404, code: "NoSuchKey", message: nil, requestId: nil))
        case .cutShort:
            let body = try await inner.get(key: key, limit: limit)
            return body.getSlice(at: body.readerIndex, length: body.readableBytes / 2)!
        }
    }
    func delete(keys: [String]) async throws(S3Error) -> S3DeleteResult { try await inner.delete(keys: keys) }
    func incompleteUploads(prefix: String) async throws(S3Error) -> [S3MultipartUpload] { try await inner.incompleteUploads(prefix: prefix) }
    func abortUpload(key: String, uploadId: String) async throws(S3Error) { try await inner.abortUpload(key: key, uploadId: uploadId) }
    func create(key: String, body: ByteBuffer, contentType: String) async throws(S3Error) { try await inner.create(key: key, body: body, contentType: contentType) }
}

/// Found by the adversarial runs: with a newer object without a manifest in front of the newest signed
/// backup, a manifest (or deletion mark) the store did not answer for was read as "unsigned" (or "not
/// deleted"), and the plan deleted the newest good backup. Unanswered is not unsigned: the tenant's
/// retention stops, and nothing is deleted.
@Suite struct UnansweredReadRetentionTests {
    static let now = Date(timeIntervalSince1970: 1_795_918_530)  // 2026-11-29 02:15:30 UTC
    let key = SigningKey(Curve25519.Signing.PrivateKey())

    /// Two signed backups of `t` an hour apart today, a planted newer object without a manifest, and ten
    /// signed daily backups before them (so a plan has something to delete).
    func seed(_ store: MemoryObjectStore) throws -> (newestSigned: BackupKey, older: BackupKey) {
        var made: [BackupKey] = []
        for hoursAgo in [2.0, 3.0] + (1...10).map({ Double($0) * 24 + 3 }) {
            let backup = BackupKey(prefix: "", schema: .tenant("t"), timestamp: Self.now.addingTimeInterval(-hoursAgo * 3600), suffix: ".sql.zst")
            try store.putBackup(backup, "backup \(hoursAgo)", signedBy: key)
            made.append(backup)
        }
        store.put(BackupKey(prefix: "", schema: .tenant("t"), timestamp: Self.now.addingTimeInterval(-3600), suffix: ".sql.zst").key, "planted")
        return (made[0], made[1])
    }

    func runner(_ store: any ObjectStore) -> RetentionRunner {
        var settings = RetentionSettings(maxDeleteFraction: 1)
        settings.policy = RetentionPolicy(keepLast: 1, keepDaily: 3, keepWeekly: 0, keepMonthly: 0)
        var runner = RetentionRunner(settings: settings, client: store, prefix: "", logger: .quiet, now: { Self.now })
        runner.trust = ManifestTrust(keys: [key.publicKey])
        return runner
    }

    @Test(arguments: UnansweringStore.Failure.allCases)
    func aManifestNotAnsweredForStopsTheTenantsRetention(failure: UnansweringStore.Failure) async throws {
        let memory = MemoryObjectStore()
        let (newest, _) = try seed(memory)
        // Answered, the plan deletes old dailies and keeps the newest signed backup.
        let answered = try await runner(memory).run(tenant: "t", trigger: .afterBackup(succeeded: true), dryRun: true)
        #expect(!answered.plan.deleted.isEmpty && answered.plan.kept.contains { $0.candidate.key == newest.key })
        let before = memory.keys
        let store = UnansweringStore(memory, failing: newest.manifestKey, with: failure)
        await #expect(throws: S3Error.self) {
            _ = try await runner(store).run(tenant: "t", trigger: .afterBackup(succeeded: true))
        }
        await #expect(throws: S3Error.self) {
            _ = try await runner(store).run(tenant: "t", trigger: .manual, force: true)
        }
        await #expect(throws: S3Error.self) { _ = try await runner(store).candidates(tenant: "t") }
        #expect(memory.keys == before, "deleted: \(Set(before).subtracting(memory.keys).sorted())")
    }

    @Test func aDeletionMarkNotAnsweredForStopsTheTenantsRetention() async throws {
        let memory = MemoryObjectStore()
        let (newest, _) = try seed(memory)
        var mark = DeletionMark(key: newest.key, bytes: Int64("backup 2.0".utf8.count), deletedBy: "token:abc", deletedAt: Self.now.addingTimeInterval(-600), purgeAfter: Self.now.addingTimeInterval(86400))
        mark = try mark.signed(with: key)
        memory.put(newest.deletionKey, bytes: ByteBuffer(data: try mark.encoded()), lastModified: mark.deletedAt.addingTimeInterval(1))
        let before = memory.keys
        let store = UnansweringStore(memory, failing: newest.deletionKey, with: .error)
        await #expect(throws: S3Error.self) {
            _ = try await runner(store).run(tenant: "t", trigger: .afterBackup(succeeded: true))
        }
        #expect(memory.keys == before)
    }
}
