import Foundation
import NIOCore
import Testing

@testable import TenantBackup

@Suite struct BackupKeyTests {
    let date = Date(timeIntervalSince1970: 1_795_918_530)  // 2026-11-29 02:15:30 UTC

    @Test func aTenantKeyHasTheSeedsShape() {
        let key = BackupKey(prefix: "", area: .tenant, schema: "bienestar", timestamp: date, suffix: ".sql.zst")
        #expect(key.key == "backups/bienestar/backup-sql-bienestar-2026-11-29-021530.sql.zst")
        #expect(key.manifestKey == "backups/bienestar/backup-sql-bienestar-2026-11-29-021530.sql.zst.manifest.json")
        #expect(BackupKey(prefix: "prod/", area: .shared, schema: "public", timestamp: date, suffix: ".sql").key
            == "prod/shared/public/backup-sql-public-2026-11-29-021530.sql")
    }

    @Test(arguments: ["bienestar", "Clínica \"Sur\"", "a*", "a.b", "..", "a/b", "sp ace", "100%", "-_", "ñ"])
    func namesRoundTripAndNeverEscapeTheirFolder(schema: String) throws {
        let encoded = BackupKey.encode(schema)
        #expect(!encoded.contains("/") && !encoded.contains(".") && !encoded.contains(" "))
        #expect(BackupKey.decode(encoded) == schema)
        let key = BackupKey(prefix: "p/", area: .tenant, schema: schema, timestamp: date, suffix: ".sql.gz")
        let parsed = try #require(BackupKey.parse(key.key, prefix: "p/"))
        #expect(parsed == key)
    }

    @Test(arguments: [
        "backups/t/notes.txt",
        "backups/other-app/x",
        "backups/t/backup-sql-t-2026-13-01-000000.sql",
        "backups/t/backup-sql-t-2026-02-30-000000.sql",
        "backups/t/backup-sql-u-2026-01-01-000000.sql",
        "backups/t/backup-sql-t-2026-01-01-000000.sql.zst.manifest.json",
        "backups/t/sub/backup-sql-t-2026-01-01-000000.sql",
        "backups/a.b/backup-sql-a.b-2026-01-01-000000.sql",
        "elsewhere/t/backup-sql-t-2026-01-01-000000.sql",
        // Sidecars and copies beside real backups (issue 10, point 1): never backups.
        "backups/t/backup-sql-t-2026-01-01-000000.sql.zst.bak",
        "backups/t/backup-sql-t-2026-01-01-000000.sql.sha256",
        "backups/t/backup-sql-t-2026-01-01-000000.sql.gz.md5",
        "backups/t/backup-sql-t-2026-01-01-000000.sql.zst.tmp",
        "backups/t/backup-sql-t-2026-01-01-000000.sql.zst.manifest.json.bak",
        "backups/t/backup-sql-t-2026-01-01-000000.txt",
        "backups/t/backup-sql-t-2026-01-01-000000.",
        "backups/t/backup-sql-t-2026-01-01-000000",
        "backups/t/backup-sql-t-2026-01-01-000000.sql.age.zst",
        "backups/t/backup-sql-t-2026-01-01-000000.zst",
        "backups/t/backup-sql-t-2026-01-01-000000.SQL",
        "backups/t/backup-sql-t-2026-01-01-000000.sql.zst.gz",
        "backups/t/backup-sql-t-2026-01-01-000000-copy.sql",
    ])
    func keysThatAreNotOurBackupsDoNotParse(key: String) {
        #expect(BackupKey.parse(key, prefix: "") == nil)
    }

    @Test(arguments: [".sql", ".sql.zst", ".sql.gz", ".sql.age", ".sql.zst.age", ".sql.gz.age", ".dump", ".dump.zst", ".dump.age"])
    func everyDocumentedSuffixParses(suffix: String) throws {
        let key = "backups/t/backup-sql-t-2026-01-01-000000\(suffix)"
        let parsed = try #require(BackupKey.parse(key, prefix: ""))
        #expect(parsed.suffix == suffix)
        #expect(parsed.key == key)
    }

    @Test func aManifestBelongsToExactlyOneBackup() throws {
        let backup = "backups/t/backup-sql-t-2026-01-01-000000.sql.zst"
        #expect(BackupKey.parseManifest(backup + ".manifest.json", prefix: "")?.key == backup)
        #expect(BackupKey.parseManifest(backup, prefix: "") == nil)
        #expect(BackupKey.parseManifest(backup + ".bak.manifest.json", prefix: "") == nil)
        #expect(BackupKey.parseManifest(backup + ".manifest.json.manifest.json", prefix: "") == nil)
    }

    @Test func theOldSystemsKeysParse() throws {
        let parsed = try #require(BackupKey.parse("backups/mindcare/backup-sql-mindcare-2025-03-01-020000.sql", prefix: ""))
        #expect(parsed.schema == "mindcare")
        #expect(parsed.suffix == ".sql")
        #expect(BackupKey.format(parsed.timestamp) == "2025-03-01-020000")
    }

    @Test func theFolderEndsWithASlash() {
        #expect(BackupKey.folder(prefix: "", area: .tenant, schema: "clinic") == "backups/clinic/")
    }
}
