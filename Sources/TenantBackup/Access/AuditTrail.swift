import Foundation
import Logging
import NIOCore
import NIOFoundationCompat

/// Writes and reads the audit records of the tenants' backups: each one a journal entry (`AUDIT_ACTION=`,
/// `AUDIT_ACTOR=`, `AUDIT_OUTCOME=`, `TENANT=`, `S3_KEY=`) and an object in the bucket, written with
/// `If-None-Match: *` so no record is ever replaced. The bucket copy works with several hosts and needs no
/// write access to the clinic database.
public struct AuditTrail: Sendable {
    let client: any ObjectStore
    public let prefix: String
    let logger: Logger
    /// Records older than this many days go with the tenant's retention (``pruneExpired(tenant:now:)``).
    public let retentionDays: Int

    public init(client: any ObjectStore, prefix: String, logger: Logger, retentionDays: Int = AuditSettings().retentionDays) {
        self.client = client
        self.prefix = prefix
        self.logger = logger
        self.retentionDays = retentionDays
    }

    /// Stores `record`. A record that cannot be stored is an error: the caller must not carry out the access.
    public func write(_ record: AuditRecord) async throws(S3Error) {
        var metadata: Logger.Metadata = [
            "audit_action": "\(record.action.rawValue)", "audit_actor": "\(record.actor)", "audit_outcome": "\(record.outcome.rawValue)",
            "tenant": "\(record.tenant)", "audit_id": "\(record.id)",
        ]
        if let key = record.key { metadata["s3_key"] = "\(key)" }
        if let detail = record.detail { metadata["detail"] = "\(detail)" }
        let key = record.objectKey(prefix: prefix)
        let body: Data
        do {
            body = try record.encoded()
        } catch {
            throw S3Error(operation: "PutObject", bucket: "", key: key, cause: .invalidRequest("cannot encode the audit record: \(error)"))
        }
        do {
            try await client.create(key: key, body: ByteBuffer(data: body), contentType: "application/json")
        } catch {
            logger.error("audit record not stored; the access is refused", metadata: metadata.merging(["error": "\(error)"]) { $1 })
            throw error
        }
        logger.notice("audit", metadata: metadata)
    }

    /// One page of the tenant's records, newest first (pages count from 1), and how many there are in all.
    /// Only the page's records are read.
    public func page(tenant: String, page: Int, size: Int) async throws(S3Error) -> (count: Int, records: [AuditRecord]) {
        let keys = try await client.list(prefix: AuditRecord.folder(prefix: prefix, tenant: tenant), limit: nil)
            .map(\.key).filter { $0.hasSuffix(".json") }.sorted(by: >)
        let start = max(0, page - 1) * size
        guard start < keys.count else { return (keys.count, []) }
        var records: [AuditRecord] = []
        for key in keys[start..<min(keys.count, start + size)] {
            if let record = try? AuditRecord.decode(Data(buffer: try await client.get(key: key, limit: 1 << 20))) { records.append(record) }
        }
        return (keys.count, records)
    }

    /// The tenant's records, newest first: those at or after `since`, at most `limit`.
    public func records(tenant: String, since: Date? = nil, limit: Int? = nil) async throws(S3Error) -> [AuditRecord] {
        var keys = try await client.list(prefix: AuditRecord.folder(prefix: prefix, tenant: tenant), limit: nil)
            .map(\.key)
            .filter { $0.hasSuffix(".json") }
        if let since { keys = keys.filter { (AuditRecord.time(ofKey: $0) ?? .distantPast) >= since } }
        keys.sort(by: >)
        if let limit { keys = Array(keys.prefix(limit)) }
        var records: [AuditRecord] = []
        for key in keys {
            let data = try await client.get(key: key, limit: 1 << 20)
            guard let record = try? AuditRecord.decode(Data(buffer: data)) else {
                logger.warning("unreadable audit record skipped", metadata: ["tenant": "\(tenant)", "s3_key": "\(key)"])
                continue
            }
            records.append(record)
        }
        return records.sorted { $0.time != $1.time ? $0.time > $1.time : $0.id > $1.id }
    }

    /// Deletes the tenant's records older than ``retentionDays`` before `now`. Returns how many.
    public func pruneExpired(tenant: String, now: Date) async throws(S3Error) -> Int {
        try await prune(tenant: tenant, before: now.addingTimeInterval(-Double(retentionDays) * 86400))
    }

    /// Deletes the tenant's records older than `cutoff` (judged by their keys). Returns how many.
    public func prune(tenant: String, before cutoff: Date) async throws(S3Error) -> Int {
        let old = try await client.list(prefix: AuditRecord.folder(prefix: prefix, tenant: tenant), limit: nil)
            .map(\.key)
            .filter { key in AuditRecord.time(ofKey: key).map { $0 < cutoff } ?? false }
        guard !old.isEmpty else { return 0 }
        let result = try await client.delete(keys: old)
        return result.deleted.count
    }
}
