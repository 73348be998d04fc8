import Foundation
import NIOCore
import NIOFoundationCompat
import TenantBackup
import TenantBackupTesting
import Testing

/// Issue 18, acceptance 7: with `s3.prefix` set, every endpoint and every CLI command takes the keys `list`
/// returns (the API's key check is the library's parser under the prefix, not a regex anchored at `backups/`).
extension HTTPAPITests {
    @Test func withAPrefixEveryEndpointAndCommandRoundTripsTheListedKeys() async throws {
        let prefix = "clinics/prod/"
        try await withServer(extra: ["TENANT_BACKUP_S3_PREFIX": prefix, "TENANT_BACKUP_API_DELETE_POLICY": "any"]) { server in
            let client = services.s3Client(bucket: server.bucket)
            #expect(server.keys.count == 2 && server.keys.allSatisfy { $0.hasPrefix(prefix + "backups/bienestar/") }, "\(server.keys)")
            let list = try await get(server.base + "/api/backups/cloud/list/", token: server.bienestar)
            try #require(list.status == 200, "\(String(buffer: list.body))")
            let listed = (list.json?["backups"] as? [[String: Any]] ?? []).compactMap { $0["s3_key"] as? String }
            #expect(listed == server.keys.reversed())
            let newest = listed[0]
            let older = listed[1]
            func body(_ key: String) -> String { "{\"s3_key\": \"\(key)\"}" }
            // download (plain and stored), get-url and the URL it gives
            let plain = try await request("POST", server.base + "/api/backups/cloud/download/", token: server.bienestar, body: body(newest))
            #expect(plain.status == 200 && String(buffer: plain.body).contains("PostgreSQL database dump"), "\(plain.status)")
            let stored = try await request("POST", server.base + "/api/backups/cloud/download/?format=stored", token: server.bienestar, body: body(newest))
            let storedObject = try await client.getObject(key: newest)
            #expect(stored.status == 200 && stored.body == storedObject)
            let url = try await request("POST", server.base + "/api/backups/cloud/get-url/", token: server.bienestar, body: body(newest))
            #expect(url.status == 200, "\(String(buffer: url.body))")
            let fetched = try await get(try #require(url.json?["download_url"] as? String))
            #expect(fetched.status == 200 && fetched.body == stored.body)
            // another clinic's key under the same prefix: 403; the same key without the prefix names no backup: 404
            let foreign = try await request("POST", server.base + "/api/backups/cloud/download/", token: server.mindcare, body: body(newest))
            #expect(foreign.status == 403)
            let unprefixed = String(newest.dropFirst(prefix.count))
            #expect(try await request("POST", server.base + "/api/backups/cloud/download/", token: server.bienestar, body: body(unprefixed)).status == 404)
            // create: its key is under the prefix and downloads
            let created = try await request("POST", server.base + "/api/backups/create/", token: server.mindcare)
            let createdKey = try #require((created.json?["backup_info"] as? [String: Any])?["s3_key"] as? String, "\(String(buffer: created.body))")
            #expect(createdKey.hasPrefix(prefix + "backups/mindcare/"))
            #expect(try await request("POST", server.base + "/api/backups/cloud/download/", token: server.mindcare, body: body(createdKey)).status == 200)
            // delete (soft), then the operator's undelete and delete take the same key
            let deleted = try await request("DELETE", server.base + "/api/backups/cloud/delete/", token: server.bienestar, body: body(older))
            #expect(deleted.status == 200, "\(String(buffer: deleted.body))")
            #expect(try await client.headObject(key: older + BackupKey.deletionSuffix).size > 0)
            let audit = try await get(server.base + "/api/auditlog/", token: server.bienestar)
            #expect(audit.status == 200 && (audit.json?["count"] as? Int ?? 0) > 0)

            let output = TestProcess.temporaryFile("prefixed.sql.zst")
            defer { try? FileManager.default.removeItem(atPath: output) }
            let fresh = "\(server.database.name)_prefixed"
            defer { _ = try? PostgresConnection(connectionString: "dbname=postgres", environment: services.environment).query("DROP DATABASE IF EXISTS \(fresh) WITH (FORCE)", purpose: "test") }
            let (listStatus, listOutput, listErrors) = try await TestProcess.tenantBackupBytes(["list", "--tenant", "bienestar", "--json"], server.environment)
            #expect(listStatus == .exited(0), "\(listErrors)")
            let cliKeys = ((try? JSONSerialization.jsonObject(with: Data(listOutput)) as? [String: Any])?["backups"] as? [[String: Any]] ?? []).compactMap { $0["s3_key"] as? String }
            #expect(cliKeys == listed)
            for arguments in [
                ["download", "--tenant", "bienestar", newest, "-o", output],
                ["presign", "--tenant", "bienestar", newest],
                ["verify", "--tenant", "bienestar", newest],
                ["restore", "--tenant", "bienestar", older, "--target-database", "dbname=\(fresh)", "--create-database", "--with-shared-data"],
                ["audit", "--tenant", "bienestar", "--limit", "5"],
                ["undelete", "--tenant", "bienestar", older],
                ["delete", "--tenant", "bienestar", older],
                ["prune", "--tenant", "bienestar", "--dry-run"],
            ] {
                let (status, text) = try await TestProcess.tenantBackup(arguments, server.environment)
                #expect(status == .exited(0), "\(arguments.joined(separator: " ")): \(text)")
            }
            #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == Data(buffer: stored.body))
            await #expect(throws: S3Error.self) { try await client.headObject(key: older) }
        }
    }
}
