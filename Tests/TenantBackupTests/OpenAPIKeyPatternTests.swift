import Foundation
import Testing

@testable import TenantBackup

/// The OpenAPI document's `Key` pattern (issue 18: "the OpenAPI pattern is tested against generated keys"):
/// every key tenant-backup writes for a clinic — any prefix, any tenant name (percent-encoded), every suffix
/// — matches it, so schemathesis and the platform's clients never call a listed key malformed; and what the
/// library's parser refuses as no backup key does not match it.
@Suite struct OpenAPIKeyPatternTests {
    static let document = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("api/openapi.yaml").path

    static func keyPattern() throws -> NSRegularExpression {
        let text = try String(contentsOfFile: document, encoding: .utf8)
        let lines = text.components(separatedBy: "\n")
        let start = try #require(lines.firstIndex(of: "    Key:"))
        let line = try #require(lines[start...].first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("pattern: '") })
        let pattern = line.trimmingCharacters(in: .whitespaces).dropFirst("pattern: '".count).dropLast()
        return try NSRegularExpression(pattern: String(pattern))
    }

    static func matches(_ pattern: NSRegularExpression, _ key: String) -> Bool {
        pattern.firstMatch(in: key, range: NSRange(key.startIndex..., in: key)) != nil
    }

    @Test func everyKeyTenantBackupWritesForAClinicMatches() throws {
        let pattern = try Self.keyPattern()
        let times = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_795_918_530), Date(timeIntervalSince1970: 4_102_444_799)]
        var checked = 0
        for prefix in ["", "prod/", "clinics/prod/", "tenant backups/2026/"] {
            for tenant in ["bienestar", "clinic_2", "Clínica Ñ", "a-b", "x.y", "UPPER", "\"quoted\""] {
                for suffix in BackupKey.suffixes {
                    for time in times {
                        let key = BackupKey(prefix: prefix, area: .tenant, schema: tenant, timestamp: time, suffix: suffix).key
                        #expect(BackupKey.parse(key, prefix: prefix) != nil, "\(key)")
                        #expect(Self.matches(pattern, key), "the OpenAPI pattern refuses a key tenant-backup writes: \(key)")
                        checked += 1
                    }
                }
            }
        }
        #expect(checked > 500)
    }

    /// (A final line feed would pass `$`: the API refuses control characters before the pattern.)
    @Test func whatIsNoBackupKeyDoesNotMatch() throws {
        let pattern = try Self.keyPattern()
        let good = BackupKey(prefix: "", area: .tenant, schema: "bienestar", timestamp: Date(timeIntervalSince1970: 1_795_918_530), suffix: ".sql.zst").key
        for bad in [
            good + ".manifest.json", good + ".deleted.json", good + ".rejected.json", "/" + good, "backups/bienestar/", "backups//backup-sql--2026-11-29-021530.sql",
            good.replacingOccurrences(of: "2026-11-29", with: "2026-1-29"), good.replacingOccurrences(of: ".sql.zst", with: ".txt"),
            good.replacingOccurrences(of: "backups/", with: "shared/"), "audit/bienestar/2026/11/29/x.json",
        ] {
            #expect(!Self.matches(pattern, bad), "\(bad)")
        }
    }
}
