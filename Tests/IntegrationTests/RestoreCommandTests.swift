import Foundation
import NIOCore
import NIOFoundationCompat
import TenantBackup
import TenantBackupTesting
import Testing

/// Issue 12, acceptance 3 and 6: `restore` and `verify` with the built executable, real pg_dump and psql,
/// the real database and the bucket behind the verifying proxy.
@Suite struct RestoreCommandTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    static let clinics = ["Clínica \"Sur\"", "bienestar", "mindcare"]

    /// A database and bucket with every clinic backed up once.
    func withBackups(_ body: (TestDatabase, [String: String]) async throws -> Void) async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let environment = services.commandEnvironment(database: database, bucket: bucket)
                let (status, output) = try await TestProcess.tenantBackup(["backup"], environment)
                try #require(status == .exited(0), "\(output)")
                try await body(database, environment)
            }
        }
    }

    func connect(_ database: String) throws -> PostgresConnection {
        try PostgresConnection(connectionString: "dbname=\(database)", environment: services.environment)
    }

    /// Every table of `schema`: its row count and an md5 over its rows in order.
    func state(of schema: String, in database: String) throws -> [String: String] {
        let connection = try connect(database)
        let quoted = "\"" + schema.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        var result: [String: String] = [:]
        let tables = try connection.query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'", [schema], purpose: "test"
        ).rows.compactMap { $0.first ?? nil }
        for table in tables {
            let row = try connection.query(
                "SELECT count(*)::text || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM \(quoted).\"\(table)\" t", purpose: "test"
            ).rows.first?.first ?? nil
            result[table] = row
        }
        return result
    }

    func databaseExists(_ name: String) throws -> Bool {
        try !connect("postgres").query("SELECT 1 FROM pg_database WHERE datname = $1", [name], purpose: "test").rows.isEmpty
    }

    func drop(_ name: String) {
        _ = try? connect("postgres").query("DROP DATABASE IF EXISTS \"\(name)\" WITH (FORCE)", purpose: "test")
    }

    @Test func everyClinicRestoresIntoAFreshDatabaseEqualToTheSource() async throws {
        try await withBackups { database, environment in
            for (index, clinic) in Self.clinics.enumerated() {
                let target = "\(database.name)_fresh\(index)"
                defer { drop(target) }
                let (status, output) = try await TestProcess.tenantBackup(
                    ["restore", "--tenant", clinic, "--latest", "--target-database", "dbname=\(target)", "--create-database", "--with-shared-data"], environment)
                #expect(status == .exited(0), "\(clinic): \(output)")
                let source = try state(of: clinic, in: database.name)
                #expect(source.count == 3)
                #expect(try state(of: clinic, in: target) == source, "\(clinic)")
                // The shared tables came with it: the clinic's foreign keys into public hold.
                #expect(try state(of: "public", in: target) == state(of: "public", in: database.name))
            }
        }
    }

    @Test func oneClinicComesBackIntoTheLiveDatabaseAfterItsSchemaWasDropped() async throws {
        try await withBackups { database, environment in
            let source = try state(of: "bienestar", in: database.name)
            let others = try state(of: "mindcare", in: database.name)
            _ = try database.connect().query("DROP SCHEMA bienestar CASCADE", purpose: "test")
            let (status, output) = try await TestProcess.tenantBackup(
                ["restore", "--tenant", "bienestar", "--latest", "--target-database", "dbname=\(database.name)"], environment)
            #expect(status == .exited(0), "\(output)")
            #expect(!output.contains("shared dump"), "the live database has the shared tables: \(output)")
            #expect(try state(of: "bienestar", in: database.name) == source)
            #expect(try state(of: "mindcare", in: database.name) == others)

            // --after-restore is for a fresh database's shared rows: into the live database it is refused.
            let sql = TestProcess.temporaryFile("live.sql")
            defer { try? FileManager.default.removeItem(atPath: sql) }
            try "DELETE FROM public.tenants_clinic WHERE schema_name <> 'bienestar';\n".write(toFile: sql, atomically: true, encoding: .utf8)
            _ = try database.connect().query("DROP SCHEMA bienestar CASCADE", purpose: "test")
            let clinics = try state(of: "public", in: database.name)
            let (live, liveMessage) = try await TestProcess.tenantBackup(
                ["restore", "--tenant", "bienestar", "--latest", "--target-database", "dbname=\(database.name)", "--after-restore", sql], environment)
            #expect(live == .exited(1) && liveMessage.contains("--after-restore runs only with the shared dumps"), "\(liveMessage)")
            #expect(try state(of: "public", in: database.name) == clinics)
            #expect(try state(of: "bienestar", in: database.name).isEmpty)
            let (again, againOutput) = try await TestProcess.tenantBackup(
                ["restore", "--tenant", "bienestar", "--latest", "--target-database", "dbname=\(database.name)"], environment)
            #expect(again == .exited(0), "\(againOutput)")

            // Again, now that it exists: refused, and the schema is unchanged.
            _ = try database.connect().query("DELETE FROM bienestar.session_notes WHERE id = (SELECT min(id) FROM bienestar.session_notes)", purpose: "test")
            let changed = try state(of: "bienestar", in: database.name)
            let (refused, message) = try await TestProcess.tenantBackup(
                ["restore", "--tenant", "bienestar", "--latest", "--target-database", "dbname=\(database.name)"], environment)
            #expect(refused == .exited(1))
            #expect(message.contains("tenant bienestar: schema bienestar already exists") && message.contains("nothing was changed"), "\(message)")
            #expect(try state(of: "bienestar", in: database.name) == changed)
        }
    }

    @Test func aFlippedByteFailsTheRestoreAndLeavesNoTableOfThatSchema() async throws {
        try await withBackups { database, environment in
            let client = services.s3Client(bucket: environment["AWS_STORAGE_BUCKET_NAME"]!)
            let key = try #require(try await client.listKeys(prefix: "backups/bienestar/").first { !$0.hasSuffix(".manifest.json") })
            var bytes = Array(buffer: try await client.getObject(key: key))
            bytes[bytes.count / 2] ^= 0x01
            try await services.attackerClient(bucket: environment["AWS_STORAGE_BUCKET_NAME"]!).putObject(key: key, body: ByteBuffer(bytes: bytes))
            _ = try database.connect().query("DROP SCHEMA bienestar CASCADE", purpose: "test")
            let (status, output) = try await TestProcess.tenantBackup(
                ["restore", "--tenant", "bienestar", key, "--target-database", "dbname=\(database.name)"], environment)
            #expect(status == .exited(1), "\(output)")
            #expect(output.contains("tenant bienestar:"), "\(output)")
            #expect(try state(of: "bienestar", in: database.name).isEmpty)
            #expect(try connect(database.name).query("SELECT 1 FROM pg_namespace WHERE nspname = 'bienestar'", purpose: "test").rows.isEmpty)
        }
    }

    @Test func aFreshDatabaseNeedsWithSharedDataAndTheAfterRestoreSQLRunsInTheSameTransaction() async throws {
        try await withBackups { database, environment in
            let target = "\(database.name)_shared"
            defer { drop(target) }
            let base = ["restore", "--tenant", "bienestar", "--latest", "--target-database", "dbname=\(target)", "--create-database"]
            let (refused, message) = try await TestProcess.tenantBackup(base, environment)
            #expect(refused == .exited(1))
            #expect(message.contains("--with-shared-data") && message.contains("password hashes"), "\(message)")
            #expect(try !databaseExists(target), "a refused restore left the database it created")

            let sql = TestProcess.temporaryFile("after.sql")
            defer { try? FileManager.default.removeItem(atPath: sql) }
            try "DELETE FROM public.tenants_clinic WHERE schema_name <> 'bienestar';\n".write(toFile: sql, atomically: true, encoding: .utf8)
            let (status, output) = try await TestProcess.tenantBackup(base + ["--with-shared-data", "--after-restore", sql], environment)
            #expect(status == .exited(0), "\(output)")
            let rows = try connect(target).query("SELECT schema_name FROM public.tenants_clinic", purpose: "test").rows.compactMap { $0.first ?? nil }
            #expect(rows == ["bienestar"])
            #expect(try state(of: "bienestar", in: target) == state(of: "bienestar", in: database.name))

            // A failing --after-restore rolls the whole restore back.
            let other = "\(database.name)_rollback"
            defer { drop(other) }
            try "DELETE FROM public.no_such_table;\n".write(toFile: sql, atomically: true, encoding: .utf8)
            let (failed, failure) = try await TestProcess.tenantBackup(
                ["restore", "--tenant", "bienestar", "--latest", "--target-database", "dbname=\(other)", "--create-database", "--with-shared-data",
                 "--after-restore", sql], environment)
            #expect(failed == .exited(1))
            #expect(failure.contains("rolled back") && failure.contains("no_such_table"), "\(failure)")
            #expect(try !databaseExists(other))
            // An --after-restore that ends the transaction itself is not a restore.
            try "ROLLBACK;\n".write(toFile: sql, atomically: true, encoding: .utf8)
            let (ended, endedOutput) = try await TestProcess.tenantBackup(
                ["restore", "--tenant", "bienestar", "--latest", "--target-database", "dbname=\(other)", "--create-database", "--with-shared-data",
                 "--after-restore", sql], environment)
            #expect(ended == .exited(1) && endedOutput.contains("transaction control (ROLLBACK)"), "\(endedOutput)")
            #expect(try !databaseExists(other))
        }
    }

    @Test func aTargetOlderThanTheDumpIsRefusedBeforeAnythingRuns() async throws {
        try await withBackups { database, environment in
            let client = services.s3Client(bucket: environment["AWS_STORAGE_BUCKET_NAME"]!)
            let manifestKey = try #require(try await client.listKeys(prefix: "backups/mindcare/").first { $0.hasSuffix(".manifest.json") })
            var manifest = try BackupManifest.decode(Data(buffer: try await client.getObject(key: manifestKey)))
            manifest.pgDumpVersion = "99.1"
            manifest = try TestSigning.resign(manifest)
            try await services.attackerClient(bucket: environment["AWS_STORAGE_BUCKET_NAME"]!).putObject(key: manifestKey, body: ByteBuffer(data: try manifest.encoded()))
            _ = try database.connect().query("DROP SCHEMA mindcare CASCADE", purpose: "test")
            let (status, output) = try await TestProcess.tenantBackup(
                ["restore", "--tenant", "mindcare", "--latest", "--target-database", "dbname=\(database.name)"], environment)
            #expect(status == .exited(1))
            #expect(output.contains("older than the pg_dump 99.1") && output.contains("PostgreSQL 99 or newer"), "\(output)")
        }
    }

    @Test func aStoppedDrillDropsItsDatabase() async throws {
        try await withBackups { database, environment in
            let bucket = environment["AWS_STORAGE_BUCKET_NAME"]!
            // The tenant's dump arrives at 600 bytes/s: SIGTERM lands while psql is loading the drill's database.
            try await services.proxy.inject([.init(method: "GET", path: "^/\(bucket)/backups/bienestar/.*zst$", action: .bandwidth, times: 0, bytesPerSecond: 600)])
            let drill = try DaemonProcess(["verify", "--tenant", "bienestar", "--restore"], environment: environment)
            // The restore's audit record names the drill's database once it exists and streaming starts.
            try await drill.waitForOutput(containing: "into database tenant_backup_drill_", timeout: .seconds(40))
            let ours = Set(drill.output.split(separator: "\n").compactMap { line -> String? in
                line.range(of: "tenant_backup_drill_").map { String(line[$0.lowerBound...].prefix(36)) }
            })
            try #require(ours.count == 1, "\(drill.output)")
            #expect(try databaseExists(ours.first!))
            try await Task.sleep(for: .seconds(1))
            let stopped = ContinuousClock.now
            drill.signal(SIGTERM)
            #expect(await drill.waitForExit(timeout: .seconds(30)) == 143, "\(drill.output)")
            #expect(ContinuousClock.now - stopped < .seconds(5), "the drill ran on after SIGTERM")
            #expect(try !databaseExists(ours.first!), "\(drill.output)")
        }
    }

    /// SIGKILL (or the OOM killer) mid-restore: psql sees its input end before our COMMIT, so the server rolls
    /// the transaction back; half a clinic is never committed.
    @Test func aKilledRestoreCommitsNothing() async throws {
        try await withBackups { database, environment in
            let bucket = environment["AWS_STORAGE_BUCKET_NAME"]!
            _ = try database.connect().query("DROP SCHEMA mindcare CASCADE", purpose: "test")
            try await services.proxy.inject([.init(method: "GET", path: "^/\(bucket)/backups/mindcare/.*zst$", action: .bandwidth, times: 0, bytesPerSecond: 600)])
            let restore = try DaemonProcess(
                ["restore", "--tenant", "mindcare", "--latest", "--target-database", "dbname=\(database.name)"], environment: environment)
            try await restore.waitForOutput(containing: "audit_action=restore", timeout: .seconds(30))
            try await Task.sleep(for: .seconds(2))
            restore.signal(SIGKILL)
            _ = await restore.waitForExit(timeout: .seconds(10))
            // psql notices the end of its input and exits; the server rolls back.
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                let sessions = try connect("postgres").query(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'psql%'", [database.name], purpose: "test").rows
                if sessions.first?.first == "0" { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(try connect(database.name).query("SELECT 1 FROM pg_namespace WHERE nspname = 'mindcare'", purpose: "test").rows.isEmpty, "\(restore.output)")
        }
    }

    @Test func verifyAndARestoreDrillReportTheTableWhoseCountDiffersAndLeaveNoDatabase() async throws {
        try await withBackups { database, environment in
            let (status, plain) = try await TestProcess.tenantBackup(["verify", "--tenant", "bienestar"], environment)
            #expect(status == .exited(0), "\(plain)")
            let (drilled, good) = try await TestProcess.tenantBackup(["verify", "--tenant", "Clínica \"Sur\"", "--restore", "--json"], environment)
            #expect(drilled == .exited(0), "\(good)")
            let document = try AccessCommandTests.json(good)
            #expect(Set(document.keys) == ["tenant", "backups"] && document["tenant"] as? String == "Clínica \"Sur\"")
            let checked = try #require((document["backups"] as? [[String: Any]])?.first)
            #expect(Set(checked.keys) == ["s3_key", "ok", "problem", "has_manifest", "signature", "drill_database", "tables"])
            #expect(checked["ok"] as? Bool == true && checked["problem"] is NSNull && checked["has_manifest"] as? Bool == true)
            #expect((checked["s3_key"] as? String)?.hasPrefix("backups/Cl%C3%ADnica%20%22Sur%22/") == true)
            let tables = try #require(checked["tables"] as? [[String: Any]])
            #expect(tables.count == 3)
            for table in tables {
                #expect(Set(table.keys) == ["table", "expected", "restored", "ok"])
                #expect(table["expected"] as? Int == table["restored"] as? Int && table["ok"] as? Bool == true)
                #expect((table["table"] as? String)?.hasPrefix("\"Clínica \"\"Sur\"\"\".") == true, "\(table)")
            }

            // The manifest now says bienestar.patients had one row more than the dump holds.
            let client = services.s3Client(bucket: environment["AWS_STORAGE_BUCKET_NAME"]!)
            let manifestKey = try #require(try await client.listKeys(prefix: "backups/bienestar/").first { $0.hasSuffix(".manifest.json") })
            var manifest = try BackupManifest.decode(Data(buffer: try await client.getObject(key: manifestKey)))
            let patients = try #require(manifest.tableRowCounts?["bienestar.patients"])
            manifest.tableRowCounts?["bienestar.patients"] = patients + 1
            manifest = try TestSigning.resign(manifest)
            try await services.attackerClient(bucket: environment["AWS_STORAGE_BUCKET_NAME"]!).putObject(key: manifestKey, body: ByteBuffer(data: try manifest.encoded()))
            let (failed, report) = try await TestProcess.tenantBackup(["verify", "--tenant", "bienestar", "--restore"], environment)
            #expect(failed == .exited(1), "\(report)")
            #expect(report.contains("MISMATCH bienestar.patients: manifest \(patients + 1), restored \(patients)"), "\(report)")
            #expect(report.contains("ok       bienestar.appointments"), "\(report)")
            let (_, json) = try await TestProcess.tenantBackup(["verify", "--tenant", "bienestar", "--restore", "--json"], environment)
            let entry = try #require((try AccessCommandTests.json(json)["backups"] as? [[String: Any]])?.first)
            #expect(entry["ok"] as? Bool == false)
            let used = try #require(entry["drill_database"] as? String)
            #expect(used.hasPrefix("tenant_backup_drill_"))
            #expect(try !databaseExists(used), "the drill left \(used)")
        }
    }
}
