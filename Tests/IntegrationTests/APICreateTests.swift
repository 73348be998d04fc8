import Foundation
import NIOCore
import NIOFoundationCompat
import TenantBackup
import TenantBackupTesting
import Testing

/// Issue 18, acceptance 3: a backup the clinic makes through the API (`create`) is a full backup, with the
/// shared dumps of its own snapshot: when retention keeps it in place of the nightly one (it is the newest of
/// its day), that day still has a backup that restores into a fresh database, and drills of it pass.
extension HTTPAPITests {
    /// Copies a tenant backup and the shared dumps its manifest names to `time`, each manifest re-signed for
    /// its new key, as if that cycle had run then. Returns the new tenant key.
    func copyBackup(_ key: String, to time: Date, client: S3Client) async throws -> String {
        var manifest = try BackupManifest.decode(Data(buffer: try await client.getObject(key: key + BackupKey.manifestSuffix)))
        var shared: [String] = []
        for sharedKey in manifest.sharedBackups {
            let parsed = try #require(BackupKey.parse(sharedKey, prefix: ""))
            let copy = BackupKey(prefix: "", area: parsed.area, schema: parsed.schema, timestamp: time, suffix: parsed.suffix).key
            var sharedManifest = try BackupManifest.decode(Data(buffer: try await client.getObject(key: sharedKey + BackupKey.manifestSuffix)))
            sharedManifest.key = copy
            _ = try await client.putObject(key: copy, body: try await client.getObject(key: sharedKey))
            _ = try await client.putObject(key: copy + BackupKey.manifestSuffix, body: ByteBuffer(data: try TestSigning.resign(sharedManifest).encoded()))
            shared.append(copy)
        }
        let parsed = try #require(BackupKey.parse(key, prefix: ""))
        let copy = BackupKey(prefix: "", area: parsed.area, schema: parsed.schema, timestamp: time, suffix: parsed.suffix).key
        manifest.key = copy
        manifest.sharedBackups = shared
        _ = try await client.putObject(key: copy, body: try await client.getObject(key: key))
        _ = try await client.putObject(key: copy + BackupKey.manifestSuffix, body: ByteBuffer(data: try TestSigning.resign(manifest).encoded()))
        return copy
    }

    @Test func anAfternoonCreateEveryDayNextToNightlyCyclesKeepsARestorableBackupEveryDay() async throws {
        try await withServer { server in
            let client = services.s3Client(bucket: server.bucket)
            // Today's afternoon create, through the API: it names shared dumps of its own, in the bucket.
            let created = try await request("POST", server.base + "/api/backups/create/", token: server.bienestar)
            try #require(created.status == 200, "\(String(buffer: created.body))")
            let createKey = try #require((created.json?["backup_info"] as? [String: Any])?["s3_key"] as? String)
            let createManifest = try BackupManifest.decode(Data(buffer: try await client.getObject(key: createKey + BackupKey.manifestSuffix)))
            #expect(!createManifest.sharedBackups.isEmpty, "an API backup must name the shared dumps it restores on")
            for shared in createManifest.sharedBackups { #expect(try await client.headObject(key: shared).size > 0) }
            // Ten earlier days, each with the nightly full backup at 02:00 and the afternoon create at 15:00.
            let nightly = server.keys[0]
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            let today = calendar.startOfDay(for: Date())
            var creates: [String] = []
            for day in 1...10 {
                let midnight = today.addingTimeInterval(-Double(day) * 86400)
                _ = try await copyBackup(nightly, to: midnight.addingTimeInterval(2 * 3600), client: client)
                creates.append(try await copyBackup(createKey, to: midnight.addingTimeInterval(15 * 3600), client: client))
            }
            // Retention as the nightly cycle applies it: every tenant, then the shared dumps no kept backup names.
            let (pruneStatus, pruneOutput) = try await TestProcess.tenantBackup(["prune", "--force"], server.environment)
            try #require(pruneStatus == .exited(0), "\(pruneOutput)")

            // Each of the last seven days (keep_daily) kept its afternoon create, the newest of the day; every kept
            // backup names shared dumps that are still in the bucket.
            let left = Set(try await client.listKeys(prefix: ""))
            let kept = left.filter { $0.hasPrefix("backups/bienestar/") && BackupKey.parse($0, prefix: "") != nil }.sorted()
            for create in creates.prefix(6) { #expect(kept.contains(create), "\(create) was not kept: \(kept)") }
            for key in kept {
                let manifest = try BackupManifest.decode(Data(buffer: try await client.getObject(key: key + BackupKey.manifestSuffix)))
                #expect(!manifest.sharedBackups.isEmpty && manifest.sharedBackups.allSatisfy(left.contains), "\(key) names \(manifest.sharedBackups)")
            }
            // The oldest and the newest kept afternoon backups restore into fresh databases; drills of both pass.
            let keptCreates = creates.filter(kept.contains)
            for (name, key) in [("newest", createKey), ("oldest", try #require(keptCreates.last))] {
                let fresh = "\(server.database.name)_create_\(name)"
                defer { _ = try? PostgresConnection(connectionString: "dbname=postgres", environment: services.environment).query("DROP DATABASE IF EXISTS \(fresh) WITH (FORCE)", purpose: "test") }
                let (restoreStatus, restoreOutput) = try await TestProcess.tenantBackup(
                    ["restore", "--tenant", "bienestar", key, "--target-database", "dbname=\(fresh)", "--create-database", "--with-shared-data"], server.environment)
                #expect(restoreStatus == .exited(0), "\(key): \(restoreOutput)")
                let rows = try PostgresConnection(connectionString: "dbname=\(fresh)", environment: services.environment)
                    .query("SELECT count(*) FROM bienestar.patients", purpose: "test")
                #expect((rows.rows.first?.first ?? nil).flatMap { Int($0) } ?? 0 > 0, "\(rows)")
                let (drillStatus, drillOutput) = try await TestProcess.tenantBackup(["verify", "--tenant", "bienestar", key, "--restore"], server.environment)
                #expect(drillStatus == .exited(0), "\(key): \(drillOutput)")
            }
        }
    }
}
