import Crypto
import Foundation
import Logging
import NIOCore
import Testing
import TenantBackup
import TenantBackupTesting

/// The backup pipeline against real PostgreSQL, real pg_dump and the S3 endpoint behind the verifying proxy.
@Suite struct BackupIntegrationTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    /// Settings and environment for backing up `database` into `bucket`.
    func cycle(_ database: TestDatabase, bucket: String, configure: (inout Settings) -> Void = { _ in }) -> BackupCycle {
        var environment = services.environment
        environment["PGDATABASE"] = database.name
        var settings = Settings(s3: services.s3Settings(bucket: bucket))
        configure(&settings)
        return BackupCycle(settings: settings, environment: environment, logger: .quiet)
    }

    /// Downloads and decompresses an object.
    func download(_ key: String, bucket: String, compression: Compression = .zstd) async throws -> String {
        let stored = try await services.s3Client(bucket: bucket).getObject(key: key, limit: 256 << 20)
        var decompressor = try compression.makeDecompressor()
        var plain = try decompressor.process(stored)
        var tail = try decompressor.finish()
        plain.writeBuffer(&tail)
        return String(buffer: plain)
    }

    /// Restores a plain SQL dump with `psql -X -v ON_ERROR_STOP=1 --single-transaction`.
    func restore(_ sql: String, into database: TestDatabase) async throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tb-restore-\(UUID().uuidString).sql")
        try sql.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        try await database.psqlFile(file.path)
    }

    /// Every row of a table in a stable order, as text.
    func rows(_ table: String, in database: TestDatabase) throws -> [String] {
        let connection = try database.connect()
        return try connection.query("SELECT t::text FROM \(table) t ORDER BY 1", purpose: "reading \(table)").rows.map { $0[0] ?? "NULL" }
    }

    @Test func theFixtureBacksUpAndRestoresIntoAFreshDatabaseExactly() async throws {
        try await TestDatabase.with(services) { source in
            try await TestBucket.with(services) { bucket in
                let report = try await cycle(source, bucket: bucket).run()
                #expect(report.allSucceeded, "\(report.failures)")
                #expect(report.shared.map(\.schema.name) == ["public"])
                #expect(report.tenants.map(\.schema.name) == ["Clínica \"Sur\"", "bienestar", "mindcare"])

                // One object and one manifest per tenant, at the seed-compatible keys.
                let keys = try await services.s3Client(bucket: bucket).listObjects(prefix: "").collect().map(\.key)
                for tenant in ["bienestar", "mindcare", "Clínica \"Sur\""] {
                    let folder = BackupKey.folder(prefix: "", area: .tenant, schema: tenant)
                    let objects = keys.filter { $0.hasPrefix(folder) }
                    #expect(objects.count == 2, "\(objects)")
                    let object = try #require(objects.first { !$0.hasSuffix(".manifest.json") })
                    #expect(BackupKey.parse(object, prefix: "")?.schema == tenant)
                    #expect(object.hasSuffix(".sql.zst"))
                    #expect(objects.contains(object + ".manifest.json"))
                }
                #expect(keys.filter { $0.hasPrefix("shared/public/") }.count == 2)
                // Each of these small dumps went up as one PutObject: no multipart upload was ever started.
                let requests = try await services.proxy.requests(matching: "^/\(bucket)/")
                #expect(!requests.isEmpty)
                #expect(!requests.contains { $0.query.contains("uploads") || $0.query.contains("partNumber") })

                try await TestDatabase.with(services, fixture: false) { target in
                    let sharedKey = try #require(try report.shared.first?.result.get().key)
                    // `pg_dump -n public` always writes CREATE SCHEMA public: a restore into a fresh database
                    // drops the empty public schema first.
                    try await target.psql("DROP SCHEMA public")
                    try await restore(try await download(sharedKey, bucket: bucket), into: target)
                    for result in report.tenants {
                        let outcome = try result.result.get()
                        try await restore(try await download(outcome.key, bucket: bucket), into: target)
                        let manifestData = try await services.s3Client(bucket: bucket).getObject(key: try #require(outcome.manifestKey))
                        let manifest = try BackupManifest.decode(Data(buffer: manifestData))
                        #expect(manifest.sharedBackups == [sharedKey])
                        #expect(manifest.sha256 == outcome.sha256)
                        #expect(manifest.bytes == outcome.storedBytes)
                        let schema = "\"" + result.schema.name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
                        for table in ["patients", "appointments", "session_notes"] {
                            let original = try rows("\(schema).\(table)", in: source)
                            #expect(!original.isEmpty)
                            #expect(try rows("\(schema).\(table)", in: target) == original, "\(result.schema.name).\(table)")
                            let counted = manifest.tableRowCounts?.first { $0.key.hasSuffix(".\(table)") }?.value
                            #expect(counted == Int64(original.count), "\(result.schema.name).\(table) row count")
                        }
                    }
                    #expect(try rows("public.users_user", in: target) == rows("public.users_user", in: source))
                }
            }
        }
    }

    /// A therapist hired while the cycle runs, with a patient in bienestar: dumped from one snapshot, the
    /// shared dump and bienestar's agree, and bienestar restores on top of it. Dumped each at its own moment
    /// (the control), bienestar's patient references a user the shared dump lacks, and the restore fails.
    @Test(arguments: [true, false])
    func everySchemaOfACycleIsDumpedFromOneSnapshot(consistent: Bool) async throws {
        try await TestDatabase.with(services) { source in
            try await TestBucket.with(services) { bucket in
                let hiring = try FakePgDump.make("""
                    for argument in "$@"; do
                      if [[ "$argument" == '--schema="bienestar"' ]]; then
                        psql -X -q -v ON_ERROR_STOP=1 -c "WITH hired AS (INSERT INTO public.users_user (email, full_name) VALUES ('hired@example.org', 'Hired during the cycle') RETURNING id) INSERT INTO bienestar.patients (full_name, therapist_id) SELECT 'New patient', id FROM hired" >/dev/null
                      fi
                    done
                    exec \(FakePgDump.real) "$@"
                    """)
                defer { try? FileManager.default.removeItem(atPath: hiring) }
                let report = try await cycle(source, bucket: bucket) { settings in
                    settings.postgres.pgDumpPath = hiring
                    settings.backup.consistentSnapshot = consistent
                    settings.backup.tenantConcurrency = 1
                }.run(tenants: ["bienestar"])
                #expect(report.allSucceeded, "\(report.failures)")
                #expect(try rows("bienestar.patients", in: source).contains { $0.contains("New patient") })  // it did happen

                try await TestDatabase.with(services, fixture: false) { target in
                    try await target.psql("DROP SCHEMA public")
                    try await restore(try await download(try report.shared[0].result.get().key, bucket: bucket), into: target)
                    let tenantDump = try await download(try report.tenants[0].result.get().key, bucket: bucket)
                    if consistent {
                        try await restore(tenantDump, into: target)
                        #expect(try rows("bienestar.patients", in: target).allSatisfy { !$0.contains("New patient") })
                    } else {
                        await #expect(throws: (any Error).self) { try await restore(tenantDump, into: target) }
                    }
                }
            }
        }
    }

    /// Production servers often end sessions idle in a transaction after a while; the cycle's snapshot
    /// session is one for the whole cycle, and must outlive such a timeout.
    /// The store refuses the manifest (a sentinel a bucket writer put at `<key>.manifest.json` answers 412 the
    /// same way): the dump is kept, but the backup fails, naming the key and what to fix; never "✔".
    @Test func aManifestThatCannotBeWrittenFailsTheBackupAndKeepsTheDump() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                try await services.proxy.inject([
                    .init(method: "PUT", path: "^/\(bucket)/backups/bienestar/.*\\.manifest\\.json$", action: .error, times: 0, status: 403, code: "AccessDenied")
                ])
                let environment = services.commandEnvironment(database: database, bucket: bucket)
                let (status, output) = try await TestProcess.tenantBackup(["backup", "--tenant", "bienestar", "--no-shared"], environment)
                #expect(status == .exited(1), "\(output)")
                #expect(output.contains("manifest could not be written") && output.contains("bienestar"), "\(output)")
                #expect(!output.contains("✔"), "\(output)")
                let keys = try await services.s3Client(bucket: bucket).listKeys(prefix: "backups/bienestar/")
                #expect(keys.count == 1 && keys.allSatisfy { !$0.hasSuffix(".manifest.json") }, "the dump is kept: \(keys)")
            }
        }
    }

    @Test func theCyclesSnapshotOutlivesAnIdleInTransactionTimeout() async throws {
        try await TestDatabase.with(services) { source in
            try await source.psql("ALTER DATABASE \(source.name) SET idle_in_transaction_session_timeout = '500ms'")
            try await TestBucket.with(services) { bucket in
                let slow = try FakePgDump.make("sleep 1; exec \(FakePgDump.real) \"$@\"")
                defer { try? FileManager.default.removeItem(atPath: slow) }
                let report = try await cycle(source, bucket: bucket) { settings in
                    settings.postgres.pgDumpPath = slow
                    settings.backup.tenantConcurrency = 1
                }.run()
                #expect(report.allSucceeded, "\(report.failures)")
                #expect(report.tenants.count == 3)
            }
        }
    }

    @Test func eachBackupHoldsOnlyItsOwnSchemaWhateverItsName() async throws {
        try await TestDatabase.with(services, fixture: false) { database in
            try await database.psql("""
                CREATE SCHEMA "a*"; CREATE TABLE "a*".only_astar (id int);
                CREATE SCHEMA ab; CREATE TABLE ab.only_ab (id int);
                CREATE SCHEMA "a.b"; CREATE TABLE "a.b".only_adotb (id int);
                CREATE SCHEMA clinic; CREATE TABLE clinic.only_clinic (id int);
                CREATE SCHEMA clinic2; CREATE TABLE clinic2.only_clinic2 (id int);
                """)
            try await TestBucket.with(services) { bucket in
                let report = try await cycle(database, bucket: bucket).run(includeShared: false)
                #expect(report.allSucceeded, "\(report.failures)")
                let tables = ["a*": "only_astar", "ab": "only_ab", "a.b": "only_adotb", "clinic": "only_clinic", "clinic2": "only_clinic2"]
                for result in report.tenants {
                    let sql = try await download(try result.result.get().key, bucket: bucket)
                    for (schema, table) in tables {
                        if schema == result.schema.name {
                            #expect(sql.contains("CREATE TABLE"), "\(schema)")
                            #expect(sql.contains(".\(table) ("), "\(schema) lacks its own table")
                        } else {
                            #expect(!sql.contains(".\(table) ("), "the backup of \(result.schema) contains \(table)")
                        }
                    }
                }
                let keys = try await services.s3Client(bucket: bucket).listObjects(prefix: "backups/clinic/").collect()
                #expect(keys.count == 2)  // clinic's object and manifest, never clinic2's
            }
        }
    }

    // MARK: - A dump that fails never becomes a backup

    func expectNothingLeft(in bucket: String) async throws {
        let client = services.s3Client(bucket: bucket)
        #expect(try await client.listObjects(prefix: "").collect().isEmpty)
        #expect(try await client.listMultipartUploads(prefix: "").isEmpty)
    }

    func runFailing(_ fake: String, expect reason: PgDumpFailure.Reason, stderr: String? = nil, timeout: Duration = .seconds(600)) async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let report = try await cycle(database, bucket: bucket) { settings in
                    settings.postgres.pgDumpPath = fake
                    settings.backup.noOutputTimeout = timeout
                    settings.backup.compression = .none
                }.run(tenants: ["bienestar"], includeShared: false)
                #expect(!report.allSucceeded)
                let error = try #require(report.failures.first)
                #expect(error.schema == .tenant("bienestar") && error.stage == .dump)
                #expect(error.description.hasPrefix("tenant bienestar: "), "\(error)")
                guard case .pgDump(let failure) = error.cause else { Issue.record("not a pg_dump failure: \(error)"); return }
                #expect(failure.reason == reason, "\(error)")
                if let stderr { #expect(failure.stderr.contains(stderr), "\(error)") }
                try await expectNothingLeft(in: bucket)
            }
        }
    }

    @Test func aPgDumpThatWritesTwentyMebibytesThenExitsOneLeavesNothing() async throws {
        let fake = try FakePgDump.make("head -c 20971520 /dev/urandom; echo 'pg_dump: error: query failed' >&2; exit 1")
        defer { try? FileManager.default.removeItem(atPath: fake) }
        try await runFailing(fake, expect: .exited(1), stderr: "pg_dump: error: query failed")
    }

    @Test func aPgDumpKilledMidStreamLeavesNothing() async throws {
        let fake = try FakePgDump.make("head -c 12582912 /dev/urandom; kill -9 $$")
        defer { try? FileManager.default.removeItem(atPath: fake) }
        try await runFailing(fake, expect: .killed(9))
    }

    @Test func aPgDumpThatWritesNothingLeavesNothing() async throws {
        let fake = try FakePgDump.make("exit 0")
        defer { try? FileManager.default.removeItem(atPath: fake) }
        try await runFailing(fake, expect: .emptyOutput)
    }

    @Test func aPgDumpBlockedOnALockIsStoppedByTheNoOutputTimeout() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                // Hold an exclusive lock on one of the tenant's tables for the whole dump.
                let holder = try database.connect()
                _ = try holder.query("BEGIN", purpose: "test")
                _ = try holder.query("LOCK TABLE bienestar.patients IN ACCESS EXCLUSIVE MODE", purpose: "test")
                let started = ContinuousClock.now
                let report = try await cycle(database, bucket: bucket) { settings in
                    settings.backup.noOutputTimeout = .seconds(2)
                    settings.backup.lockWaitTimeout = nil
                }.run(tenants: ["bienestar"], includeShared: false)
                _ = try holder.query("ROLLBACK", purpose: "test")
                // Without the timeout the dump would wait for the lock forever; the bound leaves room for load.
                #expect(ContinuousClock.now - started < .seconds(90))
                let error = try #require(report.failures.first)
                #expect(error.schema == .tenant("bienestar"))
                guard case .pgDump(let failure) = error.cause else { Issue.record("not a pg_dump failure: \(error)"); return }
                #expect(failure.reason == .noOutputTimeout(.seconds(2)), "\(error)")
                try await expectNothingLeft(in: bucket)
            }
        }
    }

    @Test func aPgDumpRunningPastTheDumpTimeoutIsStopped() async throws {
        let fake = try FakePgDump.make("head -c 9437184 /dev/urandom; while true; do head -c 1024 /dev/urandom; sleep 0.1; done")
        defer { try? FileManager.default.removeItem(atPath: fake) }
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let report = try await cycle(database, bucket: bucket) { settings in
                    settings.postgres.pgDumpPath = fake
                    settings.backup.compression = .none
                    settings.backup.dumpTimeout = .seconds(3)
                }.run(tenants: ["bienestar"], includeShared: false)
                let error = try #require(report.failures.first)
                guard case .pgDump(let failure) = error.cause else { Issue.record("not a pg_dump failure: \(error)"); return }
                #expect(failure.reason == .totalTimeout(.seconds(3)), "\(error)")
                try await expectNothingLeft(in: bucket)
            }
        }
    }

    @Test func aCancelledBackupStopsPgDumpAndLeavesNothing() async throws {
        let fake = try FakePgDump.make("head -c 9437184 /dev/urandom; sleep 30; exit 0")
        defer { try? FileManager.default.removeItem(atPath: fake) }
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let run = cycle(database, bucket: bucket) { settings in
                    settings.postgres.pgDumpPath = fake
                    settings.backup.compression = .none
                }
                let started = ContinuousClock.now
                let task = Task { try await run.run(tenants: ["bienestar"], includeShared: false) }
                // Wait until the first part is uploading, then cancel.
                while try await services.s3Client(bucket: bucket).listMultipartUploads(prefix: "").isEmpty {
                    try await Task.sleep(for: .milliseconds(100))
                    if ContinuousClock.now - started > .seconds(20) { break }
                }
                try #require(try await !services.s3Client(bucket: bucket).listMultipartUploads(prefix: "").isEmpty, "no upload was ever in flight")
                let cancelled = ContinuousClock.now
                task.cancel()
                let report = try await task.value
                // From the cancellation, not from the start: waiting for the upload is the machine's load.
                #expect(ContinuousClock.now - cancelled < .seconds(20))
                #expect(!report.allSucceeded)
                // Said plainly, not as whichever S3 request the cancellation happened to cut off (issue 10).
                let failure = try #require(report.failures.first)
                #expect(failure.cause == .stopped, "\(failure)")
                #expect(failure.message.contains("stopped before it finished"))
                try await expectNothingLeft(in: bucket)
            }
        }
    }

    /// Issue 10, point 10: `backup` used to die at once on SIGTERM/SIGINT (exit 143/130, no log line), leaving
    /// its multipart upload behind.
    @Test(arguments: [SIGTERM, SIGINT, SIGHUP])
    func theBackupCommandStoppedByASignalAbortsItsUploadAndSaysSo(signal: Int32) async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let stuck = try FakePgDump.make("head -c 9437184 /dev/urandom; while true; do head -c 1024 /dev/urandom; sleep 0.1; done")
                defer { try? FileManager.default.removeItem(atPath: stuck) }
                var environment = services.environment
                environment["PGDATABASE"] = database.name
                environment["AWS_STORAGE_BUCKET_NAME"] = bucket
                environment["TENANT_BACKUP_PG_DUMP"] = stuck
                environment["TENANT_BACKUP_LOG_FORMAT"] = "logfmt"
                let command = try DaemonProcess(["backup", "--tenant", "bienestar", "--no-shared"], environment: environment)
                let client = services.s3Client(bucket: bucket)
                let deadline = ContinuousClock.now + .seconds(60)
                while try await client.listMultipartUploads(prefix: "").isEmpty, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(try await !client.listMultipartUploads(prefix: "").isEmpty, "\(command.output)")
                command.signal(signal)
                let status = await command.waitForExit(timeout: .seconds(60))
                #expect(status == 128 + signal, "\(command.output)")
                #expect(command.output.contains("received SIG"), "\(command.output)")
                #expect(command.output.contains("upload aborted"), "\(command.output)")
                #expect(try await client.listMultipartUploads(prefix: "").isEmpty)
                #expect(try await client.listKeys(prefix: "").isEmpty)
            }
        }
    }

    /// Also issue 10: a second backup of a tenant within the same second failed with a bare HTTP 412.
    @Test func backupsOfOneTenantInQuickSuccessionEachGetTheirOwnKey() async throws {
        let instant = try FakePgDump.make("echo 'SELECT 1;'")
        defer { try? FileManager.default.removeItem(atPath: instant) }
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let run = cycle(database, bucket: bucket) { $0.postgres.pgDumpPath = instant }
                var keys: [String] = []
                for _ in 0..<3 {
                    let report = try await run.run(tenants: ["bienestar"], includeShared: false)
                    keys.append(try report.tenants[0].result.get().key)
                }
                #expect(Set(keys).count == 3, "\(keys)")
            }
        }
    }

    /// Found by the adversarial trial: a stop that cut off S3's answer to CompleteMultipartUpload, after S3 had
    /// carried it out, left a whole object without a manifest while the log said "nothing was stored".
    @Test func aStopDuringTheCompletionsAnswerKeepsTheWholeObjectWithItsManifest() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let tenMiB = try FakePgDump.make("head -c 10485760 /dev/urandom")
                defer { try? FileManager.default.removeItem(atPath: tenMiB) }
                // S3 completes the upload at once; its answer then trickles back at 10 bytes a second.
                try await services.proxy.inject([
                    .init(method: "POST", path: "^/\(bucket)/backups/bienestar/", query: "uploadId", action: .bandwidth, bytesPerSecond: 10)
                ])
                var environment = services.environment
                environment["PGDATABASE"] = database.name
                environment["AWS_STORAGE_BUCKET_NAME"] = bucket
                environment["TENANT_BACKUP_PG_DUMP"] = tenMiB
                environment["TENANT_BACKUP_COMPRESSION"] = "none"
                environment["TENANT_BACKUP_LOG_FORMAT"] = "logfmt"
                let command = try DaemonProcess(["backup", "--tenant", "bienestar", "--no-shared"], environment: environment)
                let client = services.s3Client(bucket: bucket)
                var stored: [String] = []
                let deadline = ContinuousClock.now + .seconds(60)
                while stored.isEmpty, ContinuousClock.now < deadline {
                    stored = try await client.listKeys(prefix: "backups/bienestar/").filter { !$0.hasSuffix(".manifest.json") }
                    try await Task.sleep(for: .milliseconds(100))
                }
                let key = try #require(stored.first, "the upload was never completed: \(command.output)")
                command.signal(SIGTERM)
                _ = await command.waitForExit(timeout: .seconds(60))
                #expect(try await client.headObject(key: key).size == 10_485_760)
                #expect(try await client.listKeys(prefix: "backups/bienestar/").contains(key + ".manifest.json"), "\(command.output)")
                #expect(command.output.contains("the object is whole and is kept"), "\(command.output)")
                #expect(!command.output.contains("nothing was stored"), "\(command.output)")
            }
        }
    }

    @Test func aPgDumpOlderThanTheServerIsRefused() async throws {
        let fake = try FakePgDump.make("exit 0")
        try "#!/bin/bash\necho 'pg_dump (PostgreSQL) 14.9'\n".write(toFile: fake, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake)
        defer { try? FileManager.default.removeItem(atPath: fake) }
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                await #expect {
                    try await cycle(database, bucket: bucket) { $0.postgres.pgDumpPath = fake }.run()
                } throws: { error in
                    guard case .pgDump(.tooOld(let binary, _)) = error as? BackupCycleError else { return false }
                    return binary.path == fake
                }
            }
        }
    }

    /// Also issue 10: pg_dump inherited the whole environment, the AWS secret key and session token included.
    @Test func pgDumpSeesOnlyWhatItNeedsNeverSecretsOrSystemdsVariables() async throws {
        let fake = try FakePgDump.make("env")
        defer { try? FileManager.default.removeItem(atPath: fake) }
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                var run = cycle(database, bucket: bucket) { settings in
                    settings.postgres.pgDumpPath = fake
                    settings.backup.compression = .none
                }
                var environment = run.environment
                environment["NOTIFY_SOCKET"] = "/run/systemd/notify"
                environment["WATCHDOG_USEC"] = "30000000"
                environment["WATCHDOG_PID"] = "1"
                environment["AWS_SECRET_ACCESS_KEY"] = "child-must-not-see-this"
                environment["AWS_SESSION_TOKEN"] = "nor-this"
                environment["DATABASE_URL_UNRELATED"] = "nor-this-either"
                environment["LC_ALL"] = "C.UTF-8"
                run = BackupCycle(settings: run.settings, environment: environment, logger: run.logger)
                let outcome = try await run.run(tenants: ["bienestar"], includeShared: false).tenants[0].result.get()
                let childEnvironment = String(buffer: try await services.s3Client(bucket: bucket).getObject(key: outcome.key))
                #expect(childEnvironment.contains("PGDATABASE=\(database.name)"))
                #expect(!childEnvironment.contains("NOTIFY_SOCKET"))
                #expect(!childEnvironment.contains("WATCHDOG_"))
                #expect(!childEnvironment.contains("AWS_") && !childEnvironment.contains("child-must-not-see-this"), "\(childEnvironment)")
                #expect(!childEnvironment.contains("nor-this"))
                #expect(childEnvironment.contains("LC_ALL=C.UTF-8") && childEnvironment.contains("PATH="))
                let names = childEnvironment.split(separator: "\n").compactMap { $0.split(separator: "=", maxSplits: 1).first.map(String.init) }
                // bash adds a few of its own (PWD, SHLVL, _); everything else must be one we pass on.
                for name in names where !["PWD", "SHLVL", "_", "OLDPWD"].contains(name) {
                    #expect(ChildEnvironment.keeps(name), "pg_dump saw \(name)")
                }
            }
        }
    }

    @Test func aLargeDumpGoesUpInPartsAndMatchesItsManifest() async throws {
        // 20 MiB of output from a successful (fake) pg_dump: three parts of 8 MiB, completed only at the end.
        let fake = try FakePgDump.make("head -c 20971520 /dev/zero | tr '\\\\0' 'x'; exit 0")
        defer { try? FileManager.default.removeItem(atPath: fake) }
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let report = try await cycle(database, bucket: bucket) { settings in
                    settings.postgres.pgDumpPath = fake
                    settings.backup.compression = .none
                }.run(tenants: ["mindcare"], includeShared: false)
                let outcome = try report.tenants[0].result.get()
                #expect(outcome.storedBytes == 20 << 20)
                let stored = try await services.s3Client(bucket: bucket).getObject(key: outcome.key, limit: 32 << 20)
                #expect(SHA256.hash(data: stored.readableBytesView).map { String(format: "%02x", $0) }.joined() == outcome.sha256)
                let parts = try await services.proxy.requests(matching: "^/\(bucket)/backups/mindcare/").filter { $0.query.contains("partNumber=") }
                #expect(parts.filter { $0.status == .code(200) }.count == 3)
                // The two whole parts went up while they filled.
                #expect(parts.filter { $0.status == .code(200) && $0.streaming == true }.count == 2)
                #expect(try await services.s3Client(bucket: bucket).listMultipartUploads(prefix: "").isEmpty)
            }
        }
    }

    /// Also issue 10: the tenants of a run that found the shared schema's lock taken got `shared_backups: []`.
    @Test func aSharedSchemaLockedForAMomentIsWaitedForAndEveryTenantManifestNamesTheDump() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                nonisolated(unsafe) let other = try database.connect()
                let taken = try other.query(
                    "SELECT pg_try_advisory_lock($1::int4, $2::int4)",
                    [String(TenantLock.sharedProjectKey), String(TenantLock.tenantKey("public"))], purpose: "test")
                #expect(taken.rows.first?.first == "t")
                let release = Task {
                    try await Task.sleep(for: .seconds(3))
                    _ = try other.query("SELECT pg_advisory_unlock_all()", purpose: "test")
                }
                let report = try await cycle(database, bucket: bucket).run(tenants: ["bienestar", "mindcare"])
                try await release.value
                #expect(report.allSucceeded, "\(report.failures)")
                let shared = try #require(try report.shared.first?.result.get().key)
                let client = services.s3Client(bucket: bucket)
                for tenant in report.tenants {
                    let outcome = try tenant.result.get()
                    let manifest = try BackupManifest.decode(Data(try await client.getObject(key: try #require(outcome.manifestKey)).readableBytesView))
                    #expect(manifest.sharedBackups == [shared], "\(tenant.schema)")
                }
            }
        }
    }

    @Test func aTenantLockedByAnotherSessionIsSkippedAndTheOthersBackedUp() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                // Another host holds bienestar's lock (same two keys, its own session).
                let other = try database.connect()
                let taken = try other.query(
                    "SELECT pg_try_advisory_lock($1::int4, $2::int4)",
                    [String(TenantLock.projectKey), String(TenantLock.tenantKey("bienestar"))], purpose: "test")
                #expect(taken.rows.first?.first == "t")
                let report = try await cycle(database, bucket: bucket).run(tenants: ["bienestar", "mindcare"], includeShared: false)
                let bienestar = try #require(report.tenants.first { $0.schema == .tenant("bienestar") })
                #expect(!bienestar.succeeded)
                #expect(report.failures.map(\.cause) == [.lockBusy(waited: nil)], "\(report.failures)")
                #expect(report.tenants.first { $0.schema == .tenant("mindcare") }?.succeeded == true)
                #expect(try await services.s3Client(bucket: bucket).listObjects(prefix: "backups/bienestar/").collect().isEmpty)

                // Once released, the tenant is backed up, and our own lock is released after each run.
                _ = try other.query("SELECT pg_advisory_unlock_all()", purpose: "test")
                let again = try await cycle(database, bucket: bucket).run(tenants: ["bienestar"], includeShared: false)
                #expect(again.allSucceeded, "\(again.failures)")
                let free = try other.query(
                    "SELECT pg_try_advisory_lock($1::int4, $2::int4)",
                    [String(TenantLock.projectKey), String(TenantLock.tenantKey("bienestar"))], purpose: "test")
                #expect(free.rows.first?.first == "t")
            }
        }
    }

    @Test func anUnknownTenantIsRefusedBeforeAnythingRuns() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                await #expect {
                    try await cycle(database, bucket: bucket).run(tenants: ["bienestar*"])
                } throws: { error in
                    guard case .unknownTenants(let unknown, let discovered) = error as? BackupCycleError else { return false }
                    return unknown == ["bienestar*"] && discovered.contains("bienestar")
                }
                try await expectNothingLeft(in: bucket)
            }
        }
    }

    @Test func theCommandLineBacksUpAndReportsJSON() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                var environment = services.environment
                environment["PGDATABASE"] = database.name
                environment["AWS_STORAGE_BUCKET_NAME"] = bucket
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tb-out-\(UUID().uuidString)")
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(at: directory) }
                let (status, output) = try await TestProcess.tenantBackup(
                    ["backup", "--tenant", "mindcare", "--json", "--output", directory.path, "--log-level", "error"], environment)
                #expect(status == .exited(0), "\(output)")
                let json = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
                #expect(json?["ok"] as? Bool == true)
                let results = json?["results"] as? [[String: Any]] ?? []
                #expect(results.map { $0["schema"] as? String } == ["public", "mindcare"])
                let local = try FileManager.default.contentsOfDirectory(atPath: directory.path)
                #expect(local.count == 2)
                #expect(local.contains { $0.hasPrefix("backup-sql-mindcare-") && $0.hasSuffix(".sql.zst") })
            }
        }
    }

    /// Also issue 10: --output into a missing directory failed only after the whole dump, with a raw Foundation
    /// error, and an existing file was silently overwritten.
    @Test func theOutputPathIsCheckedBeforeAnythingRunsAndAFileIsNeverSilentlyReplaced() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                var environment = services.environment
                environment["PGDATABASE"] = database.name
                environment["AWS_STORAGE_BUCKET_NAME"] = bucket
                let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tb-out-\(UUID().uuidString)")
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(at: directory) }
                let base = ["backup", "--tenant", "bienestar", "--no-shared", "--log-level", "error"]

                let missing = directory.appendingPathComponent("no/such/dir/copy.sql.zst").path
                let (missingStatus, missingOutput) = try await TestProcess.tenantBackup(base + ["--output", missing], environment)
                #expect(missingStatus == .exited(1))
                #expect(missingOutput.contains("does not exist") && missingOutput.contains(missing), "\(missingOutput)")

                let existing = directory.appendingPathComponent("copy.sql.zst").path
                try "keep me".write(toFile: existing, atomically: true, encoding: .utf8)
                let (existingStatus, existingOutput) = try await TestProcess.tenantBackup(base + ["--output", existing], environment)
                #expect(existingStatus == .exited(1))
                #expect(existingOutput.contains("already exists"), "\(existingOutput)")
                #expect(try String(contentsOfFile: existing, encoding: .utf8) == "keep me")
                #expect(try await services.s3Client(bucket: bucket).listKeys(prefix: "").isEmpty, "nothing is backed up when the local copy is refused")

                // Found by the adversarial trial: --force replaced a device node (/dev/full) with a dump.
                let link = directory.appendingPathComponent("link.sql.zst").path
                try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: existing)
                for path in [link, "/dev/null", ""] {
                    let (status, output) = try await TestProcess.tenantBackup(base + ["--output", path, "--force"], environment)
                    #expect(status == .exited(1), "\(path): \(output)")
                    #expect(output.contains("is not a regular file") || output.contains("path is empty"), "\(path): \(output)")
                }
                #expect(try String(contentsOfFile: existing, encoding: .utf8) == "keep me")
                let (forcedStatus, forcedOutput) = try await TestProcess.tenantBackup(base + ["--output", existing, "--force"], environment)
                #expect(forcedStatus == .exited(0), "\(forcedOutput)")
                #expect(try Data(contentsOf: URL(fileURLWithPath: existing)).count > 7)
            }
        }
    }
}
