import Foundation
import NIOCore
import NIOFoundationCompat
import Testing
import TenantBackupTesting

@testable import TenantBackup

/// Retention and the audit trail over the in-memory store: every deletion is recorded before it happens, a
/// record that cannot be stored stops them all, and records older than audit.retention_days go.
@Suite struct RetentionAuditTests {
    static let now = Date(timeIntervalSince1970: 1_795_918_530)  // 2026-11-29 02:15:30 UTC

    /// A store where writes of audit records fail (the credentials may not write `audit/`).
    final class AuditRefusingStore: ObjectStore {
        let inner: MemoryObjectStore
        init(_ inner: MemoryObjectStore) { self.inner = inner }
        func list(prefix: String, limit: Int?) async throws(S3Error) -> [S3ObjectSummary] { try await inner.list(prefix: prefix, limit: limit) }
        func get(key: String, limit: Int) async throws(S3Error) -> ByteBuffer { try await inner.get(key: key, limit: limit) }
        func delete(keys: [String]) async throws(S3Error) -> S3DeleteResult { try await inner.delete(keys: keys) }
        func incompleteUploads(prefix: String) async throws(S3Error) -> [S3MultipartUpload] { try await inner.incompleteUploads(prefix: prefix) }
        func abortUpload(key: String, uploadId: String) async throws(S3Error) { try await inner.abortUpload(key: key, uploadId: uploadId) }
        func create(key: String, body: ByteBuffer, contentType: String) async throws(S3Error) {
            throw S3Error(operation: "PutObject", bucket: "memory", key: key, cause: .service(status: 403, code: "AccessDenied", message: nil, requestId: nil))
        }
    }

    /// Daily backups of `t` for `days` days, the newest an hour old.
    func backups(_ store: MemoryObjectStore, days: Int) -> [String] {
        (0..<days).map { day in
            let key = BackupKey(prefix: "", schema: .tenant("t"), timestamp: Self.now.addingTimeInterval(-3600 - Double(day) * 86400), suffix: ".sql.zst").key
            store.put(key)
            return key
        }
    }

    func runner(_ store: any ObjectStore, retentionDays: Int = 400) -> RetentionRunner {
        var settings = RetentionSettings(maxDeleteFraction: 1)
        settings.policy = RetentionPolicy(keepLast: 1, keepDaily: 3, keepWeekly: 0, keepMonthly: 0)
        var runner = RetentionRunner(settings: settings, client: store, prefix: "", logger: .quiet, now: { Self.now })
        runner.audit = AuditTrail(client: store, prefix: "", logger: .quiet, retentionDays: retentionDays)
        runner.actor = "alice"
        return runner
    }

    @Test func everyDeletionIsRecordedFirstAndOldRecordsExpire() async throws {
        let store = MemoryObjectStore()
        let keys = backups(store, days: 6)
        // One record from 500 days ago (expired), one from 10 days ago (kept), and another tenant's old one.
        let old = AuditRecord(action: .list, tenant: "t", key: nil, outcome: .ok, actor: "bob", time: Self.now.addingTimeInterval(-500 * 86400))
        let recent = AuditRecord(action: .list, tenant: "t", key: nil, outcome: .ok, actor: "bob", time: Self.now.addingTimeInterval(-10 * 86400))
        let other = AuditRecord(action: .list, tenant: "t2", key: nil, outcome: .ok, actor: "bob", time: Self.now.addingTimeInterval(-500 * 86400))
        for record in [old, recent, other] { store.put(record.objectKey(prefix: ""), bytes: ByteBuffer(data: try record.encoded())) }

        let outcome = try await runner(store).run(tenant: "t", trigger: .manual)
        #expect(outcome.status == .applied)
        let deleted = Array(keys.suffix(3))
        #expect(Set(outcome.deletedKeys.filter { !$0.hasSuffix(".json") }) == Set(deleted))
        let trail = AuditTrail(client: store, prefix: "", logger: .quiet)
        let records = try await trail.records(tenant: "t")
        let retention = records.filter { $0.action == .retentionDelete }
        #expect(Set(retention.compactMap(\.key)) == Set(deleted))
        #expect(retention.allSatisfy { $0.actor == "alice" && $0.outcome == .ok && $0.tenant == "t" })
        #expect(!store.keys.contains(old.objectKey(prefix: "")))
        #expect(store.keys.contains(recent.objectKey(prefix: "")))
        #expect(store.keys.contains(other.objectKey(prefix: "")), "another tenant's records go with that tenant's retention only")
    }

    @Test func anAuditTrailThatCannotBeWrittenStopsEveryDeletion() async throws {
        let memory = MemoryObjectStore()
        _ = backups(memory, days: 6)
        await #expect(throws: S3Error.self) {
            _ = try await runner(AuditRefusingStore(memory)).run(tenant: "t", trigger: .manual)
        }
        #expect(memory.deletedKeys.isEmpty)
        #expect(memory.keys.count == 6)
    }

    @Test func aDryRunRecordsNothing() async throws {
        let store = MemoryObjectStore()
        _ = backups(store, days: 6)
        _ = try await runner(store).run(tenant: "t", trigger: .manual, dryRun: true)
        #expect(store.keys.allSatisfy { !$0.hasPrefix("audit/") })
    }

    @Test func anEmptyObjectNamedLikeABackupTakesNoSlotAndIsKept() async throws {
        let store = MemoryObjectStore()
        let keys = backups(store, days: 6)
        // The newest of the day before: empty. It must not stand for that day in place of the real one.
        let empty = BackupKey(prefix: "", schema: .tenant("t"), timestamp: Self.now.addingTimeInterval(-3600 - 86400 + 60), suffix: ".sql").key
        store.put(empty, "")
        let outcome = try await runner(store).run(tenant: "t", trigger: .manual)
        #expect(!outcome.plan.decisions.contains { $0.candidate.key == empty })
        #expect(store.keys.contains(empty))
        #expect(store.keys.contains(keys[1]), "the real backup of that day is kept as its daily")
    }

    @Test func recordsRoundTripAndTheirKeysSortByTime() throws {
        let record = AuditRecord(
            action: .download, tenant: "Clínica \"Sur\"", key: "backups/x", outcome: .refused, actor: "root (sudo by alice)", detail: "why",
            time: Date(timeIntervalSince1970: 1_796_050_000.123))
        let decoded = try AuditRecord.decode(record.encoded())
        #expect(decoded == AuditRecord(
            action: .download, tenant: "Clínica \"Sur\"", key: "backups/x", outcome: .refused, actor: "root (sudo by alice)", detail: "why",
            time: Date(timeIntervalSince1970: 1_796_050_000.123), id: record.id))
        #expect(record.objectKey(prefix: "p/").hasPrefix("p/audit/Cl%C3%ADnica%20%22Sur%22/2026/11/30/20261130T"))
        #expect(AuditRecord.time(ofKey: record.objectKey(prefix: "")).map { abs($0.timeIntervalSince(record.time)) < 0.001 } == true)
        let later = AuditRecord(action: .list, tenant: "t", key: nil, outcome: .ok, actor: "a", time: record.time.addingTimeInterval(0.002))
        #expect(later.objectKey(prefix: "") > AuditRecord(action: .list, tenant: "t", key: nil, outcome: .ok, actor: "a", time: record.time).objectKey(prefix: ""))
    }
}
