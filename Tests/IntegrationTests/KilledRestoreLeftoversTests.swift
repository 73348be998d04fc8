import Foundation
import TenantBackup
import TenantBackupTesting
import Testing

/// Issue 17, acceptance 6: `kill -9` in the middle of a restore into a database it created, of a drill, and of
/// a download leaves something of ours behind (a database, a spool of patient data, a partial file); `doctor`
/// lists the databases and spools, and the next run removes every one of them.
@Suite struct KilledRestoreLeftoversTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    func databaseExists(_ name: String) throws -> Bool {
        try !PostgresConnection(connectionString: "dbname=postgres", environment: services.environment)
            .query("SELECT 1 FROM pg_database WHERE datname = $1", [name], purpose: "test").rows.isEmpty
    }

    func spools(_ base: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).filter { $0.hasPrefix("tenant-backup-spool-") }
    }

    @Test func whatAKilledRestoreDrillOrDownloadLeavesIsListedAndSweptByTheNextRun() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let spoolBase = FileManager.default.temporaryDirectory.appendingPathComponent("spool-\(UUID().uuidString)").path
                try FileManager.default.createDirectory(atPath: spoolBase, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: spoolBase) }
                var environment = services.commandEnvironment(database: database, bucket: bucket)
                environment["TENANT_BACKUP_SPOOL_DIRECTORY"] = spoolBase
                let (status, output) = try await TestProcess.tenantBackup(["backup"], environment)
                try #require(status == .exited(0), "\(output)")
                // Every object is trickled out: each run below is killed while it reads.
                try await services.proxy.inject([
                    .init(method: "GET", path: "^/\(bucket)/(backups|shared)/.*zst$", action: .bandwidth, times: 0, bytesPerSecond: 2000)
                ])
                let target = "\(database.name)_killed"
                defer { _ = try? PostgresConnection(connectionString: "dbname=postgres", environment: services.environment).query("DROP DATABASE IF EXISTS \(target) WITH (FORCE)", purpose: "test") }

                let restore = try DaemonProcess(
                    ["restore", "--tenant", "bienestar", "--latest", "--target-database", "dbname=\(target)", "--create-database", "--with-shared-data"],
                    environment: environment)
                try await restore.waitForOutput(containing: "audit_outcome=started", timeout: .seconds(60))
                try await Task.sleep(for: .seconds(1))
                restore.signal(SIGKILL)
                _ = await restore.waitForExit()
                #expect(try databaseExists(target))
                #expect(spools(spoolBase).count == 1)
                // (Any restore on this server sweeps an abandoned database: one of another test may have got there first.)
                let (doctor, doctorOutput) = try await TestProcess.tenantBackup(["doctor"], environment)
                #expect(doctor == .exited(0) && doctorOutput.contains("tenant-backup-spool-"), "\(doctorOutput)")
                #expect(try doctorOutput.contains("database \(target)") || !databaseExists(target), "\(doctorOutput)")

                let drill = try DaemonProcess(["verify", "--tenant", "mindcare", "--restore"], environment: environment)
                try await drill.waitForOutput(containing: "audit_outcome=started", timeout: .seconds(60))
                let drillDatabase = try #require(drill.output.range(of: "tenant_backup_drill_").map { String(drill.output[$0.lowerBound...].prefix(36)) })
                try await Task.sleep(for: .seconds(1))
                drill.signal(SIGKILL)
                _ = await drill.waitForExit()
                // The drill swept the killed restore's database and spool before it began.
                #expect(try !databaseExists(target))
                #expect(spools(spoolBase).count == 1)

                let downloads = FileManager.default.temporaryDirectory.appendingPathComponent("downloads-\(UUID().uuidString)").path
                try FileManager.default.createDirectory(atPath: downloads, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(atPath: downloads) }
                let download = try DaemonProcess(["download", "--tenant", "bienestar", "--latest", "-o", downloads + "/b.sql.zst"], environment: environment)
                // Killed once its partial file holds bytes.
                for _ in 0..<600 {
                    let names = (try? FileManager.default.contentsOfDirectory(atPath: downloads)) ?? []
                    if let partial = names.first(where: { $0.hasSuffix(".partial") }),
                       ((try? FileManager.default.attributesOfItem(atPath: downloads + "/" + partial))?[.size] as? Int ?? 0) > 0
                    {
                        break
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
                download.signal(SIGKILL)
                _ = await download.waitForExit()
                let partials = try FileManager.default.contentsOfDirectory(atPath: downloads).filter { $0.hasSuffix(".partial") }
                #expect(partials.count == 1, "\(partials)")

                let (drillDoctor, drillDoctorOutput) = try await TestProcess.tenantBackup(["doctor"], environment)
                #expect(drillDoctor == .exited(0) && drillDoctorOutput.contains(" found, removed by the next restore"), "\(drillDoctorOutput)")
                #expect(try drillDoctorOutput.contains("database \(drillDatabase)") || !databaseExists(drillDatabase), "\(drillDoctorOutput)")
                #expect(drillDoctorOutput.components(separatedBy: "tenant-backup-spool-").count - 1 == 1, "\(drillDoctorOutput)")

                // The next runs sweep them.
                try await services.proxy.inject([])
                let (next, nextOutput) = try await TestProcess.tenantBackup(["verify", "--tenant", "bienestar", "--restore"], environment)
                #expect(next == .exited(0), "\(nextOutput)")
                #expect(try !databaseExists(target) && !databaseExists(drillDatabase), "\(nextOutput)")
                #expect(spools(spoolBase).isEmpty)
                let (again, againOutput) = try await TestProcess.tenantBackup(["download", "--tenant", "bienestar", "--latest", "-o", downloads + "/b.sql.zst"], environment)
                #expect(again == .exited(0), "\(againOutput)")
                #expect(try FileManager.default.contentsOfDirectory(atPath: downloads) == ["b.sql.zst"])
                let (clean, cleanOutput) = try await TestProcess.tenantBackup(["doctor"], environment)
                #expect(!cleanOutput.contains("tenant-backup-spool-") && !cleanOutput.contains(target), "\(clean) \(cleanOutput)")
            }
        }
    }
}
