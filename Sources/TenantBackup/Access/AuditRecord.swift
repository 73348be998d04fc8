import Foundation

/// One access to a tenant's backups: who did what to which key, when, and how it ended. Written to the
/// journal and, as a small JSON object, to the bucket under `<prefix>audit/<tenant>/` before the access
/// takes effect, so no access goes unrecorded.
public struct AuditRecord: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable, CaseIterable {
        case list, download, presign, delete, restore, verify, adopt, backup
        /// The audit trail itself was read (the API's auditlog endpoint).
        case auditLog = "audit-log"
        /// A backup deleted by the retention policy.
        case retentionDelete = "retention-delete"
        /// A backup deleted through the API brought back by an operator.
        case undelete
        /// A backup deleted through the API removed for good by retention once its grace passed.
        case purge
    }

    public enum Outcome: String, Codable, Sendable {
        /// Allowed and carried out (for a download, the bytes were verified before they were handed over).
        case ok
        /// Refused before anything was read or changed: another tenant's key, a protected backup, a busy lock.
        case refused
        /// Allowed, then failed (a checksum mismatch, an S3 error).
        case failed
        /// Allowed and begun (a restore): its outcome follows in a record of its own, so a killed run shows as
        /// started without an outcome.
        case started
    }

    public var id: String
    public var time: Date
    public var action: Action
    public var tenant: String
    /// The backup's key, or what was asked for when it was refused; `nil` for a listing.
    public var key: String?
    public var outcome: Outcome
    /// The local user for the CLI (`alice`, `root (sudo by alice)`); an API token's id for the HTTP API.
    public var actor: String
    /// Why it was refused or failed, or what it returned (`24 backups`).
    public var detail: String?

    public init(
        action: Action, tenant: String, key: String?, outcome: Outcome, actor: String, detail: String? = nil, time: Date = Date(),
        id: String = AuditRecord.newId()
    ) {
        self.id = id
        self.time = time
        self.action = action
        self.tenant = tenant
        self.key = key
        self.outcome = outcome
        self.actor = actor
        self.detail = detail
    }

    /// 16 random hex digits.
    public static func newId() -> String {
        (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    /// `<prefix>audit/<tenant>/YYYY/MM/DD/<YYYYMMDDTHHMMSS.mmmZ>-<id>.json` (UTC): keys sort by time within
    /// a tenant, and a day's records are one listing.
    public func objectKey(prefix: String) -> String {
        let parts = Self.calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .nanosecond], from: time)
        let day = String(format: "%04d/%02d/%02d", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0)
        let stamp = String(
            format: "%04d%02d%02dT%02d%02d%02d.%03dZ", parts.year ?? 0, parts.month ?? 0, parts.day ?? 0, parts.hour ?? 0,
            parts.minute ?? 0, parts.second ?? 0, (parts.nanosecond ?? 0) / 1_000_000)
        return "\(Self.folder(prefix: prefix, tenant: tenant))\(day)/\(stamp)-\(id).json"
    }

    /// `<prefix>audit/<tenant>/`, the tenant's name encoded as in backup keys.
    public static func folder(prefix: String, tenant: String) -> String {
        "\(StorageLayout(prefix: prefix).auditRoot)\(BackupKey.encode(tenant))/"
    }

    /// The record as the clinic's own audit log (the API) shows it: what the clinic's tokens and tenant-backup
    /// itself did, in full; of the operator's accesses, the action, the time and the outcome, by `operator`,
    /// without the local user's name or the details (a restore's target database, a refusal's reasons); and
    /// never a key that is not one of the clinic's backup keys (as the resolver judges it under `prefix`: another
    /// clinic's, `../`, a shared dump), which may name another clinic. The whole record stays in the journal
    /// and in the operator's `tenant-backup audit`.
    public func clinicView(prefix: String) -> AuditRecord {
        var view = self
        let byClinic = actor.hasPrefix("token:") || actor.hasPrefix("platform-token:") || actor.hasPrefix("platform:")
        let byTenantBackup = actor == "tenant-backup" || actor == "tenant-backup daemon"
        let ownKey = key.map { (try? BackupAccess.resolve($0, tenant: tenant, prefix: prefix)) != nil } ?? true
        if !byClinic, !byTenantBackup {
            view.actor = "operator"
            view.detail = nil
        }
        if !ownKey {
            view.key = nil
            view.detail = "a key outside this clinic's backups"
        }
        return view
    }

    /// When the record of `key` was written, from its key alone (for `--since` without reading it).
    public static func time(ofKey key: String) -> Date? {
        guard let file = key.split(separator: "/").last, file.count >= 20 else { return nil }
        let stamp = String(file.prefix(19))  // YYYYMMDDTHHMMSS.mmm
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss.SSS"
        return formatter.date(from: stamp)
    }

    static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Self.iso8601(date))
        }
        return try encoder.encode(self)
    }

    public static func decode(_ data: Data) throws -> AuditRecord {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = parseISO8601(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an ISO 8601 time: \(text)"))
            }
            return date
        }
        return try decoder.decode(AuditRecord.self, from: data)
    }

    /// `2026-11-30T13:57:09.123Z`.
    public static func iso8601(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    public static func parseISO8601(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
