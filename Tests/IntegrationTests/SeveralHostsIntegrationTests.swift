import Foundation
import Logging
import NIOCore
import TenantBackup
import TenantBackupTesting
import Testing

/// Several hosts against one database and bucket. The advisory lock, the bucket re-checked
/// after taking it, and the upload aborted when the lock's connection is lost.
@Suite struct SeveralHostsIntegrationTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    func cycle(_ database: TestDatabase, bucket: String, _ configure: (inout Settings) -> Void = { _ in }) -> BackupCycle {
        var environment = services.environment
        environment["PGDATABASE"] = database.name
        var settings = Settings(s3: services.s3Settings(bucket: bucket))
        configure(&settings)
        return BackupCycle(settings: settings, environment: environment, logger: .quiet)
    }

    func holdLock(_ tenant: String, on connection: PostgresConnection) throws {
        let taken = try connection.query(
            "SELECT pg_try_advisory_lock($1::int4, $2::int4)", [String(TenantLock.projectKey), String(TenantLock.tenantKey(tenant))], purpose: "test")
        #expect(taken.rows.first?.first == "t")
    }

    /// A bucket writer (straight to moto, past the proxy) plants objects named as this slot's backups: one
    /// with no manifest, one beside a copy of a genuine signed manifest. Neither is "already backed up".
    @Test func anObjectABucketWriterPlantedInThisSlotNeverSkipsTheTenant() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let first = cycle(database, bucket: bucket)
                let genuine = try #require(try await first.run(tenants: ["mindcare"], includeShared: false).tenants.first.flatMap { try? $0.result.get().key })
                // The slot starts after that genuine backup: only the planted objects are in it.
                try await Task.sleep(for: .seconds(1.1))
                let slot = Date()
                let attacker = try services.attackerClient(bucket: bucket)
                let junk = BackupKey(prefix: "", area: .tenant, schema: "bienestar", timestamp: slot, suffix: ".sql.zst").key
                try await attacker.putObject(key: junk, body: ByteBuffer(string: "junk"))
                let copied = BackupKey(prefix: "", area: .tenant, schema: "mindcare", timestamp: slot, suffix: ".sql.zst").key
                try await attacker.putObject(key: copied, body: try await attacker.getObject(key: genuine))
                try await attacker.putObject(key: copied + ".manifest.json", body: try await attacker.getObject(key: genuine + ".manifest.json"))

                var again = cycle(database, bucket: bucket)
                again.skipIfBackedUpSince = slot
                let report = try await again.run(tenants: ["bienestar", "mindcare"], includeShared: false)
                #expect(report.skipped.isEmpty, "\(report.skipped)")
                #expect(Set(report.tenants.map(\.schema.name)) == ["bienestar", "mindcare"])
                let allSucceeded = report.tenants.allSatisfy { $0.succeeded }
                #expect(allSucceeded, "\(report.tenants)")
            }
        }
    }

    /// Whether the cycle names its tenants (each lists its own folder) or backs up every tenant (from the
    /// cycle's one listing of the bucket, made before the wait, so the tenant's folder is listed again once
    /// its lock is ours).
    @Test(arguments: [false, true])
    func aTenantBackedUpInThisSlotWhileWeWaitedForItsLockIsSkipped(everyTenant: Bool) async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let slot = Date().addingTimeInterval(-60)
                // Another host holds bienestar's lock while it "backs it up"; then releases it.
                let other = try database.connect()
                try holdLock("bienestar", on: other)
                // The other host signs its manifests with its own key, which this host trusts (signing.public_keys).
                let otherHost = SigningKey(.init())
                var waiting = cycle(database, bucket: bucket) { $0.signing.publicKeys = ["\(otherHost.publicKey)"] }
                waiting.skipIfBackedUpSince = slot
                waiting.lockWait = .seconds(30)
                let pending = Task { [waiting] in try await waiting.run(tenants: everyTenant ? nil : ["bienestar", "mindcare"], includeShared: false) }
                try await Task.sleep(for: .seconds(1.5))
                // What the other host stored under the lock, named by the real naming code.
                let theirs = BackupKey(prefix: "", area: .tenant, schema: "bienestar", timestamp: Date(), suffix: ".sql.zst").key
                let body = ByteBuffer(string: "their backup")
                try await services.s3Client(bucket: bucket).putObject(key: theirs, body: body)
                let manifest = try otherHost.sign(BackupManifest(
                    area: "tenant", schema: "bienestar", key: theirs, bytes: Int64(body.readableBytes), sha256: "", dumpBytes: 0, compression: "zstd",
                    encryption: nil, format: "plain", pgDumpVersion: "15", serverVersion: "15", toolVersion: "test", startedAt: Date(), finishedAt: Date(),
                    sharedBackups: [], tableRowCounts: nil))
                try await services.s3Client(bucket: bucket).putObject(key: theirs + ".manifest.json", body: ByteBuffer(data: try manifest.encoded()))
                _ = try other.query("SELECT pg_advisory_unlock_all()", purpose: "test")

                let report = try await pending.value
                #expect(report.tenants.map(\.schema.name) == (everyTenant ? ["Clínica \"Sur\"", "mindcare"] : ["mindcare"]))
                #expect(report.skipped == [SkippedTenant(schema: "bienestar", reason: .alreadyBackedUp(key: theirs))])
                let keys = try await services.s3Client(bucket: bucket).listKeys(prefix: "backups/bienestar/").filter { !$0.hasSuffix(".manifest.json") }
                #expect(keys.count == 1)
            }
        }
    }

    /// The cycle's retention decides from the cycle's one listing. A manifest that listing showed and the store
    /// then answers 404 for may be gone since (another host's prune): the tenant's folder is listed again and
    /// retention runs on what is there. A store that goes on answering 404 for a manifest it lists stops the
    /// tenant's retention, as any unanswered read does, and nothing of it is deleted.
    @Test(arguments: [1, 6])
    func aManifestGoneSinceTheCyclesListingIsListedAgain(notFoundAnswers: Int) async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let first = try await cycle(database, bucket: bucket).run(tenants: ["bienestar"], includeShared: false)
                let older = try #require(try first.tenants.first?.result.get().key)
                try await Task.sleep(for: .seconds(1.1))  // keys have one-second resolution
                let path = "^/\(bucket)/" + NSRegularExpression.escapedPattern(for: older + ".manifest.json") + "$"
                try await services.proxy.inject([.init(method: "GET", path: path, action: .error, times: notFoundAnswers, status: 404, code: "NoSuchKey")])
                var next = cycle(database, bucket: bucket)
                next.applyRetention = true
                let report = try await next.run(includeShared: false)
                #expect(report.allSucceeded, "\(report.tenants)")
                let failures = report.retentionFailures.map(\.tenant)
                #expect(failures == (notFoundAnswers == 1 ? [] : ["bienestar"]), "\(report.retentionFailures)")
                let keys = try await services.s3Client(bucket: bucket).listKeys(prefix: "backups/bienestar/")
                #expect(keys.contains(older) && keys.contains(older + ".manifest.json"), "\(keys)")
            }
        }
    }

    @Test func aBackupOlderThanTheSlotDoesNotSkipTheTenant() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let first = try await cycle(database, bucket: bucket).run(tenants: ["bienestar"], includeShared: false)
                #expect(first.allSucceeded)
                try await Task.sleep(for: .seconds(1.1))  // keys have one-second resolution
                var next = cycle(database, bucket: bucket)
                next.skipIfBackedUpSince = Date()
                let report = try await next.run(tenants: ["bienestar"], includeShared: false)
                #expect(report.skipped.isEmpty)
                #expect(report.allSucceeded)
                #expect(try await services.s3Client(bucket: bucket).listKeys(prefix: "backups/bienestar/").filter { !$0.hasSuffix(".manifest.json") }.count == 2)
            }
        }
    }

    @Test func losingTheLocksConnectionAbortsTheUploadAndStoresNothing() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                // 9 MiB at once (a multipart upload starts), then a trickle that never ends.
                let slow = try FakePgDump.make("head -c 9437184 /dev/urandom; while true; do head -c 1024 /dev/urandom; sleep 0.1; done")
                defer { try? FileManager.default.removeItem(atPath: slow) }
                var run = cycle(database, bucket: bucket) { settings in settings.postgres.pgDumpPath = slow }
                run.lockCheckInterval = .milliseconds(200)
                let pending = Task { [run] in try await run.run(tenants: ["bienestar"], includeShared: false) }

                let client = services.s3Client(bucket: bucket)
                let deadline = ContinuousClock.now + .seconds(60)
                while try await client.listMultipartUploads(prefix: "backups/bienestar/").isEmpty, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(try await !client.listMultipartUploads(prefix: "backups/bienestar/").isEmpty)
                // The server ends the lock's session (a failover, an idle-session killer, an operator).
                let admin = try database.connect()
                let ended = try admin.query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tenant-backup lock' AND datname = current_database()",
                    purpose: "test")
                #expect(ended.rows.count == 1)

                let report = try await pending.value
                let failure = try #require(report.failures.first)
                #expect(failure.schema == .tenant("bienestar"))
                #expect(failure.stage == .lock && failure.cause == .lockLost, "\(failure)")
                #expect(try await client.listObjects(prefix: "").collect().isEmpty)
                #expect(try await client.listMultipartUploads(prefix: "").isEmpty)
            }
        }
    }

    @Test func aManualPruneWaitsForNoOneAndRefusesWhileAnotherHostHoldsTheTenant() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                var environment = services.environment
                environment["PGDATABASE"] = database.name
                let other = try database.connect()
                try holdLock("bienestar", on: other)
                let runner = RetentionRunner(
                    settings: RetentionSettings(), client: services.s3Client(bucket: bucket), prefix: "", logger: .quiet)
                await #expect {
                    _ = try await runner.runLocked(tenant: "bienestar", trigger: .manual, force: true, postgres: PostgresSettings(), environment: environment)
                } throws: { error in
                    (error as? TenantBusyError)?.tenant == "bienestar" && "\(error)".contains("try again")
                }
                // A dry run deletes nothing and needs no lock.
                let dry = try await runner.runLocked(tenant: "bienestar", trigger: .manual, force: true, dryRun: true, postgres: PostgresSettings(), environment: environment)
                #expect(dry.dryRun)
                _ = try other.query("SELECT pg_advisory_unlock_all()", purpose: "test")
                let applied = try await runner.runLocked(tenant: "bienestar", trigger: .manual, force: true, postgres: PostgresSettings(), environment: environment)
                #expect(applied.status == .applied)
            }
        }
    }
}
