import Foundation
import NIOCore
import NIOFoundationCompat
import Subprocess
import TenantBackup
import TenantBackupTesting
import Testing

/// Issue 12, acceptance 7: `adopt` gives the old system's backups (plain `.sql`, no manifest) a manifest with
/// correct row counts, and leaves a truncated one, or one of another schema, alone.
@Suite struct AdoptCommandTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    /// `pg_dump -n schema` of the test database, as the old system ran it.
    func oldStyleDump(of schema: String, database: TestDatabase) async throws -> [UInt8] {
        var environment = services.environment
        environment["PGDATABASE"] = database.name
        let result = try await Subprocess.run(
            .path(.init(FakePgDump.real)), arguments: ["-n", schema],
            environment: .custom(environment.map { Array("\($0.key)=\($0.value)\0".utf8) }), output: .bytes(limit: 64 << 20), error: .string(limit: 4096))
        try #require(result.terminationStatus == .exited(0), "\(result.standardError)")
        return result.standardOutput
    }

    @Test func anOldPlainDumpGetsAManifestWithCorrectCountsAndATruncatedOneIsLeftAlone() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let environment = services.commandEnvironment(database: database, bucket: bucket)
                let client = services.s3Client(bucket: bucket)
                let day = Date().addingTimeInterval(-2 * 86400)
                func oldKey(_ hoursLater: Double) -> String {
                    BackupKey(prefix: "", schema: .tenant("bienestar"), timestamp: day.addingTimeInterval(hoursLater * 3600), suffix: ".sql").key
                }
                let dump = try await oldStyleDump(of: "bienestar", database: database)
                let (good, truncated, foreign, leaking) = (oldKey(0), oldKey(1), oldKey(2), oldKey(3))
                // A complete dump of bienestar with one statement that copies another clinic's rows.
                let text = String(decoding: dump, as: UTF8.self)
                let leak = text.replacingOccurrences(
                    of: "-- PostgreSQL database dump complete", with: "CREATE TABLE bienestar.leak AS SELECT * FROM mindcare.patients;\n-- PostgreSQL database dump complete")
                try await client.putObject(key: leaking, body: ByteBuffer(string: leak))
                try await client.putObject(key: good, body: ByteBuffer(bytes: dump))
                try await client.putObject(key: truncated, body: ByteBuffer(bytes: dump.dropLast(200)))
                try await client.putObject(key: foreign, body: ByteBuffer(bytes: try await oldStyleDump(of: "mindcare", database: database)))
                // Our own backup of the same data, for the counts to compare with.
                let (backedUp, backupOutput) = try await TestProcess.tenantBackup(["backup", "--tenant", "bienestar"], environment)
                try #require(backedUp == .exited(0), "\(backupOutput)")
                let ours = try #require(try await client.listKeys(prefix: "backups/bienestar/").first { $0.hasSuffix(".sql.zst.manifest.json") })
                let expected = try BackupManifest.decode(Data(buffer: try await client.getObject(key: ours))).tableRowCounts

                let (dry, dryOutput) = try await TestProcess.tenantBackup(["adopt", "--tenant", "bienestar", "--dry-run"], environment)
                #expect(dry == .exited(1), "\(dryOutput)")  // two are left alone
                #expect(try await client.listKeys(prefix: "backups/bienestar/").filter { $0.hasSuffix(".sql.manifest.json") }.isEmpty)

                let (status, output) = try await TestProcess.tenantBackup(["adopt", "--tenant", "bienestar"], environment)
                #expect(status == .exited(1), "\(output)")
                #expect(output.contains("✔ \(good): a complete dump of 3 table(s); unsigned manifest written"), "\(output)")
                #expect(output.contains("✘ \(truncated): left alone: not a complete pg_dump"), "\(output)")
                #expect(output.contains("✘ \(foreign): left alone: it holds objects of other schemas (mindcare)"), "\(output)")
                #expect(output.contains("✘ \(leaking): left alone: its statements name other clinics' schemas (mindcare)"), "\(output)")
                let manifest = try BackupManifest.decode(Data(buffer: try await client.getObject(key: good + ".manifest.json")))
                #expect(manifest.adopted == true)
                #expect(manifest.tableRowCounts == expected && expected?.count == 3)
                #expect(manifest.bytes == Int64(dump.count) && manifest.compression == "none" && manifest.format == "plain")
                #expect(manifest.pgDumpVersion.hasPrefix("15.") && manifest.serverVersion.hasPrefix("15."))
                for key in [truncated, foreign, leaking] {
                    await #expect(throws: S3Error.self) { try await client.headObject(key: key + ".manifest.json") }
                }
                // Adopt read it; it did not run it, so it did not sign it: restoring or drilling an adopted backup is a
                // deliberate --trust-unsigned (its manifest names the newest shared dump for a fresh database).
                #expect(manifest.signature == nil && manifest.sharedBackups.count == 1, "\(manifest)")
                let (unsigned, unsignedOutput) = try await TestProcess.tenantBackup(["verify", "--tenant", "bienestar", good], environment)
                #expect(unsigned == .exited(1) && unsignedOutput.contains("unsigned"), "\(unsignedOutput)")
                let (verified, verifyOutput) = try await TestProcess.tenantBackup(["verify", "--tenant", "bienestar", good, "--trust-unsigned"], environment)
                #expect(verified == .exited(0) && verifyOutput.contains("✔ \(good)"), "\(verifyOutput)")
                let (drilled, drillOutput) = try await TestProcess.tenantBackup(["verify", "--tenant", "bienestar", good, "--restore", "--trust-unsigned"], environment)
                #expect(drilled == .exited(0), "\(drillOutput)")
                _ = try database.connect().query("DROP SCHEMA bienestar CASCADE", purpose: "test")
                let (restored, restoreOutput) = try await TestProcess.tenantBackup(
                    ["restore", "--tenant", "bienestar", good, "--target-database", "dbname=\(database.name)", "--trust-unsigned"], environment)
                #expect(restored == .exited(0) && restoreOutput.contains("bienestar.patients: 40 rows"), "\(restoreOutput)")
                // Adopting again finds only the two it cannot adopt, and never rewrites the manifest.
                let (_, again) = try await TestProcess.tenantBackup(["adopt", "--tenant", "bienestar"], environment)
                #expect(!again.contains(good), "\(again)")
            }
        }
    }
}
