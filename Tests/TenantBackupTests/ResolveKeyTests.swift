import Foundation
import Testing

@testable import TenantBackup

/// What `download`, `presign`, `delete`, `verify` and `restore` (and the API) accept as one tenant's backup:
/// ``BackupAccess/resolve(_:tenant:prefix:)``, which reads nothing. Every refused form of the hostile trials,
/// under every shape of `s3.prefix`; the commands' own end-to-end refusal keeps one case of each kind.
@Suite struct ResolveKeyTests {
    static let prefixes = ["", "prod/", "site/a/"]
    static let time = Date(timeIntervalSince1970: 1_795_917_600)

    enum Verdict: Equatable {
        case accepted
        /// Not a backup key of any tenant.
        case invalid
        /// A key of another tenant's, a shared schema's or the audit trail's.
        case foreign
    }

    static func key(_ prefix: String, _ schema: String, area: BackupKey.Area = .tenant) -> String {
        BackupKey(prefix: prefix, area: area, schema: schema, timestamp: time, suffix: ".sql.zst").key
    }

    static func file(_ key: String) -> String { String(key.split(separator: "/").last!) }

    /// The cases for one prefix: what is given, and what must come of it.
    static func cases(prefix: String) -> [(given: String, verdict: Verdict)] {
        let own = key(prefix, "bienestar")
        let twin = key(prefix, "bienestar2")
        let otherPrefix = prefix.isEmpty ? "prod/" : ""
        return [
            (own, .accepted),
            (file(own), .accepted),
            (twin, .foreign),  // another tenant's key
            (file(twin), .invalid),  // its file name, the prefix twin: inside this folder it names no backup of anyone
            (key(prefix, "public", area: .shared), .foreign),
            (file(key(prefix, "public", area: .shared)), .invalid),
            ("\(prefix)audit/bienestar/2026/11/30/x.json", .foreign),
            ("\(prefix)backups/bienestar/../bienestar2/\(file(twin))", .invalid),
            ("\(prefix)backups/bienestar/./\(file(own))", .invalid),
            ("\(prefix)backups/bienestar//\(file(own))", .invalid),
            ("\(prefix)backups/bienestar%2F..%2Fbienestar2/\(file(twin))", .foreign),
            ("\(prefix)backups/bienestar/\(file(own).replacingOccurrences(of: "bienestar-", with: "bienestar%2F..%2Fbienestar2-"))", .invalid),
            ("/\(own)", .invalid),
            (own + BackupKey.manifestSuffix, .invalid),
            (own + ".deleted.json", .invalid),
            (own.replacingOccurrences(of: ".sql.zst", with: ".sql.ZST"), .invalid),
            (own + "\u{0}", .invalid),
            (own + "\n", .invalid),
            (String(repeating: "a", count: 1025), .invalid),
            ("", .invalid),
            (key(otherPrefix, "bienestar"), .invalid),  // this tenant's key under another prefix
            ("\(prefix)backups/bienestar/", .invalid),
            ("\(prefix)backups/Bienestar/\(file(own))", .foreign),
        ]
    }

    static let all: [(prefix: String, given: String, verdict: Verdict)] = prefixes.flatMap { prefix in
        cases(prefix: prefix).map { (prefix, $0.given, $0.verdict) }
    }

    @Test(arguments: all.indices)
    func eachFormIsAcceptedOrRefusedAsItsKind(index: Int) {
        let (prefix, given, verdict) = Self.all[index]
        let description = "\(given.debugDescription) with prefix \(prefix.debugDescription)"
        do {
            let key = try BackupAccess.resolve(given, tenant: "bienestar", prefix: prefix)
            #expect(verdict == .accepted, "\(description) was accepted")
            #expect(key.key == Self.key(prefix, "bienestar") && key.owner == .tenant("bienestar"), "\(description)")
        } catch {
            #expect(error.tenant == "bienestar")
            switch error.kind {
            case .invalidKey(let echoed, _):
                #expect(verdict == .invalid, "\(description) refused as invalid")
                #expect(echoed == given)
            case .foreignKey(let echoed):
                #expect(verdict == .foreign, "\(description) refused as foreign")
                #expect(echoed == given)
            default:
                Issue.record("\(description): \(error)")
            }
            // The message names the tenant and says what is wrong, whatever was given.
            #expect(error.description.contains("bienestar"))
        }
    }
}
