import Foundation
import Subprocess
import TenantBackup
import TenantBackupTesting
import Testing

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Issue 18, acceptance 1: the clinic of a request from its host name, as django-tenants decides it, against
/// a real Django + django-tenants + Django REST framework schema (`Tests/Platform`, from PyPI) migrated into
/// the test database, with the README's own queries.
extension HTTPAPITests {
    static let platform = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Platform").path
    static let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("README.md").path

    /// The README's example query on the line that starts with `start` (its quoted SQL).
    static func readmeQuery(_ start: String) throws -> String {
        let text = try String(contentsOfFile: readme, encoding: .utf8)
        let line = try #require(text.components(separatedBy: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix(start) }, "README: \(start)")
        let first = try #require(line.firstIndex(of: "\""))
        let last = try #require(line.lastIndex(of: "\""))
        return String(line[line.index(after: first)..<last])
    }

    /// Migrates the platform's shared apps into `database` and seeds two clinics, their domains and one user of
    /// each kind; returns their DRF tokens (`dual`, `other`, `inactive`, `member`).
    func migratePlatform(into database: TestDatabase) async throws -> [String: String] {
        var environment = services.environment
        environment["PGDATABASE"] = database.name
        let custom = Environment.custom(environment.map { Array("\($0.key)=\($0.value)\0".utf8) })
        let migrate = try await Subprocess.run(
            .name("python3"), arguments: [Self.platform + "/manage.py", "migrate_schemas", "--shared"], environment: custom,
            output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
        try #require(migrate.terminationStatus == .exited(0), "manage.py migrate_schemas: \(migrate.standardError)")
        let seed = try await Subprocess.run(
            .name("python3"), arguments: [Self.platform + "/seed.py"], environment: custom, output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
        try #require(seed.terminationStatus == .exited(0), "seed.py: \(seed.standardError)")
        let tokens = try #require(try JSONSerialization.jsonObject(with: Data(seed.standardOutput.utf8)) as? [String: String])
        try #require(Set(tokens.keys) == ["dual", "other", "inactive", "member"], "\(tokens.keys)")
        return tokens
    }

    func list(_ server: Server, token: String, host: String) async throws -> Answer {
        try await request("GET", server.base + "/api/backups/cloud/list/", token: token, headers: [("X-Forwarded-Host", host)])
    }

    @Test func theClinicComesFromTheHostAndTheTokenMustBeValidForIt() async throws {
        let tokenQuery = try Self.readmeQuery("token_query: \"SELECT CASE WHEN m.is_admin")
        let domainQuery = try Self.readmeQuery("domain_query: \"")
        #expect(domainQuery == APISettings.defaultDomainQuery)
        try await withServer(extra: ["TENANT_BACKUP_API_TENANT_FROM_HOST": "true", "TENANT_BACKUP_API_TOKEN_QUERY": tokenQuery]) { server in
            let tokens = try await migratePlatform(into: server.database)
            let (bienestar, mindcare) = ("bienestar.clinic.test", "mindcare.clinic.test:443")
            // A user who administers two clinics reaches each on its own domain.
            let dualHere = try await list(server, token: tokens["dual"]!, host: bienestar)
            #expect(dualHere.status == 200 && dualHere.json?["schema"] as? String == "bienestar", "\(String(buffer: dualHere.body))")
            let dualThere = try await list(server, token: tokens["dual"]!, host: mindcare)
            #expect(dualThere.status == 200 && dualThere.json?["schema"] as? String == "mindcare", "\(String(buffer: dualThere.body))")
            // A deactivated user and an unknown token: 401 as DRF answers; a user of another clinic and a member who
            // is no admin: 403 as DRF's permission check answers.
            for (name, status, detail) in [
                ("inactive", 401, "Invalid token."), ("other", 403, "You do not have permission to perform this action."),
                ("member", 403, "You do not have permission to perform this action."),
            ] {
                let answer = try await list(server, token: tokens[name]!, host: bienestar)
                #expect(answer.status == status && answer.json?["detail"] as? String == detail, "\(name): \(answer.status) \(String(buffer: answer.body))")
            }
            #expect(try await list(server, token: "0123456789abcdef0123456789abcdef01234567", host: bienestar).status == 401)
            // Our own tokens: bienestar's opens bienestar's host, not mindcare's.
            #expect(try await list(server, token: server.bienestar, host: bienestar).status == 200)
            let wrongHost = try await list(server, token: server.bienestar, host: mindcare)
            #expect(wrongHost.status == 403 && wrongHost.json?["detail"] as? String == "You do not have permission to perform this action.")
            // A host no clinic has: 404 (django-tenants' answer), whatever the token.
            #expect(try await list(server, token: tokens["dual"]!, host: "nobody.clinic.test").status == 404)
            // The other endpoints take the clinic from the host too: the dual admin downloads mindcare's backup
            // on mindcare's domain, and bienestar's key there is another clinic's (403).
            let mindcareKey = try #require((dualThere.json?["backups"] as? [[String: Any]])?.first?["s3_key"] as? String)
            let download = try await request(
                "POST", server.base + "/api/backups/cloud/download/", token: tokens["dual"]!, body: "{\"s3_key\": \"\(mindcareKey)\"}",
                headers: [("X-Forwarded-Host", mindcare)])
            #expect(download.status == 200)
            let crossed = try await request(
                "POST", server.base + "/api/backups/cloud/download/", token: tokens["dual"]!, body: "{\"s3_key\": \"\(server.keys[1])\"}",
                headers: [("X-Forwarded-Host", mindcare)])
            #expect(crossed.status == 403)
            // Audited with the user's name.
            let audit = try #require(try await request("GET", server.base + "/api/auditlog/", token: tokens["dual"]!, headers: [("X-Forwarded-Host", mindcare)]).json)
            #expect(((audit["results"] as? [[String: Any]])?.first?["actor"] as? String)?.hasPrefix("platform:dual (token ") == true, "\(audit)")

            // Without the host mapping, the README's one-clinic-per-token query: an inactive user, a member and a
            // user of two clinics open nothing; an admin of one clinic opens it.
            let single = try Self.readmeQuery("token_query: \"SELECT c.schema_name, u.username")
            let connection = try server.database.connect()
            for (name, expected) in [("inactive", [String]()), ("member", []), ("other", ["mindcare"]), ("dual", ["bienestar", "mindcare"])] {
                let rows = try connection.query(single, [tokens[name]!], purpose: "test").rows.compactMap { $0.first ?? nil }
                #expect(rows.sorted() == expected, "\(name): \(rows)")
            }
        }
    }
}

@Suite struct RequestHostTests {
    @Test func theHostComesFromATrustedProxyOrTheHostHeader() {
        let proxies = ["127.0.0.1", "::1"]
        #expect(TokenAuthenticator.requestHost(host: "api.internal:8080", forwarded: "Bienestar.Clinic.Test", remoteAddress: "127.0.0.1", trustedProxies: proxies) == "bienestar.clinic.test")
        #expect(TokenAuthenticator.requestHost(host: "x", forwarded: "a.test:443, b.test", remoteAddress: "::1", trustedProxies: proxies) == "a.test")
        // From an address that is no trusted proxy, the forwarded header is the client's word: ignored.
        #expect(TokenAuthenticator.requestHost(host: "mindcare.clinic.test", forwarded: "bienestar.clinic.test", remoteAddress: "10.0.0.9", trustedProxies: proxies) == "mindcare.clinic.test")
        #expect(TokenAuthenticator.requestHost(host: "mindcare.clinic.test.", forwarded: nil, remoteAddress: "127.0.0.1", trustedProxies: proxies) == "mindcare.clinic.test")
        #expect(TokenAuthenticator.requestHost(host: "[::1]:8080", forwarded: nil, remoteAddress: "127.0.0.1", trustedProxies: proxies) == "[::1]")
        for bad in ["", "a.test:80x", "a b.test", "a.test/x", "ä.test", String(repeating: "a", count: 300)] {
            #expect(TokenAuthenticator.requestHost(host: bad, forwarded: nil, remoteAddress: "127.0.0.1", trustedProxies: proxies) == nil, "\(bad)")
        }
        #expect(TokenAuthenticator.requestHost(host: nil, forwarded: nil, remoteAddress: "127.0.0.1", trustedProxies: proxies) == nil)
    }
}

extension HTTPAPITests {
    /// The README's django-tenants `--after-restore` file.
    static func readmeAfterRestore() throws -> String {
        let text = try String(contentsOfFile: readme, encoding: .utf8)
        let start = try #require(text.range(of: "  ```sql\n  -- after-restore.sql: keep bienestar"))
        let end = try #require(text.range(of: "  ```\n", range: start.upperBound..<text.endIndex))
        return text[text.index(start.lowerBound, offsetBy: "  ```sql\n".count)..<end.lowerBound]
            .components(separatedBy: "\n").map { $0.hasPrefix("  ") ? String($0.dropFirst(2)) : $0 }.joined(separator: "\n")
    }

    /// Issue 18: the README's django-tenants snippet, run by a restore into a fresh database of a real
    /// django-tenants schema: this clinic and the public tenant stay, the other clinic goes with the rows that
    /// reference it (domains, memberships), and no foreign key stops the commit.
    @Test func theREADMEsAfterRestoreKeepsThisClinicAndThePublicTenant() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                _ = try await migratePlatform(into: database)
                let environment = services.commandEnvironment(database: database, bucket: bucket)
                let (backupStatus, backupOutput) = try await TestProcess.tenantBackup(["backup"], environment)
                try #require(backupStatus == .exited(0), "\(backupOutput)")
                let file = TestProcess.temporaryFile("after-restore.sql")
                defer { try? FileManager.default.removeItem(atPath: file) }
                try Self.readmeAfterRestore().write(toFile: file, atomically: true, encoding: .utf8)
                let fresh = "\(database.name)_django"
                defer { _ = try? PostgresConnection(connectionString: "dbname=postgres", environment: services.environment).query("DROP DATABASE IF EXISTS \(fresh) WITH (FORCE)", purpose: "test") }
                let (status, output) = try await TestProcess.tenantBackup(
                    ["restore", "--tenant", "bienestar", "--latest", "--target-database", "dbname=\(fresh)", "--create-database", "--with-shared-data", "--after-restore", file],
                    environment)
                try #require(status == .exited(0), "\(output)")
                let restored = try PostgresConnection(connectionString: "dbname=\(fresh)", environment: services.environment)
                func column(_ sql: String) throws -> [String] { try restored.query(sql, purpose: "test").rows.compactMap { $0.first ?? nil }.sorted() }
                #expect(try column("SELECT schema_name FROM public.customers_client") == ["bienestar", "public"])
                #expect(try column("SELECT domain FROM public.customers_domain") == ["bienestar.clinic.test", "clinic.test"])
                #expect(try column("SELECT DISTINCT c.schema_name FROM public.customers_clinicadmin m JOIN public.customers_client c ON c.id = m.client_id") == ["bienestar"])
                #expect(try column("SELECT count(*) FROM bienestar.patients").first.flatMap { Int($0) } ?? 0 > 0)
                #expect(try column("SELECT nspname FROM pg_namespace WHERE nspname = 'mindcare'").isEmpty)
                // The snippet names every table that references the tenant table (the README's own query finds them).
                let snippet = try Self.readmeAfterRestore()
                for table in try column("SELECT conrelid::regclass::text FROM pg_constraint WHERE contype = 'f' AND confrelid = 'public.customers_client'::regclass") {
                    #expect(snippet.contains("DELETE FROM \(table.hasPrefix("public.") ? table : "public." + table)"), "\(table) is not cleaned by the README's snippet")
                }
            }
        }
    }
}
