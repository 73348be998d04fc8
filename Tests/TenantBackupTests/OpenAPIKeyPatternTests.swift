import Foundation
import Testing

@testable import TenantBackup

/// The OpenAPI document's `Key` pattern (issue 18: "the OpenAPI pattern is tested against generated keys"):
/// every key tenant-backup writes for a clinic — any prefix, any tenant name (percent-encoded), every suffix
/// — matches it, so schemathesis and the platform's clients never call a listed key malformed; what it
/// refuses is what the API answers 400 before the library's resolver judges the key.
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

    /// Whether the pattern matches `key` as JSON Schema means it (ECMA-262: `$` is the end of the input, where ICU's
    /// also matches before a final line terminator): the match must cover the whole key.
    static func matches(_ pattern: NSRegularExpression, _ key: String) -> Bool {
        let whole = NSRange(key.startIndex..., in: key)
        return pattern.firstMatch(in: key, range: whole)?.range == whole
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

    /// The document refuses what the API answers 400 (control characters; empty); every other string is the
    /// resolver's to judge (403 or 404), so schemathesis's schema-valid keys are never 400.
    @Test func controlCharactersAndTheEmptyStringDoNotMatch() throws {
        let pattern = try Self.keyPattern()
        let good = BackupKey(prefix: "", area: .tenant, schema: "bienestar", timestamp: Date(timeIntervalSince1970: 1_795_918_530), suffix: ".sql.zst").key
        for bad in ["", good + "\n", "\u{0}" + good, good.replacingOccurrences(of: "/", with: "\t"), good + "\u{7F}", good + "\u{85}", good + "\r"] {
            #expect(!Self.matches(pattern, bad), "\(bad.debugDescription)")
        }
        for other in ["not-a-key", "../x", "shared/public/x.sql.zst", good + ".manifest.json", "bäckups/ünïcode/💾.sql.zst"] {
            #expect(Self.matches(pattern, other), "\(other)")
        }
    }
}
