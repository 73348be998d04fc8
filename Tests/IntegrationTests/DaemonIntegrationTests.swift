import AsyncHTTPClient
import Foundation
import NIOCore
import TenantBackup
import TenantBackupTesting
import Testing

/// `tenant-backup run`, the built executable, as systemd runs it: a notification socket of the test's own,
/// signals, the metrics endpoint, and the real database and bucket.
@Suite struct DaemonIntegrationTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    // MARK: - Helpers

    /// A port nobody listens on right now.
    static func freePort() throws -> Int {
        try TestProcess.freePort()
    }

    /// The real pg_dump, except for `tenant`: exit 1 with "injected failure for <tenant>".
    static func pgDumpFailing(for tenant: String) throws -> String {
        try FakePgDump.make("""
            if [[ "$*" == *\(tenant)* ]]; then echo 'pg_dump: error: injected failure for \(tenant)' >&2; exit 1; fi
            exec \(FakePgDump.real) "$@"
            """)
    }

    static func temporaryFile(_ name: String) -> String {
        TestProcess.temporaryFile(name)
    }

    func environment(database: TestDatabase, bucket: String, notify: NotifySocket? = nil) -> [String: String] {
        var environment = services.environment
        environment["PGDATABASE"] = database.name
        environment["AWS_STORAGE_BUCKET_NAME"] = bucket
        environment["TENANT_BACKUP_LOG_FORMAT"] = "logfmt"
        if let notify {
            environment["NOTIFY_SOCKET"] = notify.path
            environment["WATCHDOG_USEC"] = "1000000"
        }
        return environment
    }

    /// The keys of finished tenant backups under `prefix`.
    func tenantBackups(_ bucket: String, prefix: String) async throws -> [String] {
        try await services.s3Client(bucket: bucket).listKeys(prefix: "\(prefix)backups/").filter { !$0.hasSuffix(".manifest.json") }
    }

    func waitForBackups(_ bucket: String, prefix: String, count: Int, timeout: Duration = .seconds(90)) async throws -> [String] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let keys = try await tenantBackups(bucket, prefix: prefix)
            if keys.count >= count || ContinuousClock.now > deadline { return keys }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    func scrape(port: Int) async throws -> String {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics")
        request.method = .GET
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        #expect(response.status == .ok)
        return String(buffer: try await response.body.collect(upTo: 4 << 20))
    }

    /// The value of one series in Prometheus text, e.g. `tenant_backup_tenant_stale{tenant="mindcare"}`.
    static func value(_ series: String, in metrics: String) -> Double? {
        for line in metrics.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    // MARK: - systemd notifications, reload, graceful stop

    static func writeConfig(_ path: String, port: Int, prefix: String, extra: String = "") throws {
        try """
            s3:
              prefix: \(prefix)
            schedule:
              cron: "0 3 * * *"
              time_zone: Europe/Madrid
            daemon:
              stop_timeout: 2s
            metrics:
              listen: 127.0.0.1:\(port)
            \(extra)
            """.write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test func theDaemonTellsSystemdItsStateReloadsAndStopsWithoutLeavingAnUpload() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                try await reloadAndStopScenario(database: database, bucket: bucket)
            }
        }
    }

    func reloadAndStopScenario(database: TestDatabase, bucket: String) async throws {
        let notify = try NotifySocket()
        defer { notify.close() }
        let port = try Self.freePort()
        let config = Self.temporaryFile("config.yaml")
        defer { try? FileManager.default.removeItem(atPath: config) }
        func write(prefix: String, extra: String = "") throws {
            try Self.writeConfig(config, port: port, prefix: prefix, extra: extra)
        }
        try write(prefix: "first")
        let daemon = try DaemonProcess(["run", "--config", config], environment: environment(database: database, bucket: bucket, notify: notify))

        // Ready, status lines, a catch-up cycle (the bucket is empty), watchdog pings.
        let ready = try await notify.waitFor("READY=1") { $0.contains("READY=1") }
        try await notify.waitFor(after: ready.index, "a STATUS line naming a tenant") { $0.hasPrefix("STATUS=backing up") }
        try await notify.waitFor("the cycle's summary", { $0.contains("STATUS=idle, next cycle") && $0.contains("last: 3/3 ok") })
        #expect(try await tenantBackups(bucket, prefix: "first/").count == 3)
        let pingsBefore = notify.messages.filter { $0 == "WATCHDOG=1" }.count
        try await Task.sleep(for: .seconds(2))
        #expect(notify.messages.filter { $0 == "WATCHDOG=1" }.count >= pingsBefore + 2)  // every 0.5 s

        // SIGHUP with a valid, changed file: RELOADING=1 … READY=1, and the new prefix is used at once
        // (its tenants have no backup yet, so the reload's catch-up backs them up there).
        try write(prefix: "second")
        daemon.signal(SIGHUP)
        let reloading = try await notify.waitFor(after: ready.index, "RELOADING=1") { $0.contains("RELOADING=1") && $0.contains("MONOTONIC_USEC=") }
        try await notify.waitFor(after: reloading.index, "READY=1 after the reload") { $0.contains("READY=1") }
        #expect(try await waitForBackups(bucket, prefix: "second/", count: 3).count == 3)
        #expect(Self.value("tenant_backup_config_last_reload_successful", in: try await scrape(port: port)) == 1)

        // SIGHUP with a broken file: the running configuration stays; the log and STATUS say why.
        try "s3:\n  bukket: clinic-backups\n".write(toFile: config, atomically: true, encoding: .utf8)
        let lastIndex = notify.messages.count - 1
        daemon.signal(SIGHUP)
        let refused = try await notify.waitFor(after: lastIndex, "READY=1 with the reload failure") {
            $0.contains("READY=1") && $0.contains("reload failed, running with the previous configuration")
        }
        #expect(refused.message.contains("config.yaml:2:3: unknown key 'bukket' in s3"))
        try await daemon.waitForOutput(containing: "configuration reload failed; still running with the previous configuration")
        #expect(daemon.isRunning)
        #expect(Self.value("tenant_backup_config_last_reload_successful", in: try await scrape(port: port)) == 0)

        // SIGTERM while an upload is in flight: STOPPING=1, exit 0, no multipart upload left.
        let stuck = try FakePgDump.make("head -c 9437184 /dev/urandom; while true; do head -c 1024 /dev/urandom; sleep 0.1; done")
        defer { try? FileManager.default.removeItem(atPath: stuck) }
        try write(prefix: "third", extra: "postgres:\n  pg_dump: \(stuck)\n")
        daemon.signal(SIGHUP)
        let client = services.s3Client(bucket: bucket)
        let deadline = ContinuousClock.now + .seconds(60)
        while try await client.listMultipartUploads(prefix: "third/").isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await !client.listMultipartUploads(prefix: "third/").isEmpty)
        daemon.signal(SIGTERM)
        try await notify.waitFor("STOPPING=1") { $0.contains("STOPPING=1") }
        let status = await daemon.waitForExit(timeout: .seconds(60))
        #expect(status == 0, "\(daemon.output.suffix(3000))")
        #expect(try await client.listMultipartUploads(prefix: "").isEmpty)
        #expect(try await client.listKeys(prefix: "third/").isEmpty)
        #expect(daemon.output.contains("stop timeout passed"))
    }

    /// Issue 10, point 3: SIGHUP with a number that used to overflow killed the daemon (exit 132).
    @Test func aReloadWithAnOverflowingNumberKeepsTheDaemonAndItsConfiguration() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let notify = try NotifySocket()
                defer { notify.close() }
                let config = Self.temporaryFile("config.yaml")
                defer { try? FileManager.default.removeItem(atPath: config) }
                try "schedule:\n  cron: \"0 3 * * *\"\n  catch_up: false\nmetrics:\n  listen: off\n".write(toFile: config, atomically: true, encoding: .utf8)
                let daemon = try DaemonProcess(["run", "--config", config], environment: environment(database: database, bucket: bucket, notify: notify))
                let ready = try await notify.waitFor("READY=1") { $0.contains("READY=1") }
                try "schedule:\n  cron: \"0 3 * * *\"\nbackup:\n  dump_timeout: 9223372036854775807d\n".write(toFile: config, atomically: true, encoding: .utf8)
                daemon.signal(SIGHUP)
                let refused = try await notify.waitFor(after: ready.index, "READY=1 with the reload failure") {
                    $0.contains("READY=1") && $0.contains("reload failed")
                }
                #expect(refused.message.contains("config.yaml:4:17: backup.dump_timeout"), "\(refused.message)")
                #expect(daemon.isRunning)
                daemon.signal(SIGTERM)
                #expect(await daemon.waitForExit(timeout: .seconds(60)) == 0, "\(daemon.output.suffix(2000))")
            }
        }
    }

    // MARK: - Several hosts

    /// With a consistent snapshot (the default) each daemon dumps the shared schemas of its own snapshot, so
    /// that the tenants it backs up restore on top of them; without, the second reuses the first's dump.
    @Test(arguments: [true, false])
    func twoDaemonsRunningOneCycleTogetherBackEachTenantUpExactlyOnce(consistentSnapshot: Bool) async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                // A pg_dump slow enough that both daemons are at work on the same tenants at once.
                let slow = try FakePgDump.make("sleep 1; exec \(FakePgDump.real) \"$@\"")
                defer { try? FileManager.default.removeItem(atPath: slow) }
                let config = Self.temporaryFile("config.yaml")
                defer { try? FileManager.default.removeItem(atPath: config) }
                try "backup:\n  consistent_snapshot: \(consistentSnapshot)\nmetrics:\n  listen: off\n".write(toFile: config, atomically: true, encoding: .utf8)
                var environment = environment(database: database, bucket: bucket)
                environment["TENANT_BACKUP_PG_DUMP"] = slow
                let first = try DaemonProcess(["run", "--once", "--config", config], environment: environment)
                let second = try DaemonProcess(["run", "--once", "--config", config], environment: environment)
                let firstStatus = await first.waitForExit()
                let secondStatus = await second.waitForExit()
                #expect(firstStatus == 0, "\(first.output)")
                #expect(secondStatus == 0, "\(second.output)")

                let keys = try await tenantBackups(bucket, prefix: "")
                let tenants = keys.compactMap { BackupKey.parse($0, prefix: "")?.schema }
                #expect(tenants.sorted() == ["Clínica \"Sur\"", "bienestar", "mindcare"].sorted(), "\(keys)")
                let logs = first.output + second.output
                let done = logs.components(separatedBy: "msg=\"backup done\" ").count - 1
                let skipped = logs.components(separatedBy: "already backed up in this slot; skipped").count - 1
                #expect(skipped == 3, "each tenant is skipped by the daemon that came second")
                let sharedDumps = try await services.s3Client(bucket: bucket).listKeys(prefix: "shared/").filter { !$0.hasSuffix(".manifest.json") }
                if consistentSnapshot {
                    #expect(done == 3 + 2)  // three tenants once; the shared schema by each daemon, from its own snapshot
                    #expect(sharedDumps.count == 2)
                } else {
                    #expect(done == 3 + 1)  // three tenants and the shared schema, once each
                    #expect(logs.contains("shared schema already dumped in this cycle by another host"))
                    #expect(sharedDumps.count == 1)
                }
            }
        }
    }

    // MARK: - Metrics

    @Test func metricsShowEachTenantsStateAfterACycleWithAFailingTenant() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let (metrics, output) = try await metricsAfterTheFirstCycle(database, bucket: bucket, failing: "mindcare")
                let client = services.s3Client(bucket: bucket)
                let bienestarKey = try #require(try await tenantBackups(bucket, prefix: "").first { $0.contains("/bienestar/") })
                let storedBytes = try await client.headObject(key: bienestarKey).size
                let parsed = try #require(BackupKey.parse(bienestarKey, prefix: ""))
                func value(_ name: String, _ tenant: String) -> Double? {
                    Self.value("\(name){tenant=\"\(tenant.replacingOccurrences(of: "\"", with: "\\\""))\"}", in: metrics)
                }
                #expect(value(BackupMetrics.lastAttemptSucceeded, "bienestar") == 1)
                #expect(value(BackupMetrics.lastAttemptSucceeded, "Clínica \"Sur\"") == 1)
                #expect(value(BackupMetrics.lastAttemptSucceeded, "mindcare") == 0)
                #expect(value(BackupMetrics.lastBytes, "bienestar") == Double(storedBytes))
                #expect(value(BackupMetrics.lastSuccess, "mindcare") == nil)
                #expect(value(BackupMetrics.newestBackup, "bienestar") == parsed.timestamp.timeIntervalSince1970)
                #expect(value(BackupMetrics.stale, "bienestar") == 0)
                #expect(value(BackupMetrics.stale, "mindcare") == 1)  // no backup in the bucket at all
                #expect(Self.value("\(BackupMetrics.failures){area=\"tenant\"}", in: metrics) == 1)
                #expect(Self.value("\(BackupMetrics.backups){area=\"tenant\"}", in: metrics) == 2)
                #expect(output.contains("injected failure for mindcare"))
            }
        }
    }

    /// Starts the daemon with pg_dump failing for `failing` and metrics on, waits for its first cycle (the
    /// catch-up: 2 of 3 tenants ok), scrapes the metrics, and stops it (which must exit 0).
    func metricsAfterTheFirstCycle(_ database: TestDatabase, bucket: String, failing tenant: String) async throws -> (metrics: String, output: String) {
        let failing = try Self.pgDumpFailing(for: tenant)
        defer { try? FileManager.default.removeItem(atPath: failing) }
        let notify = try NotifySocket()
        defer { notify.close() }
        let port = try Self.freePort()
        var environment = environment(database: database, bucket: bucket, notify: notify)
        environment["TENANT_BACKUP_PG_DUMP"] = failing
        environment["TENANT_BACKUP_METRICS_LISTEN"] = "127.0.0.1:\(port)"
        environment["TENANT_BACKUP_SCHEDULE"] = "0 3 * * *"
        let daemon = try DaemonProcess(["run"], environment: environment)
        try await notify.waitFor("the cycle's summary") { $0.contains("STATUS=idle, next cycle") && $0.contains("last: 2/3 ok") }
        let metrics = try await scrape(port: port)
        daemon.signal(SIGTERM)
        #expect(await daemon.waitForExit(timeout: .seconds(60)) == 0)
        return (metrics, daemon.output)
    }

    @Test func runOnceExitsNonZeroWhenATenantFailsAndStillBacksUpTheOthers() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let failing = try Self.pgDumpFailing(for: "mindcare")
                defer { try? FileManager.default.removeItem(atPath: failing) }
                var environment = environment(database: database, bucket: bucket)
                environment["TENANT_BACKUP_PG_DUMP"] = failing
                let daemon = try DaemonProcess(["run", "--once"], environment: environment)
                #expect(await daemon.waitForExit() == 1)
                #expect(daemon.output.contains("tenant=mindcare"))
                #expect(daemon.output.contains("injected failure for mindcare"))
                let tenants = try await tenantBackups(bucket, prefix: "").compactMap { BackupKey.parse($0, prefix: "")?.schema }
                #expect(tenants.sorted() == ["Clínica \"Sur\"", "bienestar"].sorted())
            }
        }
    }

    // MARK: - Restore drills (issue 12)

    /// drill.cron every minute: each minute the daemon drills the tenant drilled longest ago (never-drilled
    /// first, by name) and reports it in the metrics and the log; no drill database is left. A drill that
    /// comes before catch-up stored the tenant's first backup fails (and says so): under load that can be the
    /// first one, so the test waits for any tenant's successful drill.
    @Test func theDaemonRunsRestoreDrillsOnItsScheduleAndReportsThem() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let port = try Self.freePort()
                var environment = environment(database: database, bucket: bucket)
                environment["TENANT_BACKUP_METRICS_LISTEN"] = "127.0.0.1:\(port)"
                environment["TENANT_BACKUP_SCHEDULE"] = "0 3 * * *"
                environment["TENANT_BACKUP_DRILL_CRON"] = "* * * * *"
                let started = Date()
                let daemon = try DaemonProcess(["run"], environment: environment)
                let tenants = ["Clínica \\\"Sur\\\"", "bienestar", "mindcare"]
                func drilled(_ metrics: String) -> String? {
                    tenants.first { Self.value("\(BackupMetrics.lastDrillSuccess){tenant=\"\($0)\"}", in: metrics) == 1 }
                }
                var metrics = ""
                let deadline = ContinuousClock.now + .seconds(200)
                while ContinuousClock.now < deadline {
                    metrics = (try? await scrape(port: port)) ?? ""
                    if drilled(metrics) != nil { break }
                    try await Task.sleep(for: .seconds(1))
                }
                daemon.signal(SIGTERM)
                #expect(await daemon.waitForExit(timeout: .seconds(60)) == 0)
                let tenant = drilled(metrics)
                #expect(tenant != nil, "\(metrics.split(separator: "\n").filter { $0.contains("drill") })\n\(daemon.output.suffix(3000))")
                let at = Self.value("\(BackupMetrics.lastDrillTimestamp){tenant=\"\(tenant ?? "")\"}", in: metrics) ?? 0
                #expect(at >= started.timeIntervalSince1970 && at <= Date().timeIntervalSince1970)
                #expect(daemon.output.contains("restore drill finished"), "\(daemon.output.suffix(3000))")
                // Other suites' drills may run meanwhile: this daemon's drill databases are found by name in its log.
                let names = daemon.output.split(separator: "\n").compactMap { line -> String? in
                    guard let range = line.range(of: "tenant_backup_drill_") else { return nil }
                    return String(line[range.lowerBound...].prefix(36))
                }
                #expect(!names.isEmpty)
                for name in Set(names) {
                    #expect(try database.connect().query("SELECT 1 FROM pg_database WHERE datname = $1", [name], purpose: "test").rows.isEmpty, "\(name) was left")
                }
            }
        }
    }

    // MARK: - A key from a host with a wrong clock (issue 10, point 2)

    static let futureKey = "backups/bienestar/backup-sql-bienestar-2031-01-01-000000.sql.zst"

    @Test func aFutureDatedKeyDoesNotSkipTheTenantInRunOnce() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let client = services.s3Client(bucket: bucket)
                try await client.putObject(key: Self.futureKey, body: ByteBuffer(string: "written by a host whose clock said 2031"))
                let daemon = try DaemonProcess(["run", "--once"], environment: environment(database: database, bucket: bucket))
                #expect(await daemon.waitForExit() == 0, "\(daemon.output)")
                let bienestar = try await tenantBackups(bucket, prefix: "").filter { $0.contains("/bienestar/") && $0 != Self.futureKey }
                #expect(bienestar.count == 1, "the tenant was skipped: \(daemon.output)")
                #expect(!daemon.output.contains("already backed up in this slot"))
                #expect(daemon.output.contains("dated in the future") && daemon.output.contains(Self.futureKey))
                #expect(try await client.headObject(key: Self.futureKey).size > 0)  // kept, never deleted
            }
        }
    }

    @Test func aFutureDatedKeyLeavesTheTenantStaleCaughtUpAndCounted() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                try await services.s3Client(bucket: bucket).putObject(key: Self.futureKey, body: ByteBuffer(string: "from the future"))
                // Catch-up tries bienestar (its only key is from 2031), and it fails: 2 of 3.
                let (metrics, output) = try await metricsAfterTheFirstCycle(database, bucket: bucket, failing: "bienestar")
                #expect(Self.value("\(BackupMetrics.stale){tenant=\"bienestar\"}", in: metrics) == 1, "\(metrics)")
                #expect(Self.value("\(BackupMetrics.futureDated){tenant=\"bienestar\"}", in: metrics) == 1, "\(metrics)")
                #expect(Self.value("\(BackupMetrics.futureDated){tenant=\"mindcare\"}", in: metrics) == 0, "\(metrics)")
                #expect(output.contains("injected failure for bienestar"))
                #expect(output.contains(Self.futureKey))
            }
        }
    }

    // MARK: - Selecting no tenant (issue 10, point 6)

    @Test(arguments: [("TENANT_BACKUP_INCLUDE", "bienstar*"), ("TENANT_BACKUP_EXCLUDE", "*")])
    func selectingNoTenantFailsBackupAndRunOnce(variable: String, value: String) async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                var environment = environment(database: database, bucket: bucket)
                environment[variable] = value
                let (status, output) = try await TestProcess.tenantBackup(["backup"], environment)
                #expect(status == .exited(1), "\(output)")
                #expect(output.contains("no tenants selected"), "\(output)")
                let once = try DaemonProcess(["run", "--once"], environment: environment)
                #expect(await once.waitForExit() == 1, "\(once.output)")
                #expect(once.output.contains("no tenants selected"))
                #expect(try await tenantBackups(bucket, prefix: "").isEmpty)
                // prune too (found by the adversarial trial: it exited 0 having pruned nothing).
                let (pruneStatus, pruneOutput) = try await TestProcess.tenantBackup(["prune", "--dry-run"], environment)
                #expect(pruneStatus == .exited(1) && pruneOutput.contains("no tenants selected"), "\(pruneOutput)")
            }
        }
    }

    @Test func aDaemonThatSelectsNoTenantSaysSoInItsStatusAndMetrics() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let notify = try NotifySocket()
                defer { notify.close() }
                let port = try Self.freePort()
                var environment = environment(database: database, bucket: bucket, notify: notify)
                environment["TENANT_BACKUP_EXCLUDE"] = "*"
                environment["TENANT_BACKUP_METRICS_LISTEN"] = "127.0.0.1:\(port)"
                environment["TENANT_BACKUP_SCHEDULE"] = "0 3 * * *"
                let daemon = try DaemonProcess(["run"], environment: environment)
                let status = try await notify.waitFor("a status naming the failure") { $0.contains("STATUS=") && $0.contains("no tenants selected") }
                #expect(status.message.contains("cycle failed"))
                let metrics = try await scrape(port: port)
                daemon.signal(SIGTERM)
                #expect(await daemon.waitForExit(timeout: .seconds(60)) == 0)
                #expect(Self.value(BackupMetrics.tenantsSelected, in: metrics) == 0, "\(metrics)")
            }
        }
    }

    @Test func aTenantTheQueryListsWithoutASchemaIsAFailure() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                var environment = environment(database: database, bucket: bucket)
                environment["TENANT_BACKUP_TENANT_QUERY"] = "SELECT unnest(ARRAY['bienestar', 'gone_clinic'])"
                let (status, output) = try await TestProcess.tenantBackup(["backup", "--no-shared"], environment)
                #expect(status == .exited(1), "\(output)")
                #expect(output.contains("✘ tenant gone_clinic:") && output.contains("no schema of that name"), "\(output)")
                #expect(output.contains("✔ tenant bienestar"), "\(output)")
            }
        }
    }

    /// Also issue 10: libpq's WARNING notices went straight to stderr, around the log format.
    @Test func postgresNoticesGoThroughTheLogFormat() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                var environment = environment(database: database, bucket: bucket)
                let function = """
                    CREATE FUNCTION public.noisy_tenants() RETURNS SETOF text LANGUAGE plpgsql AS $$
                    BEGIN RAISE WARNING 'tenant registry is being migrated'; RETURN NEXT 'bienestar'; END $$;
                    """
                let (created, createdOutput) = try await TestProcess.run(
                    "/usr/bin/psql", ["-X", "-v", "ON_ERROR_STOP=1", "-c", function], environment: environment)
                #expect(created == .exited(0), "\(createdOutput)")
                environment["TENANT_BACKUP_TENANT_QUERY"] = "SELECT public.noisy_tenants()"
                let (status, output) = try await TestProcess.tenantBackup(["backup", "--no-shared"], environment)
                #expect(status == .exited(0), "\(output)")
                let lines = output.split(separator: "\n")
                #expect(!lines.contains { $0.hasPrefix("WARNING:") }, "\(output)")
                #expect(lines.contains { $0.contains("msg=\"PostgreSQL notice\"") && $0.contains("tenant registry is being migrated") }, "\(output)")
            }
        }
    }

    /// Issue 11, point 9: the warnings of a pg_dump that succeeds were dropped.
    @Test func aPgDumpThatSucceedsWithAWarningLeavesItInTheLogWithTheTenant() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let warning = try FakePgDump.make("""
                    echo 'pg_dump: warning: could not resolve dependency loop among these items' >&2
                    exec \(FakePgDump.real) "$@"
                    """)
                defer { try? FileManager.default.removeItem(atPath: warning) }
                var environment = environment(database: database, bucket: bucket)
                environment["TENANT_BACKUP_PG_DUMP"] = warning
                let (status, output) = try await TestProcess.tenantBackup(["backup", "--tenant", "bienestar", "--no-shared"], environment)
                #expect(status == .exited(0), "\(output)")
                let line = output.split(separator: "\n").first { $0.contains("could not resolve dependency loop") }
                #expect(line?.contains("level=warning") == true && line?.contains("tenant=bienestar") == true, "\(output)")
            }
        }
    }

    // MARK: - Refusing to start

    @Test func withoutABucketTheDaemonRefusesToStartAndSaysWhichSettingIsMissing() async throws {
        try await TestDatabase.with(services) { database in
            let notify = try NotifySocket()
            defer { notify.close() }
            var environment = environment(database: database, bucket: "unused", notify: notify)
            environment.removeValue(forKey: "AWS_STORAGE_BUCKET_NAME")
            let daemon = try DaemonProcess(["run"], environment: environment)
            #expect(await daemon.waitForExit(timeout: .seconds(60)) == 1)
            #expect(daemon.output.contains("no bucket configured: set s3.bucket"))
            #expect(!notify.messages.contains { $0.contains("READY=1") })
        }
    }

    @Test func aMetricsPortInUseFailsTheStartBeforeReady() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let notify = try NotifySocket()
                defer { notify.close() }
                let port = try Self.freePort()
                var first = environment(database: database, bucket: bucket)
                first["TENANT_BACKUP_METRICS_LISTEN"] = "127.0.0.1:\(port)"
                first["TENANT_BACKUP_SCHEDULE"] = "0 3 * * *"
                let holder = try DaemonProcess(["run"], environment: first)
                try await holder.waitForOutput(containing: "serving metrics")
                var second = environment(database: database, bucket: bucket, notify: notify)
                second["TENANT_BACKUP_METRICS_LISTEN"] = "127.0.0.1:\(port)"
                let daemon = try DaemonProcess(["run"], environment: second)
                #expect(await daemon.waitForExit(timeout: .seconds(60)) == 1)
                #expect(daemon.output.contains("cannot listen on 127.0.0.1:\(port) for metrics"))
                #expect(!notify.messages.contains { $0.contains("READY=1") })
                holder.signal(SIGTERM)
                #expect(await holder.waitForExit(timeout: .seconds(60)) == 0)
            }
        }
    }

    /// Found by the adversarial run: an API address that cannot be listened on ended the daemon with a bare
    /// "Address already in use", naming no setting. (Here the daemon's own metrics endpoint holds the port.)
    @Test func anAPIPortInUseEndsTheDaemonNamingTheSetting() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let port = try Self.freePort()
                var settings = environment(database: database, bucket: bucket)
                settings["TENANT_BACKUP_METRICS_LISTEN"] = "127.0.0.1:\(port)"
                settings["TENANT_BACKUP_API_LISTEN"] = "127.0.0.1:\(port)"
                settings["TENANT_BACKUP_API_TOKENS_FILE"] = TestProcess.temporaryFile("tokens.json")
                settings["TENANT_BACKUP_SCHEDULE"] = "0 3 * * *"
                let daemon = try DaemonProcess(["run"], environment: settings)
                // The first checks (the database, the bucket's probes) come before the listeners: under the whole
                // suite's load on two cores they once took over 60 s, before the daemon had logged a line.
                #expect(await daemon.waitForExit(timeout: .seconds(240)) == 1)
                #expect(daemon.output.contains("cannot listen on 127.0.0.1:\(port) for the API"), "\(daemon.output.suffix(2000))")
                #expect(daemon.output.contains("change api.listen"), "\(daemon.output.suffix(2000))")
            }
        }
    }
}
