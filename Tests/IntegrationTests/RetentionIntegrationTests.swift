import Foundation
import Logging
import NIOCore
import Testing
import TenantBackup
import TenantBackupTesting

/// Retention against the S3 endpoint: the plan is applied to exactly the right keys, behind the brakes.
@Suite struct RetentionIntegrationTests {
    let services: TestServices
    static let now = Date(timeIntervalSince1970: 1_795_918_530)  // 2026-11-29 02:15:30 UTC

    init() throws {
        services = try TestServices()
    }

    func runner(_ bucket: String, settings: RetentionSettings = RetentionSettings()) -> RetentionRunner {
        RetentionRunner(
            settings: settings, client: services.s3Client(bucket: bucket), prefix: "",
            logger: .quiet, now: { Self.now })
    }

    /// Puts backups of `tenant` at the given ages (in hours before `now`), with manifests when asked.
    @discardableResult
    func seed(_ bucket: String, tenant: String, hoursAgo: [Double], manifests: Bool = true) async throws -> [String] {
        let client = services.s3Client(bucket: bucket)
        var keys: [String] = []
        try await withThrowingTaskGroup(of: Void.self) { group in
            for hours in hoursAgo {
                let key = BackupKey(prefix: "", area: .tenant, schema: tenant, timestamp: Self.now.addingTimeInterval(-hours * 3600), suffix: ".sql.zst")
                keys.append(key.key)
                group.addTask {
                    let body = ByteBuffer(string: "dump of \(tenant) \(hours)")
                    try await client.putObject(key: key.key, body: body)
                    if manifests {
                        let manifest = BackupManifest(
                            area: "tenant", schema: tenant, key: key.key, bytes: Int64(body.readableBytes), sha256: "", dumpBytes: 0,
                            compression: "zstd", encryption: nil, format: "plain", pgDumpVersion: "15", serverVersion: "15",
                            toolVersion: "test", startedAt: key.timestamp, finishedAt: key.timestamp, sharedBackups: [], tableRowCounts: nil)
                        try await client.putObject(key: key.manifestKey, body: ByteBuffer(data: try manifest.encoded()))
                    }
                }
            }
            try await group.waitForAll()
        }
        return keys
    }

    func allKeys(_ bucket: String) async throws -> Set<String> {
        Set(try await services.s3Client(bucket: bucket).listObjects(prefix: "").collect().map(\.key))
    }

    /// 60 backups spread irregularly over six months.
    static let sixMonths: [Double] = (0..<60).map { index in Double(index * index) * 1.2 + Double(index % 3) }

    @Test func theNewestVerifiedBackupIsFoundReadingManifestsNewestFirstAndNoMore() async throws {
        try await TestBucket.with(services) { bucket in
            let keys = try await seed(bucket, tenant: "clinic", hoursAgo: Self.sixMonths)
            // The newest backup's manifest does not vouch for it (another size): the second newest is the newest verified.
            let wrong = BackupManifest(
                area: "tenant", schema: "clinic", key: keys[0], bytes: 1, sha256: "", dumpBytes: 0, compression: "zstd", encryption: nil,
                format: "plain", pgDumpVersion: "15", serverVersion: "15", toolVersion: "test", startedAt: Self.now, finishedAt: Self.now,
                sharedBackups: [], tableRowCounts: nil)
            try await services.attackerClient(bucket: bucket).putObject(key: keys[0] + ".manifest.json", body: ByteBuffer(data: try wrong.encoded()))
            let policy = RetentionPolicy(keepLast: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0)
            let outcome = try await runner(bucket, settings: RetentionSettings(policy: policy, maxDeleteFraction: 1))
                .run(tenant: "clinic", trigger: .afterBackup(succeeded: true), dryRun: true)
            let kept = outcome.plan.kept
            #expect(kept.map(\.candidate.key) == [keys[0], keys[1]])
            #expect(kept.first { $0.candidate.key == keys[1] }?.reasons.contains(.newestVerified) == true)
            // Also issue 10: the operator is told that the newest backup does not match its manifest.
            #expect(outcome.warnings.count == 1 && outcome.warnings[0].contains(keys[0]), "\(outcome.warnings)")
            let manifestReads = try await services.proxy.requests(matching: "^/\(bucket)/backups/clinic/.*\\.manifest\\.json$").filter { $0.method == "GET" }
            #expect(manifestReads.count == 2)  // the newest (refused), then the second (verified); none of the other 58
        }
    }

    @Test func pruneDeletesExactlyThePlannedKeysOfTheRightTenant() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            try await seed(bucket, tenant: "clinic", hoursAgo: Self.sixMonths)
            let other = try await seed(bucket, tenant: "clinic2", hoursAgo: Self.sixMonths)
            let foreign = ["backups/other-app/x", "backups/clinic/notes.txt", "backups/clinic/backup-sql-clinic-latest.sql", "shared/public/y"]
            for key in foreign { try await client.putObject(key: key, body: ByteBuffer(string: "not a backup")) }
            let before = try await allKeys(bucket)

            let settings = RetentionSettings(maxDeleteFraction: 1)
            let outcome = try await runner(bucket, settings: settings).run(tenant: "clinic", trigger: .afterBackup(succeeded: true))
            #expect(outcome.status == .applied)
            let planned = outcome.plan.deleted.map(\.candidate.key)
            #expect(!planned.isEmpty)
            let expectedGone = Set(planned + planned.map { $0 + ".manifest.json" })
            let after = try await allKeys(bucket)
            #expect(before.subtracting(after) == expectedGone)
            for key in foreign + other { #expect(after.contains(key), "\(key) must be untouched") }
            #expect(outcome.plan.kept.count == 60 - planned.count)

            // A second prune finds nothing more to delete.
            let again = try await runner(bucket, settings: settings).run(tenant: "clinic", trigger: .afterBackup(succeeded: true))
            #expect(again.plan.deleted.isEmpty)
            let afterAgain = try await allKeys(bucket)
            #expect(afterAgain == after, "gone: \(after.subtracting(afterAgain).sorted()); new: \(afterAgain.subtracting(after).sorted()); second run: deleted \(again.deletedKeys), aborted \(again.abortedUploads), warnings \(again.warnings)")
        }
    }

    @Test func afterAFailedBackupNothingIsDeleted() async throws {
        try await TestBucket.with(services) { bucket in
            try await seed(bucket, tenant: "t", hoursAgo: Self.sixMonths)
            let before = try await allKeys(bucket)
            let outcome = try await runner(bucket, settings: RetentionSettings(maxDeleteFraction: 1)).run(tenant: "t", trigger: .afterBackup(succeeded: false))
            #expect(outcome.status == .refused(.backupFailed))
            #expect(try await allKeys(bucket) == before)
        }
    }

    @Test func aPlanOverTheFractionIsRefusedAndAppliedWithForce() async throws {
        try await TestBucket.with(services) { bucket in
            try await seed(bucket, tenant: "t", hoursAgo: Self.sixMonths)
            let before = try await allKeys(bucket)
            let refused = try await runner(bucket).run(tenant: "t", trigger: .manual)
            guard case .refused(let refusal) = refused.status, case .tooManyDeletions(let planned, let total, let limit) = refusal else {
                Issue.record("not refused by the fraction brake: \(refused.status)")
                return
            }
            #expect(total == 60 && planned > 30 && limit == 0.5)
            #expect(refusal.canBeForced)
            #expect(try await allKeys(bucket) == before)
            let forced = try await runner(bucket).run(tenant: "t", trigger: .manual, force: true)
            #expect(forced.status == .applied)
            #expect(forced.deletedKeys.count == 2 * forced.plan.deleted.count)
        }
    }

    @Test func aDryRunDeletesNothing() async throws {
        try await TestBucket.with(services) { bucket in
            try await seed(bucket, tenant: "t", hoursAgo: Self.sixMonths)
            let before = try await allKeys(bucket)
            let outcome = try await runner(bucket).run(tenant: "t", trigger: .manual, force: true, dryRun: true)
            #expect(!outcome.plan.deleted.isEmpty)
            #expect(outcome.deletedKeys.isEmpty)
            #expect(try await allKeys(bucket) == before)
        }
    }

    @Test func theNewestBackupSurvivesAPolicyOfAllZeros() async throws {
        try await TestBucket.with(services) { bucket in
            let keys = try await seed(bucket, tenant: "t", hoursAgo: [1, 30, 60, 90])
            let zeros = RetentionSettings(policy: RetentionPolicy(keepLast: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0), maxDeleteFraction: 1)
            let outcome = try await runner(bucket, settings: zeros).run(tenant: "t", trigger: .manual)
            #expect(outcome.plan.kept.map(\.candidate.key) == [keys[0]])
            #expect(try await allKeys(bucket) == [keys[0], keys[0] + ".manifest.json"])
        }
    }

    @Test func aBackupDatedNextYearIsNeitherNewestNorDeleted() async throws {
        try await TestBucket.with(services) { bucket in
            let keys = try await seed(bucket, tenant: "t", hoursAgo: [-24 * 365, 1, 30, 60])
            let zeros = RetentionSettings(policy: RetentionPolicy(keepLast: 0, keepDaily: 0, keepWeekly: 0, keepMonthly: 0), maxDeleteFraction: 1)
            let outcome = try await runner(bucket, settings: zeros).run(tenant: "t", trigger: .manual)
            #expect(outcome.plan.kept.map(\.candidate.key) == [keys[0], keys[1]])
            #expect(outcome.plan.kept.map(\.reasons) == [[.future], [.newest, .newestVerified]])
        }
    }

    @Test func theOldSystemsManifestlessBackupsArePlannedLikeAnyOthers() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            // 30 daily backups in the old system's exact naming, no manifests.
            var keys: [String] = []
            for day in 0..<30 {
                let date = Self.now.addingTimeInterval(-Double(day) * 86400 - 3600)
                let key = "backups/mindcare/backup-sql-mindcare-\(BackupKey.format(date)).sql"
                keys.append(key)
                try await client.putObject(key: key, body: ByteBuffer(string: "old dump \(day)"))
            }
            let outcome = try await runner(bucket, settings: RetentionSettings(maxDeleteFraction: 1)).run(tenant: "mindcare", trigger: .manual)
            #expect(outcome.plan.decisions.count == 30)
            #expect(outcome.plan.decisions.allSatisfy { !$0.candidate.verified })
            // Same plan as for backups with manifests: daily 7 + weekly 4 + monthly 12 over 30 days.
            let expected = RetentionPlanner.plan(outcome.plan.decisions.map(\.candidate), policy: RetentionPolicy(), now: Self.now)
            #expect(outcome.plan == expected)
            #expect(outcome.plan.kept.count > 7)
            #expect(Set(try await allKeys(bucket)) == Set(outcome.plan.kept.map(\.candidate.key)))
        }
    }

    /// Issue 10, point 1: five days of the old system's manifest-less dumps, each with a checksum file
    /// beside it; `prune` (no --force) used to keep the checksum files and delete four of the dumps.
    @Test func sidecarFilesAreNeverPlannedAndEveryKeptDumpSurvivesThePruneCommand() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            var dumps: [String] = []
            var others: [String] = []
            for day in 0..<5 {
                // Dated from the real clock, so the freshness brake of a manual prune passes.
                let stem = "backups/mindcare/backup-sql-mindcare-\(BackupKey.format(Date().addingTimeInterval(-Double(day) * 86400 - 600)))"
                dumps.append(stem + ".sql")
                others += [stem + ".sql.sha256", stem + ".sql.zst.bak", stem + ".sql.md5", stem + ".txt", stem + ".sql.manifest.json.old"]
            }
            // Other shapes a bucket that has lived for years holds: the old system's junk and a half-copied download.
            others += ["backups/mindcare/README", "backups/mindcare/backup-sql-mindcare-latest.sql", "backups/mindcare/.DS_Store",
                       "backups/mindcare/backup-sql-mindcare-2020-01-01-000000.sql.partial"]
            for key in dumps + others { try await client.putObject(key: key, body: ByteBuffer(string: "bytes of \(key)")) }

            var environment = services.environment
            environment["AWS_STORAGE_BUCKET_NAME"] = bucket
            let (status, output) = try await TestProcess.tenantBackup(["prune", "--tenant", "mindcare", "--log-level", "error"], environment)
            #expect(status == .exited(0), "\(output)")
            let after = try await allKeys(bucket)
            #expect(after == Set(dumps + others), "\(output)")
            for key in others { #expect(!output.contains(key), "a non-backup key appears in the plan: \(key)") }

            // The planner sees the five dumps and nothing else.
            let outcome = try await RetentionRunner(
                settings: RetentionSettings(), client: client, prefix: "", logger: .quiet
            ).run(tenant: "mindcare", trigger: .manual, dryRun: true)
            #expect(Set(outcome.plan.decisions.map(\.candidate.key)) == Set(dumps))
        }
    }

    @Test func aStaleBackupBlocksAManualPruneUnlessForced() async throws {
        try await TestBucket.with(services) { bucket in
            try await seed(bucket, tenant: "t", hoursAgo: [100, 200, 300])
            let outcome = try await runner(bucket, settings: RetentionSettings(maxDeleteFraction: 1)).run(tenant: "t", trigger: .manual)
            guard case .refused(.newestTooOld(_, let age, let limit)) = outcome.status else { Issue.record("not refused: \(outcome.status)"); return }
            #expect(age > limit)
        }
    }

    @Test func staleIncompleteUploadsOfTheTenantAreAborted() async throws {
        try await TestBucket.with(services) { bucket in
            let client = services.s3Client(bucket: bucket)
            try await seed(bucket, tenant: "t", hoursAgo: [1])
            _ = try await client.createMultipartUpload(key: "backups/t/backup-sql-t-2026-11-28-020000.sql.zst")
            _ = try await client.createMultipartUpload(key: "backups/t2/backup-sql-t2-2026-11-28-020000.sql.zst")
            // The runner's clock is a day ahead of the uploads' real start, beyond the one-hour grace.
            let settings = RetentionSettings(maxDeleteFraction: 1, incompleteUploadGrace: .seconds(3600))
            let later = RetentionRunner(
                settings: settings, client: client, prefix: "", logger: .quiet,
                now: { Date().addingTimeInterval(86400) })
            let outcome = try await later.run(tenant: "t", trigger: .manual, force: true)
            #expect(outcome.abortedUploads == ["backups/t/backup-sql-t-2026-11-28-020000.sql.zst"])
            #expect(try await client.listMultipartUploads(prefix: "").map(\.key) == ["backups/t2/backup-sql-t2-2026-11-28-020000.sql.zst"])
        }
    }

    @Test func theCommandLinePrintsThePlanAndDeletesNothingInADryRun() async throws {
        try await TestBucket.with(services) { bucket in
            // Dated from the real clock, so the freshness brake passes.
            let client = services.s3Client(bucket: bucket)
            var keys: [String] = []
            for day in 0..<20 {
                let key = BackupKey(prefix: "", area: .tenant, schema: "bienestar", timestamp: Date().addingTimeInterval(-Double(day) * 86400 - 60), suffix: ".sql.zst")
                keys.append(key.key)
                try await client.putObject(key: key.key, body: ByteBuffer(string: "x"))
            }
            var environment = services.environment
            environment["AWS_STORAGE_BUCKET_NAME"] = bucket
            let (status, output) = try await TestProcess.tenantBackup(
                ["prune", "--tenant", "bienestar", "--dry-run", "--log-level", "error"], environment)
            #expect(status == .exited(0), "\(output)")
            // A day past the 7 dailies that is neither the newest of its ISO week (a Sunday, UTC) nor of its month,
            // nor the oldest: deleted whatever weekday the test runs on (a fixed 10 days ago was a kept Sunday on
            // Wednesdays).
            var calendar = Calendar(identifier: .iso8601)
            calendar.timeZone = TimeZone(identifier: "UTC")!
            let doomed = try #require((8..<19).first { day in
                let date = Date().addingTimeInterval(-Double(day) * 86400 - 60)
                let next = date.addingTimeInterval(86400)
                return calendar.component(.weekday, from: date) != 1 && calendar.component(.month, from: next) == calendar.component(.month, from: date)
            })
            #expect(output.contains("would delete \(keys[doomed])"), "\(output)")
            #expect(output.contains("keep   \(keys[0])  (last,daily,weekly,monthly,newest)"), "\(output)")
            #expect(try await allKeys(bucket) == Set(keys))

            let (refusedStatus, refusedOutput) = try await TestProcess.tenantBackup(
                ["prune", "--tenant", "bienestar", "--log-level", "error"], environment.merging(["TENANT_BACKUP_CONFIG": try retentionConfig("max_delete_fraction: 0.1")]) { $1 })
            #expect(refusedStatus == .exited(1))
            #expect(refusedOutput.contains("refused, nothing deleted"), "\(refusedOutput)")
            // Found by the adversarial trial: a refused plan's lines said "delete".
            #expect(refusedOutput.contains("would delete \(keys[doomed])") && !refusedOutput.contains("  delete "), "\(refusedOutput)")
            #expect(try await allKeys(bucket) == Set(keys))
        }
    }

    /// Also issue 10: `prune --tenant` took any name, as backup does not.
    @Test func pruneRefusesATenantNameThatIsNeitherInTheDatabaseNorInTheBucket() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                try await seed(bucket, tenant: "gone_clinic", hoursAgo: [1, 30])
                var environment = services.environment
                environment["PGDATABASE"] = database.name
                environment["AWS_STORAGE_BUCKET_NAME"] = bucket
                let (typoStatus, typoOutput) = try await TestProcess.tenantBackup(
                    ["prune", "--tenant", "bienstar", "--dry-run", "--log-level", "error"], environment)
                #expect(typoStatus == .exited(1))
                #expect(typoOutput.contains("no such tenant: bienstar"), "\(typoOutput)")
                // A clinic removed from the database, with backups left in the bucket, can still be pruned.
                let (goneStatus, goneOutput) = try await TestProcess.tenantBackup(
                    ["prune", "--tenant", "gone_clinic", "--dry-run", "--force", "--log-level", "error"], environment)
                #expect(goneStatus == .exited(0), "\(goneOutput)")
            }
        }
    }

    /// Issue 10 (acceptance 3): shared dumps were never pruned. After several cycles and a prune, every shared
    /// dump left is named by a kept tenant manifest or is the newest, and every one a kept manifest names exists.
    @Test func afterSeveralCyclesAndAPruneEverySharedDumpLeftIsNamedOrTheNewestAndNoneNamedIsGone() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                var environment = services.environment
                environment["PGDATABASE"] = database.name
                let settings = Settings(s3: services.s3Settings(bucket: bucket))
                let quiet = Logger.quiet
                let cycle = BackupCycle(settings: settings, environment: environment, logger: quiet)
                // Cycles 1-3 back up both clinics; cycle 4 only bienestar (mindcare's newest stays in cycle 3).
                for round in 1...4 {
                    let report = try await cycle.run(tenants: round < 4 ? ["bienestar", "mindcare"] : ["bienestar"])
                    #expect(report.allSucceeded, "\(report.failures)")
                }
                let client = services.s3Client(bucket: bucket)
                let junk = ["shared/public/notes.txt", "shared/public/backup-sql-public-2020-01-01-000000.sql.zst.sha256"]
                for key in junk { try await client.putObject(key: key, body: ByteBuffer(string: "not a dump")) }
                let sharedBefore = try await client.listKeys(prefix: "shared/").compactMap { BackupKey.parse($0, prefix: "") }
                #expect(sharedBefore.count == 4)

                // Forty days later, keep one backup per tenant.
                let later: @Sendable () -> Date = { Date().addingTimeInterval(40 * 86400) }
                let policy = RetentionPolicy(keepLast: 1, keepDaily: 0, keepWeekly: 0, keepMonthly: 0)
                let retention = RetentionSettings(policy: policy, maxDeleteFraction: 1)
                for tenant in ["bienestar", "mindcare"] {
                    let outcome = try await RetentionRunner(settings: retention, client: client, prefix: "", logger: quiet, now: later)
                        .run(tenant: tenant, trigger: .manual, force: true)
                    #expect(outcome.status == .applied)
                }
                // The default fraction brake (50 %) lets 2 of 4 go.
                let outcomes = try await RetentionRunner(settings: RetentionSettings(), client: client, prefix: "", logger: quiet, now: later).runSharedSchemas()
                #expect(outcomes.map(\.status) == [.applied])

                let keptTenantBackups = try await client.listKeys(prefix: "backups/").compactMap { BackupKey.parse($0, prefix: "") }
                #expect(keptTenantBackups.count == 2)
                var named: Set<String> = []
                for backup in keptTenantBackups {
                    let manifest = try BackupManifest.decode(Data(try await client.getObject(key: backup.manifestKey).readableBytesView))
                    named.formUnion(manifest.sharedBackups)
                }
                let allShared = try await client.listKeys(prefix: "shared/")
                let sharedLeft = allShared.compactMap { BackupKey.parse($0, prefix: "") }
                let newest = try #require(sharedBefore.max { $0.timestamp < $1.timestamp })
                #expect(named.count == 2, "mindcare's newest names cycle 3's dump, bienestar's cycle 4's")
                for dump in sharedLeft { #expect(named.contains(dump.key) || dump == newest, "\(dump.key) is neither named nor the newest") }
                for key in named { #expect(sharedLeft.contains { $0.key == key }, "\(key) is named by a kept manifest but gone") }
                #expect(sharedLeft.count == 2)
                for key in junk { #expect(allShared.contains(key), "\(key) is not a dump and must be untouched") }
                for dump in sharedLeft { #expect(allShared.contains(dump.manifestKey)) }
                for dump in sharedBefore where !sharedLeft.contains(dump) { #expect(!allShared.contains(dump.manifestKey)) }
            }
        }
    }

    func retentionConfig(_ line: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tb-retention-\(UUID().uuidString).yaml").path
        try "retention:\n  \(line)\n".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func aCycleWithRetentionPrunesOnlyTenantsWhoseBackupSucceeded() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                // Two tenants with a month of old daily backups each (dated from the real clock).
                let client = services.s3Client(bucket: bucket)
                for tenant in ["bienestar", "mindcare"] {
                    for day in 1...40 {
                        let key = BackupKey(prefix: "", area: .tenant, schema: tenant, timestamp: Date().addingTimeInterval(-Double(day) * 86400), suffix: ".sql.zst")
                        try await client.putObject(key: key.key, body: ByteBuffer(string: "old"))
                    }
                }
                var environment = services.environment
                environment["PGDATABASE"] = database.name
                var settings = Settings(s3: services.s3Settings(bucket: bucket))
                settings.retention.maxDeleteFraction = 1
                // mindcare's dump fails: a pg_dump that exits 1 for that schema only.
                let fake = FileManager.default.temporaryDirectory.appendingPathComponent("pg_dump-\(UUID().uuidString)").path
                let real = try #require(PgDumpLocator.installedMajors().max().map { "\(PgDumpLocator.debianRoot)/\($0)/bin/pg_dump" })
                try """
                    #!/bin/bash
                    for argument in "$@"; do [[ "$argument" == '--schema="mindcare"' ]] && { echo 'pg_dump: error: injected' >&2; exit 1; }; done
                    exec \(real) "$@"
                    """.write(toFile: fake, atomically: true, encoding: .utf8)
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake)
                defer { try? FileManager.default.removeItem(atPath: fake) }
                settings.postgres.pgDumpPath = fake
                var cycle = BackupCycle(settings: settings, environment: environment, logger: .quiet)
                cycle.applyRetention = true
                let report = try await cycle.run(tenants: ["bienestar", "mindcare"], includeShared: false)

                let bienestar = try #require(report.tenants.first { $0.schema == .tenant("bienestar") })
                #expect(bienestar.succeeded)
                let pruned = try #require(try bienestar.retention?.get())
                #expect(pruned.status == .applied)
                #expect(!pruned.plan.deleted.isEmpty)
                #expect(try await client.listObjects(prefix: "backups/bienestar/").collect().count < 41)

                let mindcare = try #require(report.tenants.first { $0.schema == .tenant("mindcare") })
                #expect(!mindcare.succeeded)
                guard case .refused = try #require(try mindcare.retention?.get()).status else {
                    Issue.record("retention ran after a failed backup")
                    return
                }
                #expect(try await client.listObjects(prefix: "backups/mindcare/").collect().count == 40)
            }
        }
    }
}
