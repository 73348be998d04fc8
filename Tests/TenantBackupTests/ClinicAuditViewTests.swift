import Foundation
import Testing

@testable import TenantBackup

/// Issue 18: a clinic's own audit log (the API's `/api/auditlog/`) never shows another clinic's key, an
/// operator's user name or the details of an operator's access; what the clinic's tokens and tenant-backup
/// itself did stays whole.
@Suite struct ClinicAuditViewTests {
    let own = "backups/bienestar/backup-sql-bienestar-2026-11-29-021530.sql.zst"

    func record(_ action: AuditRecord.Action, key: String?, outcome: AuditRecord.Outcome = .ok, actor: String, detail: String?) -> AuditRecord {
        AuditRecord(action: action, tenant: "bienestar", key: key, outcome: outcome, actor: actor, detail: detail, time: Date(timeIntervalSince1970: 1_795_918_530))
    }

    @Test func theClinicsOwnAccessesAndTenantBackupsStayWhole() {
        for actor in ["token:abc123", "platform-token:0123456789ab", "platform:dr.ruiz (token 0123456789ab)", "tenant-backup", "tenant-backup daemon"] {
            let original = record(.download, key: own, actor: actor, detail: "verified 12 MiB")
            #expect(original.clinicView(prefix: "") == original)
        }
    }

    @Test func anOperatorsAccessShowsNoUserAndNoDetails() {
        let restore = record(.restore, key: own, actor: "root (sudo by alice)", detail: "into database clinic_live as role restorer")
        let view = restore.clinicView(prefix: "")
        #expect(view.actor == "operator" && view.detail == nil && view.key == own && view.action == .restore && view.outcome == .ok && view.id == restore.id)
    }

    @Test func aKeyOutsideTheClinicsFolderIsNeverShown() {
        for (key, actor) in [
            ("backups/mindcare/backup-sql-mindcare-2026-11-29-021530.sql.zst", "alice"), ("backups/bienestar2/x.sql.zst", "token:abc123"),
            ("shared/public/backup-sql-public-2026-11-29-021530.sql.zst", "alice"), ("../mindcare", "token:abc123"), ("backups/bienestar/../mindcare/backup-sql-mindcare-2026-11-29-021530.sql.zst", "token:abc123"),
        ] {
            let refusal = record(.download, key: key, outcome: .refused, actor: actor, detail: "\"\(key)\" lies outside this tenant's folder")
            let view = refusal.clinicView(prefix: "")
            #expect(view.key == nil && view.detail?.contains("mindcare") != true && view.detail?.contains("bienestar2") != true, "\(view)")
            #expect(view.outcome == .refused)
        }
    }
}
