import Foundation
import NIOCore
import NIOFoundationCompat
import Subprocess
import TenantBackup
import TenantBackupTesting
import Testing

/// Issue 17, acceptance 3 and 6: manifest-less objects in a clinic's folder that are not that clinic's
/// complete dump alone are refused by `adopt` (and marked) and by `restore --trust-unsigned`, and no clinic's
/// live data changes; `download` never replaces anything but a regular file.
@Suite struct LegacyObjectTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    func pgDump(_ arguments: [String], database: TestDatabase) async throws -> String {
        var environment = services.environment
        environment["PGDATABASE"] = database.name
        let result = try await Subprocess.run(
            .path(.init(FakePgDump.real)), arguments: Arguments(arguments),
            environment: .custom(environment.map { Array("\($0.key)=\($0.value)\0".utf8) }), output: .string(limit: 64 << 20), error: .string(limit: 4096))
        try #require(result.terminationStatus == .exited(0), "\(result.standardError)")
        return result.standardOutput
    }

    @Test func foreignTruncatedAndTrickedDumpsAreRefusedMarkedAndApplyNothing() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let environment = services.commandEnvironment(database: database, bucket: bucket)
                let (status, output) = try await TestProcess.tenantBackup(["backup"], environment)
                try #require(status == .exited(0), "\(output)")
                let own = try await pgDump(["-n", "bienestar"], database: database)
                let marker = "/tmp/tenant-backup-legacy-\(UUID().uuidString)"
                let withoutRestrict = own.split(separator: "\n", omittingEmptySubsequences: false)
                    .filter { !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }.joined(separator: "\n")
                let legacy: [(String, String)] = [
                    ("another clinic's --clean dump", try await pgDump(["-n", "mindcare", "--clean"], database: database)),
                    ("a whole-database dump", try await pgDump([], database: database)),
                    ("a truncated dump", String(own.prefix(own.count * 2 / 3))),
                    ("the search_path trick", own.replacingOccurrences(
                        of: "SELECT pg_catalog.set_config('search_path', '', false);",
                        with: "SELECT pg_catalog.set_config('search_path', '', false);\nSET search_path = mindcare, pg_catalog;")),
                    ("a shell without \\restrict", withoutRestrict.replacingOccurrences(of: "SET lock_timeout = 0;", with: "SET lock_timeout = 0;\n\\! touch \(marker)")),
                ]
                let client = services.s3Client(bucket: bucket)
                var keys: [String: String] = [:]
                for (index, (name, text)) in legacy.enumerated() {
                    let key = BackupKey(prefix: "", schema: .tenant("bienestar"), timestamp: Date().addingTimeInterval(-Double(index + 2) * 86400), suffix: ".sql").key
                    keys[name] = key
                    try await client.putObject(key: key, body: ByteBuffer(string: text))
                }
                let (adopted, adoptOutput) = try await TestProcess.tenantBackup(["adopt", "--tenant", "bienestar"], environment)
                #expect(adopted == .exited(1), "\(adoptOutput)")
                let objects = Set(try await client.listKeys(prefix: "backups/bienestar/"))
                for (name, key) in keys {
                    #expect(adoptOutput.contains("✘ \(key): left alone"), "\(name): \(adoptOutput)")
                    #expect(!objects.contains(key + ".manifest.json"), "\(name) got a manifest")
                    #expect(objects.contains(key + BackupKey.markSuffix), "\(name) was not marked")
                }
                // Marked, they are refused by name; with the marks gone (a bucket writer can delete them), the
                // checks themselves refuse them.
                _ = try database.connect().query("DROP SCHEMA bienestar CASCADE", purpose: "test")
                let before = try HostileBucketRestoreTests().everything(in: database.name)
                for (name, key) in keys {
                    let (marked, markedOutput) = try await TestProcess.tenantBackup(
                        ["restore", "--tenant", "bienestar", key, "--target-database", "dbname=\(database.name)", "--trust-unsigned"], environment)
                    #expect(marked == .exited(1) && markedOutput.contains("marked broken or foreign by adopt"), "\(name): \(markedOutput)")
                    try await client.deleteObject(key: key + BackupKey.markSuffix)
                    let (refused, refusedOutput) = try await TestProcess.tenantBackup(
                        ["restore", "--tenant", "bienestar", key, "--target-database", "dbname=\(database.name)", "--trust-unsigned"], environment)
                    #expect(refused == .exited(1) && refusedOutput.contains(key), "\(name): \(refusedOutput)")
                    let (unsigned, unsignedOutput) = try await TestProcess.tenantBackup(
                        ["restore", "--tenant", "bienestar", key, "--target-database", "dbname=\(database.name)"], environment)
                    #expect(unsigned == .exited(1) && unsignedOutput.contains("has no manifest"), "\(name): \(unsignedOutput)")
                    #expect(try HostileBucketRestoreTests().everything(in: database.name) == before, "\(name) changed the live data")
                }
                #expect(!FileManager.default.fileExists(atPath: marker))
                // verify --all: unverifiable is not ✔.
                let (verified, verifyOutput) = try await TestProcess.tenantBackup(["verify", "--tenant", "bienestar", "--all"], environment)
                #expect(verified == .exited(1), "\(verifyOutput)")
                for key in keys.values { #expect(verifyOutput.contains("✘ \(key)"), "\(verifyOutput)") }
            }
        }
    }

    @Test func downloadReplacesOnlyARegularFile() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let environment = services.commandEnvironment(database: database, bucket: bucket)
                let (status, output) = try await TestProcess.tenantBackup(["backup", "--tenant", "bienestar"], environment)
                try #require(status == .exited(0), "\(output)")
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("download-\(UUID().uuidString)").path
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: directory) }
                let fifo = directory + "/fifo"
                #expect(mkfifo(fifo, 0o600) == 0)
                let link = directory + "/link"
                try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: directory + "/elsewhere")
                for target in ["/dev/null", fifo, directory, link] {
                    var before = stat()
                    lstat(target, &before)
                    let (refused, refusedOutput) = try await TestProcess.tenantBackup(
                        ["download", "--tenant", "bienestar", "--latest", "-o", target, "--force"], environment)
                    #expect(refused == .exited(1) && refusedOutput.contains(target), "\(target): \(refusedOutput)")
                    var after = stat()
                    lstat(target, &after)
                    #expect(after.st_mode == before.st_mode && after.st_ino == before.st_ino, "\(target) was replaced")
                }
                #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["fifo", "link"])
                let file = directory + "/backup.sql.zst"
                try "old".write(toFile: file, atomically: true, encoding: .utf8)
                let (replaced, replacedOutput) = try await TestProcess.tenantBackup(
                    ["download", "--tenant", "bienestar", "--latest", "-o", file, "--force"], environment)
                #expect(replaced == .exited(0), "\(replacedOutput)")
            }
        }
    }
}
