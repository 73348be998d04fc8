import Foundation
import NIOCore
import Subprocess
import TenantBackup
import TenantBackupTesting
import Testing

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Issue 12: list, download, presign, delete and audit with the built executable, against the real database
/// and the bucket behind the verifying proxy. `bienestar2` lives beside `bienestar` (a prefix twin) in the
/// bucket only, as a clinic removed from the database would.
@Suite struct AccessCommandTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    /// The bucket as a scenario holds it: two backups of bienestar (made by `backup`), one of mindcare, the
    /// shared dump, and a backup (with manifest) of bienestar2 put directly.
    struct Scenario {
        let database: TestDatabase
        let bucket: String
        let environment: [String: String]
        /// bienestar's backups, oldest first.
        let bienestar: [String]
        let twin: String
        let shared: String
    }

    func withScenario(_ body: (Scenario) async throws -> Void) async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let environment = services.commandEnvironment(database: database, bucket: bucket)
                for arguments in [["backup"], ["backup", "--tenant", "bienestar", "--no-shared"]] {
                    let (status, output) = try await Self.run(arguments, environment)
                    try #require(status == .exited(0), "\(arguments): \(output)")
                }
                let client = services.s3Client(bucket: bucket)
                let keys = try await client.listKeys(prefix: "")
                let bienestar = keys.filter { $0.hasPrefix("backups/bienestar/") && !$0.hasSuffix(".manifest.json") }.sorted()
                try #require(bienestar.count == 2, "\(keys)")
                let shared = try #require(keys.first { $0.hasPrefix("shared/public/") && !$0.hasSuffix(".manifest.json") })
                let twin = BackupKey(prefix: "", schema: .tenant("bienestar2"), timestamp: Date().addingTimeInterval(-3600), suffix: ".sql.zst")
                try await client.putObject(key: twin.key, body: ByteBuffer(string: "bienestar2's private rows"))
                try await client.putObject(key: twin.manifestKey, body: ByteBuffer(string: "{}"))
                try await body(Scenario(database: database, bucket: bucket, environment: environment, bienestar: bienestar, twin: twin.key, shared: shared))
            }
        }
    }

    static func run(_ arguments: [String], _ environment: [String: String]) async throws -> (status: TerminationStatus, output: String) {
        try await TestProcess.tenantBackup(arguments, environment)
    }

    static func runBinary(_ arguments: [String], _ environment: [String: String]) async throws -> (status: TerminationStatus, stdout: [UInt8], stderr: String) {
        try await TestProcess.tenantBackupBytes(arguments, environment)
    }

    static func json(_ text: String) throws -> [String: Any] {
        let start = try #require(text.firstIndex(of: "{"))
        let end = try #require(text.lastIndex(of: "}"))
        return try #require(try JSONSerialization.jsonObject(with: Data(text[start...end].utf8)) as? [String: Any])
    }

    func objects(_ bucket: String) async throws -> [String: Int64] {
        Dictionary(uniqueKeysWithValues: try await services.s3Client(bucket: bucket).list(prefix: "", limit: nil).map { ($0.key, $0.size) })
    }

    // MARK: - Isolation

    @Test func everyCommandRefusesWhatIsNotTheTenantsOwnBackupAndTouchesNothing() async throws {
        try await withScenario { scenario in
            let own = scenario.bienestar[1]
            let ownFile = String(own.split(separator: "/").last!)
            let twinFile = String(scenario.twin.split(separator: "/").last!)
            // One of each kind per command: every other form, under every shape of the prefix, is
            // ResolveKeyTests' table (the same function refuses them all, before any request).
            let refused = [
                twinFile,  // another tenant's backup by its file name: the prefix twin
                "backups/bienestar/\(ownFile.replacingOccurrences(of: "bienestar-", with: "bienestar%2F..%2Fbienestar2-"))",
            ]
            let before = try await objects(scenario.bucket).filter { !$0.key.hasPrefix("audit/") }
            let seenBefore = try await services.proxy.requests(matching: "^/\(scenario.bucket)/").count
            for key in refused {
                let target = TestProcess.temporaryFile("refused")
                for arguments in [
                    ["download", "--tenant", "bienestar", key, "-o", target], ["presign", "--tenant", "bienestar", key],
                    ["delete", "--tenant", "bienestar", key, "--force"], ["verify", "--tenant", "bienestar", key, "--restore"],
                    ["restore", "--tenant", "bienestar", key, "--target-database", "dbname=\(scenario.database.name)_never", "--create-database", "--with-shared-data"],
                ] {
                    let (status, stdout, stderr) = try await Self.runBinary(arguments, scenario.environment)
                    #expect(status == .exited(1), "\(arguments) was not refused: \(stderr)")
                    #expect(stdout.isEmpty, "\(arguments) printed \(String(decoding: stdout, as: UTF8.self))")
                    #expect(stderr.contains("tenant bienestar:"), "\(arguments): \(stderr)")
                    #expect(stderr.contains("not a backup key") || stderr.contains("outside this tenant's folder"), "\(arguments): \(stderr)")
                }
                #expect(!FileManager.default.fileExists(atPath: target))
                #expect(try scenario.database.connect().query(
                    "SELECT 1 FROM pg_database WHERE datname = $1", ["\(scenario.database.name)_never"], purpose: "test").rows.isEmpty)
            }
            // Nothing was read or deleted: the only requests since are the audit records of the refusals.
            let seen = try await services.proxy.requests(matching: "^/\(scenario.bucket)/").dropFirst(seenBefore)
            let notAudit = seen.filter { !$0.path.hasPrefix("/\(scenario.bucket)/audit/bienestar/") }
            #expect(notAudit.isEmpty, "\(notAudit.map { "\($0.method) \($0.path)" })")
            #expect(seen.allSatisfy { $0.method == "PUT" })
            let after = try await objects(scenario.bucket).filter { !$0.key.hasPrefix("audit/") }
            #expect(after == before)
            // The twin's tenant sees none of this in its own trail, and bienestar's listing has none of the twin's.
            let (_, twinAudit) = try await Self.run(["audit", "--tenant", "bienestar2", "--json"], scenario.environment)
            #expect((try Self.json(twinAudit)["records"] as? [Any])?.isEmpty == true, "\(twinAudit)")
            let (status, listed) = try await Self.run(["list", "--tenant", "bienestar", "--json"], scenario.environment)
            #expect(status == .exited(0), "\(listed)")
            let keys = (try Self.json(listed)["backups"] as? [[String: Any]] ?? []).compactMap { $0["s3_key"] as? String }
            #expect(keys == scenario.bienestar.reversed())
        }
    }

    // MARK: - list

    @Test func listPrintsTheOldAPIsShapeFieldByField() async throws {
        try await withScenario { scenario in
            let (status, output) = try await Self.run(["list", "--tenant", "bienestar", "--json"], scenario.environment)
            #expect(status == .exited(0), "\(output)")
            let document = try Self.json(output)
            #expect(Set(document.keys) == ["count", "schema", "backups"])
            #expect(document["count"] as? Int == 2)
            #expect(document["schema"] as? String == "bienestar")
            let backups = try #require(document["backups"] as? [[String: Any]])
            let client = services.s3Client(bucket: scenario.bucket)
            for (entry, key) in zip(backups, scenario.bienestar.reversed()) {
                #expect(Set(entry.keys) == ["filename", "s3_key", "size", "last_modified", "storage_class", "url", "state"])
                #expect(entry["state"] as? String == "verified")
                #expect(entry["s3_key"] as? String == key)
                #expect(entry["filename"] as? String == String(key.split(separator: "/").last!))
                #expect(entry["size"] as? Int == Int(try await client.headObject(key: key).size))
                let modified = try #require(entry["last_modified"] as? String)
                #expect(modified.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression) != nil, "\(modified)")
                #expect(entry["storage_class"] as? String == "STANDARD")
                let url = try #require(entry["url"] as? String)
                #expect(url.hasSuffix("/\(scenario.bucket)/\(key)") && !url.contains("Signature"), "\(url)")
            }
            // The text form names the retention rule that keeps each one.
            let (_, text) = try await Self.run(["list", "--tenant", "bienestar"], scenario.environment)
            #expect(text.contains("manifest matches (key, size)") && text.contains("kept: "), "\(text)")
        }
    }

    @Test func listWithoutATenantShowsEveryClinicAndTheFoldersOfGoneOnes() async throws {
        try await withScenario { scenario in
            let (status, output) = try await Self.run(["list", "--json"], scenario.environment)
            #expect(status == .exited(0), "\(output)")
            let tenants = try #require(try Self.json(output)["tenants"] as? [[String: Any]])
            func tenant(_ name: String) -> [String: Any]? { tenants.first { $0["tenant"] as? String == name } }
            #expect(tenants.compactMap { $0["tenant"] as? String } == ["Clínica \"Sur\"", "bienestar", "bienestar2", "mindcare"])
            #expect(tenant("bienestar")?["backups"] as? Int == 2)
            #expect(tenant("bienestar")?["stale"] as? Bool == false)
            #expect(tenant("bienestar2")?["in_database"] as? Bool == false)
            #expect(tenant("mindcare")?["in_bucket"] as? Bool == true)
            for entry in tenants {
                #expect(Set(entry.keys) == ["tenant", "backups", "newest", "total_bytes", "stale", "in_database", "in_bucket"])
                #expect(entry["backups"] is Int && entry["total_bytes"] is Int && entry["stale"] is Bool && entry["in_database"] is Bool)
                #expect((entry["newest"] as? String)?.hasPrefix("backups/") == true || entry["newest"] is NSNull)
            }
            #expect((tenant("bienestar")?["total_bytes"] as? Int ?? 0) > 0)
            let (_, text) = try await Self.run(["list"], scenario.environment)
            #expect(text.contains("bienestar2: 1 backup(s)") && text.contains("no such tenant in the database"), "\(text)")
            // A name neither the database nor the bucket knows.
            let (unknown, message) = try await Self.run(["list", "--tenant", "bienestar3"], scenario.environment)
            #expect(unknown == .exited(1) && message.contains("tenant bienestar3: no tenant of this name"), "\(message)")
        }
    }

    // MARK: - download

    @Test func downloadVerifiesDecompressesStreamsAndLeavesNoFileWhenCorrupt() async throws {
        try await withScenario { scenario in
            let client = services.s3Client(bucket: scenario.bucket)
            let key = scenario.bienestar[1]
            let stored = Array(buffer: try await client.getObject(key: key))
            let target = TestProcess.temporaryFile("latest.sql.zst")
            defer { try? FileManager.default.removeItem(atPath: target) }
            let (status, output) = try await Self.run(["download", "--tenant", "bienestar", "--latest", "-o", target], scenario.environment)
            #expect(status == .exited(0), "\(output)")
            #expect(output.contains("verified against its signed manifest"), "\(output)")
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: target))) == stored)

            // --decompress equals zstd -dc of the object; -o - streams to stdout.
            let plain = TestProcess.temporaryFile("plain.sql")
            defer { try? FileManager.default.removeItem(atPath: plain) }
            let (decompressed, message) = try await Self.run(["download", "--tenant", "bienestar", key, "--decompress", "-o", plain], scenario.environment)
            #expect(decompressed == .exited(0), "\(message)")
            let zstd = try await Subprocess.run(.name("zstd"), arguments: ["-dc", target], output: .bytes(limit: 64 << 20), error: .discarded)
            #expect(zstd.terminationStatus == .exited(0))
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: plain))) == zstd.standardOutput)
            #expect(String(decoding: zstd.standardOutput, as: UTF8.self).contains("CREATE TABLE bienestar.patients"))
            let (streamed, stdout, _) = try await Self.runBinary(["download", "--tenant", "bienestar", String(key.split(separator: "/").last!), "-o", "-"], scenario.environment)
            #expect(streamed == .exited(0))
            #expect(stdout == stored)

            // One byte flipped midway (a direct PUT): checksum error, no file, no temporary file.
            var corrupt = stored
            corrupt[corrupt.count / 2] ^= 0xFF
            try await client.deleteObject(key: key)
            try await client.putObject(key: key, body: ByteBuffer(bytes: corrupt))
            let again = TestProcess.temporaryFile("corrupt.sql.zst")
            let (failed, error) = try await Self.run(["download", "--tenant", "bienestar", key, "-o", again], scenario.environment)
            #expect(failed == .exited(1))
            #expect(error.contains("tenant bienestar:") && error.contains("failed verification") && error.contains("SHA-256"), "\(error)")
            #expect(!FileManager.default.fileExists(atPath: again))
            let directory = URL(fileURLWithPath: again).deletingLastPathComponent().path
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".partial-") && $0.contains("corrupt.sql.zst") }
            #expect(leftovers.isEmpty, "\(leftovers)")
            // An existing file is kept unless --force.
            let (exists, refusal) = try await Self.run(["download", "--tenant", "bienestar", scenario.bienestar[0], "-o", target], scenario.environment)
            #expect(exists == .exited(1) && refusal.contains("exists"), "\(refusal)")
            #expect(Array(try Data(contentsOf: URL(fileURLWithPath: target))) == stored)
        }
    }

    @Test func aStoppedDownloadLeavesNoFile() async throws {
        try await withScenario { scenario in
            // A backup of 2 MiB, read at 200 KiB/s through the proxy: SIGTERM lands mid-download.
            let client = services.s3Client(bucket: scenario.bucket)
            let key = BackupKey(prefix: "", schema: .tenant("bienestar"), timestamp: Date().addingTimeInterval(-7200), suffix: ".sql.zst")
            let bytes = (0..<(2 << 20)).map { _ in UInt8.random(in: 0...255) }
            try await client.putObject(key: key.key, body: ByteBuffer(bytes: bytes))
            try await services.proxy.inject([
                .init(method: "GET", path: "^/\(scenario.bucket)/\(key.key)$", action: .bandwidth, times: 0, bytesPerSecond: 200 << 10)
            ])
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tb-stop-\(UUID().uuidString.prefix(8))").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let download = try DaemonProcess(["download", "--tenant", "bienestar", key.key, "-o", "\(directory)/stopped.sql.zst"], environment: scenario.environment)
            try await Task.sleep(for: .seconds(2))
            #expect(download.isRunning, "the download ended before the stop: \(download.output)")
            download.signal(SIGTERM)
            #expect(await download.waitForExit(timeout: .seconds(30)) == 143, "\(download.output)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty, "\(download.output)")
            #expect(download.output.contains("stopped"), "\(download.output)")
        }
    }

    // MARK: - presign

    @Test func aPresignedURLFetchesTheObjectAndExpires() async throws {
        try await withScenario { scenario in
            let (status, output) = try await Self.run(["presign", "--tenant", "bienestar", "--latest", "--json"], scenario.environment)
            #expect(status == .exited(0), "\(output)")
            let document = try Self.json(output)
            #expect(Set(document.keys) == ["download_url", "s3_key", "expires_in_seconds", "filename"])
            #expect(document["s3_key"] as? String == scenario.bienestar[1])
            #expect(document["expires_in_seconds"] as? Int == 3600)
            #expect(document["filename"] as? String == String(scenario.bienestar[1].split(separator: "/").last!))
            let url = try #require(document["download_url"] as? String)
            let stored = Array(buffer: try await services.s3Client(bucket: scenario.bucket).getObject(key: scenario.bienestar[1]))
            let fetched = try await Subprocess.run(.name("curl"), arguments: ["-sS", "--fail", url], output: .bytes(limit: 64 << 20), error: .string(limit: 4096))
            #expect(fetched.terminationStatus == .exited(0), "\(fetched.standardError)")
            #expect(fetched.standardOutput == stored)

            let (_, short) = try await Self.run(["presign", "--tenant", "bienestar", scenario.bienestar[0], "--expires", "2"], scenario.environment)
            let shortURL = try #require(short.split(separator: "\n").first { $0.hasPrefix("http") }).description
            try await Task.sleep(for: .seconds(3))
            let expired = try await Subprocess.run(.name("curl"), arguments: ["-sS", "-o", "/dev/null", "-w", "%{http_code}", shortURL], output: .string(limit: 64), error: .discarded)
            #expect(expired.standardOutput == "403", "\(expired.standardOutput)")

            for expiry in ["0", "-1", "604801", "abc", "1.5"] {
                let (refused, message) = try await Self.run(["presign", "--tenant", "bienestar", "--latest", "--expires", expiry], scenario.environment)
                #expect(refused == .exited(1), "--expires \(expiry): \(message)")
                #expect(message.contains("tenant bienestar: invalid expiry"), "--expires \(expiry): \(message)")
                #expect(!message.contains("http"), "--expires \(expiry) printed a URL: \(message)")
            }
        }
    }

    /// A bucket writer (straight to moto) replaces bienestar's newest backup with other bytes of the same
    /// size, keeping its signed manifest, and copies the older one (with its manifest) under a new key:
    /// presign reads each object before signing and refuses both, naming the mismatch; no URL is printed.
    @Test func presignNeverSignsAURLForAnObjectItsManifestDoesNotDescribe() async throws {
        try await withScenario { scenario in
            let attacker = try services.attackerClient(bucket: scenario.bucket)
            let newest = scenario.bienestar[1]
            let size = try await attacker.headObject(key: newest).size
            try await attacker.deleteObject(key: newest)
            try await attacker.putObject(key: newest, body: ByteBuffer(bytes: [UInt8](repeating: 0x41, count: Int(size))))
            let (swapped, swappedOutput) = try await Self.run(["presign", "--tenant", "bienestar", newest], scenario.environment)
            #expect(swapped == .exited(1) && !swappedOutput.contains("X-Amz-Signature"), "\(swappedOutput)")
            #expect(swappedOutput.contains("tenant bienestar") && swappedOutput.contains("SHA-256"), "\(swappedOutput)")

            let older = scenario.bienestar[0]
            let parsed = try #require(BackupKey.parse(older, prefix: ""))
            // A second before the oldest: a free key (a second after may be the newest's, made in the next second).
            let copy = BackupKey(prefix: "", area: .tenant, schema: "bienestar", timestamp: parsed.timestamp.addingTimeInterval(-1), format: parsed.format).key
            try await attacker.putObject(key: copy, body: try await attacker.getObject(key: older))
            try await attacker.putObject(key: copy + ".manifest.json", body: try await attacker.getObject(key: older + ".manifest.json"))
            let (copied, copiedOutput) = try await Self.run(["presign", "--tenant", "bienestar", copy], scenario.environment)
            #expect(copied == .exited(1) && !copiedOutput.contains("X-Amz-Signature"), "\(copiedOutput)")
            // The untouched older backup is still presigned.
            let (good, goodOutput) = try await Self.run(["presign", "--tenant", "bienestar", older], scenario.environment)
            #expect(good == .exited(0) && goodOutput.contains("X-Amz-Signature"), "\(goodOutput)")
        }
    }

    /// A bucket writer puts twelve objects newer than bienestar's newest signed backup, each holding mindcare's
    /// dump with mindcare's manifest rewritten for its key and unsigned (the adversarial run beat a search of
    /// eight): `download --latest` still returns the signed backup, byte for byte. One of the plants downloaded
    /// by its key is said to match an UNSIGNED manifest, never "verified".
    @Test func latestPassesOverAnyNumberOfPlantedObjects() async throws {
        try await withScenario { scenario in
            let attacker = try services.attackerClient(bucket: scenario.bucket)
            let newest = scenario.bienestar[1]
            let keys = try await attacker.listKeys(prefix: "backups/mindcare/")
            let mindcare = try #require(keys.first { !$0.hasSuffix(".manifest.json") })
            let body = try await attacker.getObject(key: mindcare)
            let manifest = try BackupManifest.decode(Data(buffer: try await attacker.getObject(key: mindcare + ".manifest.json")))
            let parsed = try #require(BackupKey.parse(newest, prefix: ""))
            var plants: [String] = []
            for second in 1...12 {
                let plant = BackupKey(prefix: "", area: .tenant, schema: "bienestar", timestamp: parsed.timestamp.addingTimeInterval(Double(second)), format: parsed.format).key
                var forged = manifest
                forged.key = plant
                forged.schema = "bienestar"
                forged.signature = nil
                try await attacker.putObject(key: plant, body: body)
                try await attacker.putObject(key: plant + ".manifest.json", body: ByteBuffer(data: try forged.encoded()))
                plants.append(plant)
            }
            let file = TestProcess.temporaryFile("latest")
            defer { try? FileManager.default.removeItem(atPath: file) }
            let (status, output) = try await Self.run(["download", "--tenant", "bienestar", "--latest", "-o", file], scenario.environment)
            #expect(status == .exited(0), "\(output)")
            #expect(output.contains("\(newest):") && output.contains("verified against its signed manifest"), "\(output)")
            let fetched = try Data(contentsOf: URL(fileURLWithPath: file))
            #expect(fetched == Data(buffer: try await attacker.getObject(key: newest)), "--latest did not return the newest signed backup")

            let (planted, plantedOutput) = try await Self.run(["download", "--tenant", "bienestar", plants[0], "-o", file, "--force"], scenario.environment)
            #expect(planted == .exited(0), "\(plantedOutput)")
            #expect(plantedOutput.contains("NO trusted key signed") && !plantedOutput.contains("verified against"), "\(plantedOutput)")
        }
    }

    /// The store fails to answer for the newest signed backup's manifest while a newer object without one sits
    /// in front of it (the adversarial run: prune then kept the object and the older backup, and deleted the
    /// newest good one). Unanswered is not unsigned: prune and delete stop for the tenant, nothing is deleted.
    @Test func aManifestTheStoreDoesNotAnswerForStopsTheTenantsDeletions() async throws {
        try await withScenario { scenario in
            let attacker = try services.attackerClient(bucket: scenario.bucket)
            let (older, newest) = (scenario.bienestar[0], scenario.bienestar[1])
            let parsed = try #require(BackupKey.parse(newest, prefix: ""))
            let junk = BackupKey(prefix: "", area: .tenant, schema: "bienestar", timestamp: parsed.timestamp.addingTimeInterval(5), format: parsed.format).key
            try await attacker.putObject(key: junk, body: ByteBuffer(string: "no manifest beside me"))
            let before = Set(try await attacker.listKeys(prefix: "backups/bienestar/"))
            let manifestPath = "^/\(scenario.bucket)/" + NSRegularExpression.escapedPattern(for: newest + ".manifest.json") + "$"
            try await services.proxy.inject([.init(method: "GET", path: manifestPath, action: .error, times: 0, status: 500, code: "InternalError")])
            // The daemon's cycle too (a schedule of every minute: the scenario's backups are of an earlier slot):
            // it backs the tenant up, then its retention fails, and `run --once` says so with its exit status.
            var everyMinute = scenario.environment
            everyMinute["TENANT_BACKUP_SCHEDULE"] = "* * * * *"
            everyMinute["TENANT_BACKUP_INCLUDE"] = "bienestar"
            everyMinute["TENANT_BACKUP_METRICS_LISTEN"] = "off"
            for arguments in [["prune", "--tenant", "bienestar"], ["prune", "--tenant", "bienestar", "--force"], ["delete", "--tenant", "bienestar", older], ["run", "--once"]] {
                if arguments[0] == "run" {
                    // Into the next minute's slot, so the cycle backs the tenant up rather than skip it as done.
                    let seconds = 60 - Date().timeIntervalSince1970.truncatingRemainder(dividingBy: 60)
                    if seconds < 59 { try await Task.sleep(for: .seconds(seconds + 1)) }
                }
                let (status, output) = try await Self.run(arguments, arguments[0] == "run" ? everyMinute : scenario.environment)
                #expect(status == .exited(1), "\(arguments.joined(separator: " ")): \(output)")
                #expect(output.contains(newest + ".manifest.json"), "\(arguments.joined(separator: " ")): \(output)")
                #expect(!output.contains("delete backups/bienestar"), "\(arguments.joined(separator: " ")): \(output)")
            }
            #expect(before.isSubset(of: Set(try await attacker.listKeys(prefix: "backups/bienestar/"))))
        }
    }

    // MARK: - delete

    @Test func deleteKeepsTheNewestUnlessForcedAndWaitsForNoLock() async throws {
        try await withScenario { scenario in
            let client = services.s3Client(bucket: scenario.bucket)
            let (refused, message) = try await Self.run(["delete", "--tenant", "bienestar", scenario.bienestar[1]], scenario.environment)
            #expect(refused == .exited(1))
            #expect(message.contains("newest") && message.contains("pass --force"), "\(message)")
            #expect(try await client.headObject(key: scenario.bienestar[1]).size > 0)

            // Another session holds the tenant's lock (a backup on another host): refused, nothing deleted.
            let holder = try scenario.database.connect()
            _ = try holder.query(
                "SELECT pg_advisory_lock($1::int4, $2::int4)", [String(TenantLock.projectKey), String(TenantLock.tenantKey("bienestar"))], purpose: "test")
            let (busy, busyMessage) = try await Self.run(["delete", "--tenant", "bienestar", scenario.bienestar[0]], scenario.environment)
            #expect(busy == .exited(1) && busyMessage.contains("another tenant-backup"), "\(busyMessage)")
            #expect(try await client.headObject(key: scenario.bienestar[0]).size > 0)
            _ = try holder.query("SELECT pg_advisory_unlock_all()", purpose: "test")

            let (deleted, output) = try await Self.run(["delete", "--tenant", "bienestar", scenario.bienestar[0]], scenario.environment)
            #expect(deleted == .exited(0), "\(output)")
            let left = try await client.listKeys(prefix: "backups/bienestar/")
            #expect(!left.contains(scenario.bienestar[0]) && !left.contains(scenario.bienestar[0] + ".manifest.json"), "\(left)")
            #expect(left.contains(scenario.bienestar[1]))
        }
    }

    // MARK: - audit

    @Test func theAuditTrailHoldsExactlyTheTenantsAccessesNewestFirst() async throws {
        try await withScenario { scenario in
            let target = TestProcess.temporaryFile("audited.sql.zst")
            defer { try? FileManager.default.removeItem(atPath: target) }
            let steps: [[String]] = [
                ["list", "--tenant", "bienestar"],
                ["download", "--tenant", "bienestar", scenario.bienestar[1], "-o", target],
                ["presign", "--tenant", "bienestar", scenario.bienestar[1]],
                ["delete", "--tenant", "bienestar", scenario.bienestar[0]],
            ]
            for step in steps {
                let (status, output) = try await Self.run(step, scenario.environment)
                try #require(status == .exited(0), "\(step): \(output)")
            }
            let (status, output) = try await Self.run(["audit", "--tenant", "bienestar", "--json"], scenario.environment)
            #expect(status == .exited(0), "\(output)")
            let records = try #require(try Self.json(output)["records"] as? [[String: Any]])
            // The scenario's two backups of bienestar came first, by `backup`; then the scripted accesses. A download
            // to a file is recorded as started before the object is read, and as ok once the file is verified.
            #expect(records.compactMap { $0["action"] as? String } == ["delete", "presign", "download", "download", "list", "backup", "backup"])
            #expect(records.compactMap { $0["outcome"] as? String } == ["ok", "ok", "ok", "started", "ok", "ok", "ok"])
            #expect(records.compactMap { $0["key"] as? String } == [scenario.bienestar[0], scenario.bienestar[1], scenario.bienestar[1], scenario.bienestar[1]] + scenario.bienestar.reversed())
            #expect(records.allSatisfy { $0["actor"] as? String == AccessOptionsActor.current && $0["tenant"] as? String == "bienestar" })
            for record in records {
                #expect(Set(record.keys) == ["id", "time", "action", "tenant", "key", "outcome", "actor", "detail"])
                #expect((record["id"] as? String)?.count == 16)
                #expect((record["time"] as? String).flatMap(AuditRecord.parseISO8601) != nil, "\(record)")
                #expect(record["key"] is String || (record["action"] as? String == "list" && record["key"] is NSNull))
                #expect(record["detail"] is String || record["detail"] is NSNull)
            }
            let (typo, typoMessage) = try await Self.run(["audit", "--tenant", "Bienestar"], scenario.environment)
            #expect(typo == .exited(1) && typoMessage.contains("no tenant of this name"), "\(typoMessage)")
            let (_, twin) = try await Self.run(["audit", "--tenant", "bienestar2", "--json"], scenario.environment)
            #expect((try Self.json(twin)["records"] as? [Any])?.isEmpty == true, "\(twin)")
        }
    }

    @Test func anUnwritableAuditTrailStopsTheDownloadBeforeAnyByte() async throws {
        try await withScenario { scenario in
            try await services.proxy.inject([
                .init(method: "PUT", path: "^/\(scenario.bucket)/audit/", action: .error, times: 0, status: 403, code: "AccessDenied")
            ])
            let target = TestProcess.temporaryFile("unaudited.sql.zst")
            let (status, output) = try await Self.run(["download", "--tenant", "bienestar", "--latest", "-o", target], scenario.environment)
            #expect(status == .exited(1))
            #expect(output.contains("audit record could not be stored") && output.contains("AccessDenied"), "\(output)")
            #expect(!FileManager.default.fileExists(atPath: target))
            let (streamed, stdout, stderr) = try await Self.runBinary(["download", "--tenant", "bienestar", "--latest", "-o", "-"], scenario.environment)
            #expect(streamed == .exited(1) && stdout.isEmpty, "\(stderr)")
            let (presigned, url) = try await Self.run(["presign", "--tenant", "bienestar", "--latest"], scenario.environment)
            #expect(presigned == .exited(1) && !url.contains("X-Amz-Signature"), "\(url)")
        }
    }
}

/// The local user as the CLI names it in audit records (tests run as root, never under sudo).
enum AccessOptionsActor {
    static var current: String {
        getpwuid(geteuid()).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? ""
    }
}
