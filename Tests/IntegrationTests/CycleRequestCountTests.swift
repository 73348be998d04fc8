import Foundation
import NIOCore
import TenantBackup
import TenantBackupTesting
import Testing

/// Issue 20: the S3 requests of one cycle (`run --once`) of 100 tenants with five days of history, counted
/// in the verifying proxy's log. Retention reads each kept tenant manifest for the tenant's plan, the shared
/// dumps' retention needs what they name, and the slot check the newest: from one ``ManifestCache``, each
/// manifest is read once per cycle, not two or three times (1,294 manifest GETs before, 600 after), and the
/// cycle's one listing of `backups/` serves every tenant's slot check, new key and retention (four listings a
/// tenant at first, three once the slot check gave the backup its key, none now).
@Suite struct CycleRequestCountTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    static let tenants = 100
    static let history = 5

    @Test func aHundredTenantCycleReadsEachManifestOnce() async throws {
        try await TestDatabase.with(services) { database in
            var existing = 3  // the fixture's clinics
            var sql = ""
            while existing < Self.tenants {
                existing += 1
                sql += "INSERT INTO public.tenants_clinic (schema_name, name) VALUES ('c\(existing)', 'Clinic \(existing)'); "
                sql += "CREATE SCHEMA c\(existing); CREATE TABLE c\(existing).notes AS SELECT 1 AS id, 'a note' AS body; "
            }
            try await database.psql(sql)
            try await TestBucket.with(services) { bucket in
                let environment = services.commandEnvironment(database: database, bucket: bucket)
                let (status, output) = try await TestProcess.tenantBackup(["backup", "--tenant", "bienestar", "--no-shared"], environment)
                try #require(status == .exited(0), "\(output)")
                let tenants = try await plantHistory(bucket: bucket)
                #expect(tenants.count == Self.tenants, "\(tenants.count) tenants")
                let marker = try await services.proxy.requests(matching: "^/\(bucket)").compactMap(\.arrival).max() ?? 0

                let (cycled, cycleOutput) = try await TestProcess.tenantBackup(["run", "--once"], environment)
                #expect(cycled == .exited(0), "\(cycleOutput.suffix(3000))")

                try await services.proxy.settle(matching: "^/\(bucket)")
                let seen = try await services.proxy.requests(matching: "^/\(bucket)").filter { ($0.arrival ?? 0) > marker }
                var counts: [String: Int] = [:]
                for request in seen { counts[Self.kind(request), default: 0] += 1 }
                let manifests = Self.tenants * (Self.history + 1)
                let summary = counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                // Each tenant manifest once (the history and the cycle's own), and the shared dumps' few.
                #expect((counts["GET manifest"] ?? 0) <= manifests + 20, "\(summary)")
                // One listing of the tenants' backups for the slot checks, the new keys and retention, and one
                // more, fresh, for the shared dumps' retention (a backup another host made since may name an old
                // dump); no tenant's folder is listed, and the incomplete uploads are listed once.
                #expect((counts["LIST objects backups/"] ?? 0) <= 2, "\(summary)")
                #expect(counts["LIST objects backups/<schema>/"] == nil, "\(summary)")
                #expect(counts["LIST uploads backups/"] == 1 && counts["LIST uploads backups/<schema>/"] == nil, "\(summary)")
                print("requests of a \(Self.tenants)-tenant cycle with \(Self.history) signed backups each: \(seen.count) (\(summary))")
            }
        }
    }

    /// What kind of request it was, for the counts.
    static func kind(_ request: ProxyControl.SeenRequest) -> String {
        if request.method == "GET", request.query.contains("list-type") || request.query.contains("uploads") {
            let what = request.query.contains("list-type") ? "LIST objects" : "LIST uploads"
            // A listing's later pages are counted apart: a listing is its first page.
            let page = request.query.contains("continuation-token") || request.query.contains("key-marker") ? " (next page)" : ""
            return "\(what) \(Self.listed(request))\(page)"
        }
        if request.method == "GET", request.path.hasSuffix(BackupKey.manifestSuffix) { return "GET manifest" }
        if request.method == "POST", request.query.contains("delete") { return "DELETE objects" }
        return "\(request.method) \(request.path.hasSuffix(".json") ? "json" : "object")"
    }

    /// Which folder a listing asked for: `backups/` (the whole tenants' root), `backups/<tenant>/`, `shared/…`,
    /// `audit/<tenant>/`; a probe of one key is `probe`.
    static func listed(_ request: ProxyControl.SeenRequest) -> String {
        let items = URLComponents(string: "/?" + request.query)?.queryItems ?? []
        if items.contains(where: { $0.name == "max-keys" && $0.value == "1" }) { return "probe" }
        let prefix = items.first { $0.name == "prefix" }?.value ?? ""
        let parts = prefix.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count <= 2 { return prefix }
        return "\(parts[0])/<schema>/"
    }

    /// `history` daily cycles before today, straight to the store (as the backup host wrote them): a shared
    /// dump each, and for every tenant a signed backup naming it. Returns the tenants.
    func plantHistory(bucket: String) async throws -> [String] {
        let client = try services.attackerClient(bucket: bucket)
        let key = try TestSigning.key()
        let template = try #require(try await client.listKeys(prefix: "backups/bienestar/").first { !$0.hasSuffix(".json") })
        let body = try await client.getObject(key: template)
        var tenants = ["bienestar", "mindcare", "Clínica \"Sur\""]
        for number in 4...Self.tenants { tenants.append("c\(number)") }
        let now = Date()
        var objects: [(String, ByteBuffer)] = []
        for day in 1...Self.history {
            let time = now.addingTimeInterval(-Double(day) * 86400)
            let shared = BackupKey(prefix: "", area: .shared, schema: "public", timestamp: time, suffix: ".sql.zst")
            objects.append((shared.key, body))
            for tenant in tenants {
                let backup = BackupKey(prefix: "", schema: .tenant(tenant), timestamp: time.addingTimeInterval(30), suffix: ".sql.zst")
                let manifest = BackupManifest(
                    area: "tenant", schema: tenant, key: backup.key, bytes: Int64(body.readableBytes), sha256: "00", dumpBytes: 1, compression: "zstd",
                    encryption: nil, format: "plain", pgDumpVersion: "15", serverVersion: "15", toolVersion: "test", startedAt: backup.timestamp,
                    finishedAt: backup.timestamp, sharedBackups: [shared.key], tableRowCounts: [:])
                objects.append((backup.key, body))
                objects.append((backup.manifestKey, ByteBuffer(data: try key.sign(manifest).encoded())))
            }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func start() {
                let (objectKey, bytes) = objects[next]
                next += 1
                group.addTask { try await client.putObject(key: objectKey, body: bytes) }
            }
            while next < min(16, objects.count) { start() }
            while try await group.next() != nil { if next < objects.count { start() } }
        }
        return tenants
    }
}
