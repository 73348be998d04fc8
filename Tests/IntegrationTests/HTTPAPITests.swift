import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import TenantBackup
import TenantBackupTesting
import Testing

/// Issue 13: the platform's backup endpoints over real HTTP, served by `tenant-backup run` (the built
/// executable) against the real database and the bucket behind the verifying proxy.
@Suite struct HTTPAPITests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    struct Server {
        let base: String
        let bucket: String
        let database: TestDatabase
        let environment: [String: String]
        /// Tokens of bienestar and mindcare, and bienestar's backups (oldest first) put as two cycles.
        let bienestar: String
        let mindcare: String
        let keys: [String]
        let tokensFile: String
        /// `s3.prefix` (`TENANT_BACKUP_S3_PREFIX` in `extra`), or empty.
        var prefix = ""
    }

    /// A daemon with the API on, two backups of bienestar, one of mindcare, and a backup of bienestar2 (a
    /// prefix twin) put directly.
    func withServer(extra: [String: String] = [:], _ body: (Server) async throws -> Void) async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let port = try TestProcess.freePort()
                let tokensFile = TestProcess.temporaryFile("tokens.json")
                defer { for suffix in ["", ".lock", ".last-used"] { try? FileManager.default.removeItem(atPath: tokensFile + suffix) } }
                var environment = services.commandEnvironment(database: database, bucket: bucket)
                environment["TENANT_BACKUP_API_TOKENS_FILE"] = tokensFile
                let prefix = extra["TENANT_BACKUP_S3_PREFIX"] ?? ""
                if !prefix.isEmpty { environment["TENANT_BACKUP_S3_PREFIX"] = prefix }
                for arguments in [["backup"], ["backup", "--tenant", "bienestar", "--no-shared"]] {
                    let (status, output) = try await TestProcess.tenantBackup(arguments, environment)
                    try #require(status == .exited(0), "\(output)")
                }
                let twin = BackupKey(prefix: prefix, schema: .tenant("bienestar2"), timestamp: Date().addingTimeInterval(-3600), suffix: ".sql.zst").key
                try await services.s3Client(bucket: bucket).putObject(key: twin, body: ByteBuffer(string: "bienestar2's rows"))
                let file = TokenFile(path: tokensFile)
                let bienestar = try file.create(tenant: "bienestar", note: "test").token
                let mindcare = try file.create(tenant: "mindcare", note: "test").token
                environment["TENANT_BACKUP_API_LISTEN"] = "127.0.0.1:\(port)"
                environment["TENANT_BACKUP_METRICS_LISTEN"] = "off"
                environment["TENANT_BACKUP_SCHEDULE"] = "0 3 * * *"
                environment.merge(extra) { $1 }
                let daemon = try DaemonProcess(["run"], environment: environment)
                defer {
                    daemon.signal(SIGTERM)
                }
                let base = "http://127.0.0.1:\(port)"
                let deadline = ContinuousClock.now + .seconds(30)
                while ContinuousClock.now < deadline, (try? await get(base + "/healthz").status) != 200 { try await Task.sleep(for: .milliseconds(200)) }
                // The daemon's own start-up reads (catch-up reads each tenant's newest manifest) are over before
                // the tests count what the API's requests touch.
                try await daemon.waitForOutput(containing: "catch-up:")
                let keys = try await services.s3Client(bucket: bucket).listKeys(prefix: prefix + "backups/bienestar/").filter { !$0.hasSuffix(".json") }.sorted()
                try await body(Server(
                    base: base, bucket: bucket, database: database, environment: environment, bienestar: bienestar, mindcare: mindcare, keys: keys,
                    tokensFile: tokensFile, prefix: prefix))
                daemon.signal(SIGTERM)
                #expect(await daemon.waitForExit(timeout: .seconds(30)) == 0, "\(daemon.output.suffix(2000))")
            }
        }
    }

    struct Answer {
        let status: Int
        let headers: [(String, String)]
        let body: ByteBuffer
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any] }
        func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    func request(_ method: String, _ url: String, token: String? = nil, body: String? = nil, headers: [(String, String)] = []) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = .init(rawValue: method)
        if let token { request.headers.add(name: "Authorization", value: "Token \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let collected = try await response.body.collect(upTo: 64 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: collected)
    }

    func get(_ url: String, token: String? = nil) async throws -> Answer { try await request("GET", url, token: token) }

    /// A bucket writer (straight to moto) pads mindcare's dump to the size of bienestar's newest backup and
    /// puts it at bienestar's key, keeping bienestar's signed manifest: bienestar's token gets no URL to it
    /// (403, the object does not match its manifest), and the download sends none of it.
    @Test func getURLNeverHandsOutAnotherClinicsDumpOfTheRightSize() async throws {
        try await withServer { server in
            let attacker = try services.attackerClient(bucket: server.bucket)
            let newest = server.keys[1]
            let size = Int(try await attacker.headObject(key: newest).size)
            let listed = try await attacker.listKeys(prefix: "backups/mindcare/")
            let mindcare = try #require(listed.first { !$0.hasSuffix(".manifest.json") })
            var foreign = try await attacker.getObject(key: mindcare)
            // A zstd skippable frame pads it: decompressors skip it, the size matches.
            if foreign.readableBytes + 8 <= size {
                let padding = size - foreign.readableBytes - 8
                foreign.writeInteger(UInt32(0x184D_2A50), endianness: .little)
                foreign.writeInteger(UInt32(padding), endianness: .little)
                foreign.writeRepeatingByte(0, count: padding)
            }
            try #require(foreign.readableBytes == size, "mindcare's dump is larger than bienestar's newest")
            try await attacker.deleteObject(key: newest)
            try await attacker.putObject(key: newest, body: foreign)
            let url = try await request("POST", server.base + "/api/backups/cloud/get-url/", token: server.bienestar, body: "{\"s3_key\": \"\(newest)\"}")
            #expect(url.status == 403, "\(url.status) \(String(buffer: url.body))")
            #expect(!String(buffer: url.body).contains("X-Amz-Signature"))
        }
    }

    @Test func everyEndpointAnswersTheOldAPIsShapes() async throws {
        try await withServer { server in
            let client = services.s3Client(bucket: server.bucket)
            // list
            let list = try await get(server.base + "/api/backups/cloud/list/", token: server.bienestar)
            #expect(list.status == 200)
            let listing = try #require(list.json)
            #expect(Set(listing.keys) == ["count", "schema", "backups"] && listing["count"] as? Int == 2 && listing["schema"] as? String == "bienestar")
            let backups = try #require(listing["backups"] as? [[String: Any]])
            #expect(backups.compactMap { $0["s3_key"] as? String } == server.keys.reversed())
            for entry in backups {
                // The old fields as they were, and the added state.
                #expect(Set(entry.keys) == ["filename", "s3_key", "size", "last_modified", "storage_class", "url", "state"])
                #expect(entry["size"] is Int && entry["filename"] is String && entry["storage_class"] as? String == "STANDARD")
                let modified = try #require(entry["last_modified"] as? String)
                #expect(modified.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression) != nil, "\(modified)")
                #expect((entry["url"] as? String)?.contains("Signature") == false)
                #expect(entry["state"] as? String == "verified")
            }
            // download: the plain SQL dump by default, as the old system served it, byte-identical to zstd -dc of
            // the stored object; ?format=stored: the stored bytes with the manifest's SHA-256
            let newest = server.keys[1]
            let stored = try await client.getObject(key: newest)
            let plain = try HostileBucketRestoreTests().plainDump(stored)
            let download = try await request("POST", server.base + "/api/backups/cloud/download/", token: server.bienestar, body: "{\"s3_key\": \"\(newest)\"}")
            #expect(download.status == 200)
            #expect(String(buffer: download.body) == plain)
            #expect(download.header("Content-Length") == String(plain.utf8.count))
            #expect(download.header("Content-Disposition") == "attachment; filename=\"\(newest.split(separator: "/").last!.replacingOccurrences(of: ".sql.zst", with: ".sql"))\"")
            let storedDownload = try await request(
                "POST", server.base + "/api/backups/cloud/download/?format=stored", token: server.bienestar, body: "{\"s3_key\": \"\(newest)\"}")
            #expect(storedDownload.status == 200 && storedDownload.body == stored)
            #expect(storedDownload.header("Content-Length") == String(stored.readableBytes))
            #expect(storedDownload.header("Content-Disposition") == "attachment; filename=\"\(newest.split(separator: "/").last!)\"")
            let manifest = try BackupManifest.decode(Data(buffer: try await client.getObject(key: newest + ".manifest.json")))
            #expect(storedDownload.header("X-Backup-SHA256") == manifest.sha256)
            // get-url
            let url = try await request("POST", server.base + "/api/backups/cloud/get-url/", token: server.bienestar, body: "{\"s3_key\": \"\(newest)\", \"expiration\": 120}")
            let presigned = try #require(url.json)
            #expect(url.status == 200 && Set(presigned.keys) == ["download_url", "s3_key", "expires_in_seconds", "filename"])
            #expect(presigned["expires_in_seconds"] as? Int == 120 && presigned["s3_key"] as? String == newest)
            let fetched = try await get(try #require(presigned["download_url"] as? String))
            #expect(fetched.status == 200 && fetched.body == stored)
            // delete: both are kept by retention's floor (the newest; the oldest as a monthly one): 409, nothing touched
            // (acceptance 2 deletes through the floor: aClinicTokenDeletingEverythingInALoopLeavesItsHistoryRecoverable)
            for key in server.keys.reversed() {
                let refused = try await request("DELETE", server.base + "/api/backups/cloud/delete/", token: server.bienestar, body: "{\"s3_key\": \"\(key)\"}")
                #expect(refused.status == 409 && (refused.json?["error"] as? String)?.contains("kept by the retention policy") == true, "\(String(buffer: refused.body))")
                #expect(try await client.headObject(key: key).size > 0)
            }
            #expect(try await client.listKeys(prefix: "backups/bienestar/").filter { $0.hasSuffix(".deleted.json") }.isEmpty)
            // create
            let created = try await request("POST", server.base + "/api/backups/create/?cloud_only=true", token: server.mindcare)
            #expect(created.status == 200, "\(String(buffer: created.body))")
            let info = try #require(created.json?["backup_info"] as? [String: Any])
            #expect(Set(info.keys) == ["filename", "s3_key", "size", "bucket", "url"] && info["bucket"] as? String == server.bucket)
            let createdKey = try #require(info["s3_key"] as? String)
            let createdSize = try await client.headObject(key: createdKey).size
            #expect(createdKey.hasPrefix("backups/mindcare/") && createdSize == Int64(info["size"] as? Int ?? -1))
            // create with ?download=true: the new backup's stored bytes as the body (format=stored)
            let fresh = try await request("POST", server.base + "/api/backups/create/?download=true&format=stored", token: server.mindcare)
            #expect(fresh.status == 200, "\(String(buffer: fresh.body.getSlice(at: 0, length: min(200, fresh.body.readableBytes)) ?? ByteBuffer()))")
            let disposition = try #require(fresh.header("Content-Disposition"))
            let freshKey = "backups/mindcare/" + disposition.replacingOccurrences(of: "attachment; filename=\"", with: "").replacingOccurrences(of: "\"", with: "")
            let freshStored = try await client.getObject(key: freshKey)
            #expect(freshKey != createdKey && fresh.body == freshStored)
            // audit log: this token's accesses, newest first, with the token's id as the actor
            let audit = try #require(try await get(server.base + "/api/auditlog/?page=1", token: server.bienestar).json)
            let results = try #require(audit["results"] as? [[String: Any]])
            #expect(results.prefix(6).compactMap { $0["action"] as? String } == ["audit-log", "delete", "delete", "presign", "download", "download"])
            #expect(results.prefix(5).allSatisfy { ($0["actor"] as? String)?.hasPrefix("token:") == true })
            #expect((audit["count"] as? Int ?? 0) >= 5)
            #expect(try await get(server.base + "/healthz").json?["status"] as? String == "ok")
        }
    }

    @Test func anotherClinicsKeysAndCraftedKeysAreRefusedAndNothingIsTouched() async throws {
        try await withServer { server in
            let before = try await services.s3Client(bucket: server.bucket).list(prefix: "backups/", limit: nil).map(\.key)
            let seenBefore = try await services.proxy.requests(matching: "^/\(server.bucket)/").count
            let mindcareKey = try #require(before.first { $0.hasPrefix("backups/mindcare/") && !$0.hasSuffix(".json") })
            let twinKey = try #require(before.first { $0.hasPrefix("backups/bienestar2/") })
            let file = String(server.keys[1].split(separator: "/").last!)
            let cases: [(String, Set<Int>)] = [
                (mindcareKey, [403]), (twinKey, [403]), ("backups/bienestar/../bienestar2/\(file)", [404]),
                ("backups/bienestar%2F..%2Fbienestar2/\(file)", [403, 404]), ("backups/bienestar%252F/\(file)", [403, 404]), ("/\(server.keys[1])", [404]),
                // The library's resolver judges every key: a shared dump or an audit record is outside the clinic's
                // folder (403); a manifest, or a file name of another shape, names no backup of this clinic (404).
                ("shared/public/x.sql.zst", [403]), ("audit/bienestar/2026/x.json", [403]), (server.keys[1] + ".manifest.json", [404]),
                ("backups/bienestar/backup-sql-bienestar2-2026-01-01-000000.sql.zst", [403, 404]),
                ("backups/bienestar/backup-sql-bienestar-2001-01-01-000000.sql.zst", [404]),
            ]
            for (key, statuses) in cases {
                let escaped = key.replacingOccurrences(of: "\"", with: "\\\"")
                for (method, path) in [("POST", "/api/backups/cloud/download/"), ("POST", "/api/backups/cloud/get-url/"), ("DELETE", "/api/backups/cloud/delete/")] {
                    let answer = try await request(method, server.base + path, token: server.bienestar, body: "{\"s3_key\": \"\(escaped)\"}")
                    #expect(statuses.contains(answer.status), "\(method) \(path) \(key): \(answer.status) \(String(buffer: answer.body))")
                    let error = answer.json?["error"] as? String ?? ""
                    #expect(!error.isEmpty && !error.contains("mindcare") && !error.contains("bienestar2"), "\(key): \(error)")
                    #expect(answer.json?["download_url"] == nil)
                }
            }
            // Tokens: none, unknown, revoked (without a restart).
            let anonymous = try await get(server.base + "/api/backups/cloud/list/")
            // As Django REST framework's TokenAuthentication answers.
            #expect(anonymous.status == 401 && anonymous.header("WWW-Authenticate") == "Token")
            #expect(anonymous.json?["detail"] as? String == "Authentication credentials were not provided.")
            let unknown = try await get(server.base + "/api/backups/cloud/list/", token: "tbk_unknown")
            #expect(unknown.status == 401 && unknown.json?["detail"] as? String == "Invalid token." && unknown.header("WWW-Authenticate") == "Token")
            let tokens = try TokenFile(path: server.tokensFile).load()
            try TokenFile(path: server.tokensFile).revoke(id: try #require(tokens.first { $0.tenant == "mindcare" }).id)
            #expect(try await get(server.base + "/api/backups/cloud/list/", token: server.mindcare).status == 401)
            #expect(try await get(server.base + "/api/backups/cloud/list/", token: server.bienestar).status == 200)
            let after = try await services.s3Client(bucket: server.bucket).list(prefix: "backups/", limit: nil).map(\.key)
            #expect(after == before)
            // Nothing outside bienestar's folder was read or deleted: besides listings of it, only audit records were written.
            let seen = try await services.proxy.requests(matching: "^/\(server.bucket)/").dropFirst(seenBefore)
            let outside = seen.filter { request in
                !request.path.hasPrefix("/\(server.bucket)/audit/") && !request.path.hasPrefix("/\(server.bucket)/backups/bienestar/")
                    && !(request.method == "GET" && request.path == "/\(server.bucket)/" && request.query.contains("list-type=2"))
            }
            #expect(outside.isEmpty, "\(outside.map { "\($0.method) \($0.path)?\($0.query)" })")
            #expect(!seen.contains { $0.method == "DELETE" || ($0.method == "POST" && $0.query.contains("delete")) })
            // The clinic's own audit log shows the refusals, but never the foreign keys (they name other clinics),
            // nor an operator's user name; the operator's audit keeps them whole.
            let operatorRefusal = try await TestProcess.tenantBackup(["download", "--tenant", "bienestar", mindcareKey, "-o", "-"], server.environment)
            #expect(operatorRefusal.status != .exited(0))
            let clinicLog = try await get(server.base + "/api/auditlog/", token: server.bienestar)
            let shown = String(buffer: clinicLog.body)
            #expect(clinicLog.status == 200 && shown.contains("refused") && !shown.contains("mindcare") && !shown.contains("bienestar2"), "\(shown.prefix(2000))")
            let user = String(cString: getpwuid(geteuid()).pointee.pw_name)
            #expect(!shown.contains("\"actor\":\"\(user)\"") && shown.contains("\"actor\":\"operator\""), "\(shown.prefix(2000))")
            let (_, operatorLog) = try await TestProcess.tenantBackup(["audit", "--tenant", "bienestar", "--limit", "200"], server.environment)
            #expect(operatorLog.contains("mindcare"))
            // Guessing tokens: after ten failures in a minute this address's bad tokens get 429.
            var statuses: [Int] = []
            for guess in 0..<12 { statuses.append(try await get(server.base + "/api/backups/cloud/list/", token: "guess\(guess)-\(UUID().uuidString)").status) }
            #expect(statuses.last == 429, "\(statuses)")
            let limited = try await get(server.base + "/api/backups/cloud/list/", token: "guess-again-\(UUID().uuidString)")
            #expect(limited.status == 429 && limited.header("Retry-After") == "60")
            #expect(limited.json?["detail"] as? String == "Request was throttled. Expected available in 60 seconds.")
            // A good token still works from the same address: behind the reverse proxy, every clinic shares it;
            // and so do requests without a token, counted apart.
            #expect(try await get(server.base + "/api/backups/cloud/list/", token: server.bienestar).status == 200)
            #expect(try await get(server.base + "/api/backups/cloud/list/").status == 401)
        }
    }

    @Test func oneBackupPerClinicAtATimeTheSecondGets409() async throws {
        try await withServer { server in
            let holder = try server.database.connect()
            _ = try holder.query(
                "SELECT pg_advisory_lock($1::int4, $2::int4)", [String(TenantLock.projectKey), String(TenantLock.tenantKey("bienestar"))], purpose: "test")
            let busy = try await request("POST", server.base + "/api/backups/create/", token: server.bienestar)
            #expect(busy.status == 409 && (busy.json?["error"] as? String)?.contains("already running") == true, "\(String(buffer: busy.body))")
            _ = try holder.query("SELECT pg_advisory_unlock_all()", purpose: "test")
            #expect(try await request("POST", server.base + "/api/backups/create/", token: server.bienestar).status == 200)
        }
    }

    /// The platform's own tokens through api.token_query: one row opens that clinic; none or two open nothing.
    @Test func aPlatformTokenOpensExactlyItsClinicAndAnUnmappedOneNothing() async throws {
        let query = "SELECT a.schema_name FROM public.authtoken_token t JOIN public.clinic_admin a USING (user_id) WHERE t.key = $1"
        try await withServer(extra: ["TENANT_BACKUP_API_TOKEN_QUERY": query]) { server in
            try await server.database.psql("""
                CREATE TABLE public.authtoken_token (key text PRIMARY KEY, user_id int NOT NULL);
                CREATE TABLE public.clinic_admin (user_id int NOT NULL, schema_name text NOT NULL);
                INSERT INTO public.authtoken_token VALUES ('drf-bienestar', 1), ('drf-orphan', 2), ('drf-both', 3);
                INSERT INTO public.clinic_admin VALUES (1, 'bienestar'), (3, 'bienestar'), (3, 'mindcare');
                """)
            let list = try await get(server.base + "/api/backups/cloud/list/", token: "drf-bienestar")
            #expect(list.status == 200 && list.json?["schema"] as? String == "bienestar")
            for token in ["drf-orphan", "drf-both", "drf-unknown"] {
                #expect(try await get(server.base + "/api/backups/cloud/list/", token: token).status == 401, "\(token)")
            }
            let audit = try #require(try await get(server.base + "/api/auditlog/", token: "drf-bienestar").json?["results"] as? [[String: Any]])
            #expect(audit.prefix(2).allSatisfy { ($0["actor"] as? String)?.hasPrefix("platform-token:") == true })
            #expect(audit.prefix(2).compactMap { $0["action"] as? String } == ["audit-log", "list"])

            // Issue 18, acceptance 6: eleven bad tokens from this address (and anonymous requests), then a valid
            // platform token and a valid file token: both pass; the guesser gets 429.
            var statuses: [Int] = []
            for guess in 0..<11 { statuses.append(try await get(server.base + "/api/backups/cloud/list/", token: "drf-guess-\(guess)-\(UUID().uuidString)").status) }
            for _ in 0..<3 { _ = try await get(server.base + "/api/backups/cloud/list/") }
            #expect(statuses.last == 429, "\(statuses)")
            #expect(try await get(server.base + "/api/backups/cloud/list/", token: "drf-bienestar").status == 200)
            #expect(try await get(server.base + "/api/backups/cloud/list/", token: server.mindcare).status == 200)
            #expect(try await get(server.base + "/api/backups/cloud/list/", token: "drf-guess-again").status == 429)
            // Our own tokens record their last use for `token list`.
            let deadline = ContinuousClock.now + .seconds(10)
            var used: Date?
            while used == nil, ContinuousClock.now < deadline {
                used = try TokenFile(path: server.tokensFile).loadWithLastUse().first { $0.tenant == "bienestar" }?.lastUsedAt
                if used == nil {
                    _ = try await get(server.base + "/api/backups/cloud/list/", token: server.bienestar)
                    try await Task.sleep(for: .milliseconds(300))
                }
            }
            #expect(used != nil)
            // ... beside the tokens file, which the daemon never rewrites (a use costs the same with 100,000 tokens).
            #expect(!TokenFile(path: server.tokensFile).lastUses().isEmpty)
            #expect(try TokenFile(path: server.tokensFile).load().allSatisfy { $0.lastUsedAt == nil })
        }
    }

    @Test func malformedRequestsGetFourHundredsInJSONAndTheServerStaysUp() async throws {
        try await withServer { server in
            let key = server.keys[1]
            let big = String(repeating: "x", count: 1 << 20)
            var bodies: [String] = [
                "", "not json", "[]", "null", "42", "\"s3_key\"", "{", "{\"s3_key\": }", "{\"s3_key\": 1}", "{\"s3_key\": null}", "{\"s3_key\": []}",
                "{\"s3_key\": {}}", "{\"s3_key\": true}", "{\"s3_key\": \"\"}", "{\"key\": \"\(key)\"}", "{}", "{\"s3_key\": \"\(big)\"}",
                "{\"s3_key\": \"bäckups/ünïcode/💾.sql.zst\"}", "{\"s3_key\": \"\\u0000\"}", "{\"s3_key\": \"\(key)\\n\"}", "{\"s3_key\": \"a\", \"s3_key\": \"\(key)\"}",
            ]
            for expiration in ["1e12", "-1", "0", "604801", "\"3600\"", "1.5", "true", "99999999999999999999999", "[]", "{}"] {
                bodies.append("{\"s3_key\": \"\(key)\", \"expiration\": \(expiration)}")
            }
            var count = 0
            for body in bodies {
                for (method, path) in [("POST", "/api/backups/cloud/get-url/"), ("POST", "/api/backups/cloud/download/"), ("DELETE", "/api/backups/cloud/delete/")] {
                    if path.hasSuffix("delete/"), body.contains("expiration"), !body.contains("\"s3_key\": \"\(key)\"") { continue }
                    let answer = try await request(method, server.base + path, token: server.bienestar, body: body)
                    count += 1
                    if answer.status == 200 {
                        // Only a well-formed key of this clinic may succeed (a duplicate "s3_key" takes the last one); every
                        // expiration in the list is invalid, so get-url must refuse them all (download ignores the field).
                        #expect(body.contains(key) && !(path.hasSuffix("get-url/") && body.contains("expiration")), "\(method) \(path) \(body.prefix(80)): 200")
                        continue
                    }
                    #expect((400..<500).contains(answer.status), "\(method) \(path) \(body.prefix(80)): \(answer.status)")
                    #expect(answer.json?["error"] is String, "\(method) \(path) \(body.prefix(80))")
                }
            }
            for (method, path) in [
                ("GET", "/api/backups/cloud/download/"), ("PUT", "/api/backups/cloud/list/"), ("POST", "/api/backups/cloud/list/"), ("GET", "/api/backups/create/"),
                ("PATCH", "/api/backups/cloud/delete/"), ("GET", "/api/nothing/"), ("GET", "/api/auditlog/?page=0"), ("GET", "/api/auditlog/?page=abc"),
                ("POST", "/api/backups/create/?download=maybe"),
            ] {
                let answer = try await request(method, server.base + path, token: server.bienestar)
                count += 1
                #expect((400..<500).contains(answer.status) && answer.json?["error"] is String, "\(method) \(path): \(answer.status) \(String(buffer: answer.body))")
            }
            #expect(count >= 50)
            #expect(try await get(server.base + "/api/backups/cloud/list/", token: server.bienestar).status == 200, "the server stayed up")
        }
    }

    /// Issue 18, acceptance 4 and 5: what no trusted signature vouches for (a manifest-less object, an unsigned
    /// manifest, a marked object) is listed as unverified and never served; a same-size tampered object's
    /// download ends short of its length (the client cannot take it for the backup) and is audited as failed;
    /// with the audit trail unwritable the answer is 503 before any header of the body.
    @Test func onlyVouchedBackupsAreServedAndATamperedOneNeverArrivesWhole() async throws {
        try await withServer { server in
            let client = services.s3Client(bucket: server.bucket)
            let attacker = try services.attackerClient(bucket: server.bucket)
            let newest = server.keys[1]
            let stored = try await client.getObject(key: newest)
            // A manifest-less object, and a copy of the newest with its manifest minus the signature.
            let legacy = BackupKey(prefix: "", schema: .tenant("bienestar"), timestamp: Date().addingTimeInterval(-5 * 86400), suffix: ".sql").key
            try await attacker.putObject(key: legacy, body: ByteBuffer(string: "-- a dump of someone else\n"))
            let copy = BackupKey(prefix: "", schema: .tenant("bienestar"), timestamp: Date().addingTimeInterval(-4 * 86400), suffix: ".sql.zst").key
            var unsigned = try BackupManifest.decode(Data(buffer: try await client.getObject(key: newest + ".manifest.json")))
            unsigned = BackupManifest(
                area: unsigned.area, schema: unsigned.schema, key: copy, bytes: unsigned.bytes, sha256: unsigned.sha256, dumpBytes: unsigned.dumpBytes,
                compression: unsigned.compression, encryption: nil, format: unsigned.format, pgDumpVersion: unsigned.pgDumpVersion,
                serverVersion: unsigned.serverVersion, toolVersion: unsigned.toolVersion, startedAt: unsigned.startedAt, finishedAt: unsigned.finishedAt,
                sharedBackups: unsigned.sharedBackups, tableRowCounts: unsigned.tableRowCounts)
            try await attacker.putObject(key: copy, body: stored)
            try await attacker.putObject(key: copy + ".manifest.json", body: ByteBuffer(data: try unsigned.encoded()))
            let listing = try #require(try await get(server.base + "/api/backups/cloud/list/", token: server.bienestar).json?["backups"] as? [[String: Any]])
            let states = Dictionary(uniqueKeysWithValues: listing.compactMap { entry in (entry["s3_key"] as? String).map { ($0, entry["state"] as? String ?? "") } })
            #expect(states[legacy] == "unverified" && states[copy] == "unverified" && states[newest] == "verified", "\(states)")
            for key in [legacy, copy] {
                for path in ["/api/backups/cloud/download/", "/api/backups/cloud/get-url/"] {
                    let answer = try await request("POST", server.base + path, token: server.bienestar, body: "{\"s3_key\": \"\(key)\"}")
                    #expect(answer.status == 403 && (answer.json?["error"] as? String)?.contains("not verified") == true, "\(path) \(key): \(answer.status)")
                    #expect(answer.json?["download_url"] == nil)
                }
            }

            // The newest replaced by the attacker with the same number of bytes, one bit flipped near the end.
            var tampered = stored
            let at = stored.readableBytes - 100
            tampered.setInteger(tampered.getInteger(at: at, as: UInt8.self)! ^ 0x01, at: at)
            try await attacker.deleteObject(key: newest)
            try await attacker.putObject(key: newest, body: tampered)
            for format in ["sql", "stored"] {
                var request = HTTPClientRequest(url: server.base + "/api/backups/cloud/download/?format=\(format)")
                request.method = .POST
                request.headers.add(name: "Authorization", value: "Token \(server.bienestar)")
                request.body = .bytes(ByteBuffer(string: "{\"s3_key\": \"\(newest)\"}"))
                var received = 0
                var declared = -1
                var completed = false
                do {
                    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
                    declared = Int(response.headers.first(name: "Content-Length") ?? "") ?? -1
                    for try await piece in response.body { received += piece.readableBytes }
                    completed = true
                } catch {
                    completed = false
                }
                #expect(!completed && received < declared, "\(format): \(received) of \(declared) bytes, completed \(completed)")
            }
            let audit = try #require(try await get(server.base + "/api/auditlog/?page=1", token: server.bienestar).json?["results"] as? [[String: Any]])
            #expect(audit.contains { $0["action"] as? String == "download" && $0["outcome"] as? String == "failed" && $0["key"] as? String == newest })

            // The audit trail refused (for this test's bucket alone, from now on): 503, and no body of the backup.
            try await attacker.deleteObject(key: newest)
            try await attacker.putObject(key: newest, body: stored)
            try await services.proxy.inject([.init(method: "PUT", path: "^/\(server.bucket)/audit/", action: .error, times: 0, status: 403, code: "AccessDenied")])
            let refused = try await request("POST", server.base + "/api/backups/cloud/download/", token: server.bienestar, body: "{\"s3_key\": \"\(newest)\"}")
            #expect(refused.status == 503 && refused.json?["error"] is String, "\(refused.status)")
            #expect(refused.header("Content-Disposition") == nil)
        }
    }

    /// Issue 18, acceptance 8: a SIGHUP with a changed `api.token_query` is in effect for the next request; a
    /// changed `api.listen` is reported as needing a restart (log and status line), and the API stays where it was.
    @Test func aReloadAppliesTheTokenQueryAndSaysWhatNeedsARestart() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let notify = try NotifySocket()
                defer { notify.close() }
                let (apiPort, metricsPort, otherPort) = (try TestProcess.freePort(), try TestProcess.freePort(), try TestProcess.freePort())
                let config = TestProcess.temporaryFile("config.yaml")
                let tokensFile = TestProcess.temporaryFile("tokens.json")
                defer { for path in [config, tokensFile, tokensFile + ".lock"] { try? FileManager.default.removeItem(atPath: path) } }
                func write(token: String, apiPort: Int) throws {
                    try DaemonIntegrationTests.writeConfig(
                        config, port: metricsPort, prefix: "reload",
                        extra: """
                            api:
                              listen: 127.0.0.1:\(apiPort)
                              tokens_file: \(tokensFile)
                              token_query: "SELECT 'bienestar' WHERE $1::text = '\(token)'"
                            """)
                }
                try write(token: "first-token", apiPort: apiPort)
                let daemon = try DaemonProcess(
                    ["run", "--config", config], environment: try DaemonIntegrationTests().environment(database: database, bucket: bucket, notify: notify))
                defer { daemon.signal(SIGTERM) }
                let base = "http://127.0.0.1:\(apiPort)"
                let ready = try await notify.waitFor("READY=1") { $0.contains("READY=1") }
                let deadline = ContinuousClock.now + .seconds(30)
                while ContinuousClock.now < deadline, (try? await get(base + "/healthz").status) != 200 { try await Task.sleep(for: .milliseconds(200)) }
                #expect(try await get(base + "/api/backups/cloud/list/", token: "first-token").status == 200)
                #expect(try await get(base + "/api/backups/cloud/list/", token: "second-token").status == 401)

                try write(token: "second-token", apiPort: otherPort)
                let before = notify.messages.count - 1
                daemon.signal(SIGHUP)
                let reloaded = try await notify.waitFor(after: max(before, ready.index), "READY=1 after the reload") { $0.contains("READY=1") && $0.contains("STATUS=") }
                #expect(reloaded.message.contains("restart needed: api.listen changed"), "\(reloaded.message)")
                try await daemon.waitForOutput(containing: "restart_needed=api.listen")
                #expect(try await get(base + "/api/backups/cloud/list/", token: "second-token").status == 200)
                #expect(try await get(base + "/api/backups/cloud/list/", token: "first-token").status == 401)
                daemon.signal(SIGTERM)
                #expect(await daemon.waitForExit(timeout: .seconds(30)) == 0, "\(daemon.output.suffix(2000))")
            }
        }
    }
}
