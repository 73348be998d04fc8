import Foundation
import NIOCore
import TenantBackup
import TenantBackupTesting
import Testing

/// Issue 17: `restore --apply-as ROLE`. What a text filter cannot see (SQL a function builds at run time and a
/// column DEFAULT runs during COPY) runs with the rights of a role that is not a superuser: no server program,
/// no other clinic's schema. The same object restored by the operator's superuser connection does run the
/// program (that is what `--trust-unsigned` without `--apply-as` means, and the README says so). A good
/// legacy dump restores as the role and ends owned by `--owner`, with nothing left to the role.
@Suite(.serialized) struct ApplyAsRoleTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    /// The login role for restores and the owner for what they create, made once by `scripts/dev-services`
    /// (roles are the cluster's: one made while another suite restores would change what its guard compares).
    /// Whatever a test left them in its database is cleared afterwards.
    func withRoles(_ database: TestDatabase, _ body: (_ role: String, _ owner: String) async throws -> Void) async throws {
        let (role, owner) = ("tb_test_role_apply", "tb_test_role_owner")
        let connection = try database.connect()
        let present = try connection.query("SELECT count(*) FROM pg_roles WHERE rolname IN ($1, $2)", [role, owner], purpose: "test").rows.first?.first ?? nil
        try #require(present == "2", "restart the dev services (scripts/dev-services stop; scripts/dev-services start): they create the test roles")
        defer {
            for name in [role, owner] { _ = try? connection.query("DROP OWNED BY \(name)", purpose: "test") }
        }
        try await body(role, owner)
    }

    struct Scenario {
        let database: TestDatabase
        let bucket: String
        let environment: [String: String]
        let role: String
        let owner: String
        /// bienestar's own plain dump, as the old system made it (`pg_dump -n bienestar`).
        let own: String
    }

    /// A database with every clinic backed up (signed), the test roles, and bienestar's own plain dump.
    func withScenario(_ body: (Scenario) async throws -> Void) async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                try await withRoles(database) { role, owner in
                    let environment = services.commandEnvironment(database: database, bucket: bucket)
                    let (status, output) = try await TestProcess.tenantBackup(["backup"], environment)
                    try #require(status == .exited(0), "\(output)")
                    let own = try await LegacyObjectTests().pgDump(["-n", "bienestar"], database: database)
                    try await body(Scenario(database: database, bucket: bucket, environment: environment, role: role, owner: owner, own: own))
                }
            }
        }
    }

    /// An old-system key in bienestar's folder, `days` days ago (negative: in the future).
    static func legacyKey(daysAgo days: Double) -> String {
        BackupKey(prefix: "", schema: .tenant("bienestar"), timestamp: Date().addingTimeInterval(-days * 86400), suffix: ".sql").key
    }

    /// bienestar's own dump with a table whose DEFAULT calls a function that builds its SQL at run time.
    static func withHiddenSQL(_ own: String, building sql: [String]) -> String {
        let pieces = sql.map { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" }.joined(separator: " || ")
        let block = """
            SET default_table_access_method = heap;

            CREATE FUNCTION bienestar.zz_hidden() RETURNS integer
                LANGUAGE plpgsql
                AS $f$
            BEGIN
              EXECUTE \(pieces);
              RETURN 1;
            END
            $f$;

            CREATE TABLE bienestar.zz_hidden (a integer, b integer DEFAULT bienestar.zz_hidden());

            COPY bienestar.zz_hidden (a) FROM stdin;
            1
            \\.

            """
        return own.replacingOccurrences(of: "SET default_table_access_method = heap;\n", with: block)
    }

    /// What the role owns or holds (pg_shdepend rows) seen from database `name`.
    func roleHolds(_ role: String, inDatabase name: String) throws -> Int {
        let count = try PostgresConnection(connectionString: "dbname=\(name)", environment: services.environment).query(
            "SELECT count(*) FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid WHERE r.rolname = $1", [role], purpose: "test").rows.first?.first ?? nil
        return Int(count ?? "-1") ?? -1
    }

    func roleHolds(_ role: String, in database: TestDatabase) throws -> Int {
        try roleHolds(role, inDatabase: database.name)
    }

    @Test func whatTheFilterCannotSeeRunsWithTheRolesRightsOnly() async throws {
        try await withScenario { scenario in
            let (database, bucket, environment, role, own, owner) = (scenario.database, scenario.bucket, scenario.environment, scenario.role, scenario.own, scenario.owner)
            let marker = "/tmp/tenant-backup-apply-as-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: marker) }
            let program = Self.withHiddenSQL(own, building: ["CO", "PY (SELECT 1) TO PRO", "GRAM ", "'touch \(marker)'"])
            let otherClinic = Self.withHiddenSQL(own, building: ["INSERT INTO mind", "care.patients SELECT * FROM mind", "care.patients"])
            let attacker = try services.attackerClient(bucket: bucket)
            let programKey = Self.legacyKey(daysAgo: 3)
            let otherKey = Self.legacyKey(daysAgo: 4)
            try await attacker.putObject(key: programKey, body: ByteBuffer(string: program))
            try await attacker.putObject(key: otherKey, body: ByteBuffer(string: otherClinic))
            _ = try database.connect().query("DROP SCHEMA bienestar CASCADE", purpose: "test")
            let before = try HostileBucketRestoreTests().everything(in: database.name)
            let target = ["--target-database", "dbname=\(database.name)", "--trust-unsigned"]

            // As the role: the program is refused by the server, nothing is applied, the role keeps nothing.
            for (key, denial) in [(programKey, "pg_execute_server_program"), (otherKey, "permission denied for schema mindcare")] {
                let (refused, refusedOutput) = try await TestProcess.tenantBackup(
                    ["restore", "--tenant", "bienestar", key] + target + ["--apply-as", role, "--owner", owner], environment)
                #expect(refused == .exited(1), "\(refusedOutput)")
                #expect(refusedOutput.contains(denial) && refusedOutput.contains("nothing was restored"), "\(refusedOutput)")
                #expect(try HostileBucketRestoreTests().everything(in: database.name) == before, "\(key) changed the database")
                #expect(try roleHolds(role, in: database) == 0)
            }
            #expect(!FileManager.default.fileExists(atPath: marker))

            // A role that can reach another clinic's schema, or a superuser, or a superuser owner: refused
            // before anything runs.
            _ = try database.connect().query("GRANT USAGE ON SCHEMA mindcare TO \(role)", purpose: "test")
            let (reaching, reachingOutput) = try await TestProcess.tenantBackup(
                ["restore", "--tenant", "bienestar", otherKey] + target + ["--apply-as", role, "--owner", owner], environment)
            #expect(reaching == .exited(1) && reachingOutput.contains("can use other clinics' schemas (mindcare)"), "\(reachingOutput)")
            _ = try database.connect().query("REVOKE USAGE ON SCHEMA mindcare FROM \(role)", purpose: "test")
            let (superuser, superuserOutput) = try await TestProcess.tenantBackup(
                ["restore", "--tenant", "bienestar", otherKey] + target + ["--apply-as", "postgres", "--owner", owner], environment)
            #expect(superuser == .exited(1) && superuserOutput.contains("SUPERUSER"), "\(superuserOutput)")
            let (defaultOwner, defaultOwnerOutput) = try await TestProcess.tenantBackup(
                ["restore", "--tenant", "bienestar", otherKey] + target + ["--apply-as", role], environment)
            #expect(defaultOwner == .exited(1) && defaultOwnerOutput.contains("--owner"), "\(defaultOwnerOutput)")
            #expect(try HostileBucketRestoreTests().everything(in: database.name) == before)

            // The operator's superuser connection runs the same program: the layer --apply-as adds is real.
            let (applied, appliedOutput) = try await TestProcess.tenantBackup(["restore", "--tenant", "bienestar", programKey] + target, environment)
            #expect(applied == .exited(0), "\(appliedOutput)")
            #expect(FileManager.default.fileExists(atPath: marker))
        }
    }

    @Test func aGoodDumpRestoresAsTheRoleAndEndsWithItsOwner() async throws {
        try await withScenario { scenario in
            let (database, bucket, environment, role, own, owner) = (scenario.database, scenario.bucket, scenario.environment, scenario.role, scenario.own, scenario.owner)
            let rows = try HostileBucketRestoreTests().everything(in: database.name).filter { $0.key.hasPrefix("bienestar.") }
            let legacyKey = Self.legacyKey(daysAgo: 1)
            try await services.s3Client(bucket: bucket).putObject(key: legacyKey, body: ByteBuffer(string: own))
            _ = try database.connect().query("DROP SCHEMA bienestar CASCADE", purpose: "test")

            // The old system's dump, into the live database.
            let (restored, restoredOutput) = try await TestProcess.tenantBackup(
                ["restore", "--tenant", "bienestar", legacyKey, "--target-database", "dbname=\(database.name)", "--trust-unsigned",
                 "--apply-as", role, "--owner", owner], environment)
            #expect(restored == .exited(0), "\(restoredOutput)")
            #expect(try HostileBucketRestoreTests().everything(in: database.name).filter { $0.key.hasPrefix("bienestar.") } == rows)
            let owners = try database.connect().query(
                """
                SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'bienestar'
                UNION SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'bienestar'
                """, purpose: "test").rows.compactMap { $0.first ?? nil }
            #expect(owners == [owner])
            #expect(try roleHolds(role, in: database) == 0)

            // Our signed backup into a fresh database: the shared dumps by the operator, the clinic's as the role.
            let fresh = "tb_apply_fresh_\(UUID().uuidString.prefix(8).lowercased())"
            defer { _ = try? PostgresConnection(connectionString: "dbname=postgres", environment: services.environment).query("DROP DATABASE IF EXISTS \(fresh) WITH (FORCE)", purpose: "test") }
            let (created, createdOutput) = try await TestProcess.tenantBackup(
                ["restore", "--tenant", "bienestar", "--latest", "--target-database", "dbname=\(fresh)", "--create-database", "--with-shared-data",
                 "--apply-as", role, "--owner", owner], environment)
            #expect(created == .exited(0), "\(createdOutput)")
            #expect(createdOutput.contains("with the shared dump"), "\(createdOutput)")
            let freshOwners = try PostgresConnection(connectionString: "dbname=\(fresh)", environment: services.environment).query(
                "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'bienestar'",
                purpose: "test").rows.compactMap { $0.first ?? nil }
            #expect(freshOwners == [owner])
            #expect(try roleHolds(role, inDatabase: fresh) == 0)
        }
    }

    /// `adopt --prove-as`: a good legacy dump is proven by a restore as the role and gets a manifest, unsigned
    /// (a proof as a small role does not vouch for what the dump does as the operator's: a trial showed a
    /// proven, signed dump running a program in a later drill); one whose DEFAULT runs a program at COPY time
    /// fails its proof, runs nothing, and is marked.
    @Test func adoptProvesAsTheRoleWritesTheGoodUnsignedAndMarksTheHidden() async throws {
        try await withScenario { scenario in
            let (database, bucket, environment, role, own) = (scenario.database, scenario.bucket, scenario.environment, scenario.role, scenario.own)
            let marker = "/tmp/tenant-backup-prove-as-\(UUID().uuidString)"
            defer { try? FileManager.default.removeItem(atPath: marker) }
            let client = services.s3Client(bucket: bucket)
            let good = Self.legacyKey(daysAgo: 2)
            let hidden = Self.legacyKey(daysAgo: 3)
            try await client.putObject(key: good, body: ByteBuffer(string: own))
            try await client.putObject(
                key: hidden, body: ByteBuffer(string: Self.withHiddenSQL(own, building: ["CO", "PY (SELECT 1) TO PRO", "GRAM ", "'touch \(marker)'"])))
            let before = try HostileBucketRestoreTests().everything(in: database.name)

            let (adopted, adoptOutput) = try await TestProcess.tenantBackup(["adopt", "--tenant", "bienestar", "--prove-as", role], environment)
            #expect(adopted == .exited(1), "\(adoptOutput)")
            #expect(adoptOutput.contains("✔ \(good): a complete dump of 3 table(s); proven by a restore, unsigned manifest written"), "\(adoptOutput)")
            #expect(adoptOutput.contains("✘ \(hidden): left alone: its proof restore"), "\(adoptOutput)")
            #expect(adoptOutput.contains("pg_execute_server_program"), "\(adoptOutput)")
            #expect(!FileManager.default.fileExists(atPath: marker))
            let objects = Set(try await client.listKeys(prefix: "backups/bienestar/"))
            #expect(objects.contains(hidden + BackupKey.markSuffix) && !objects.contains(hidden + ".manifest.json"))
            let manifest = try BackupManifest.decode(Data(buffer: try await client.getObject(key: good + ".manifest.json")))
            #expect(manifest.adopted == true && manifest.signature == nil)
            #expect(try HostileBucketRestoreTests().everything(in: database.name) == before)
            #expect(try roleHolds(role, in: database) == 0)

            // Still unsigned: a drill needs --trust-unsigned, and then as the role.
            let (unsigned, unsignedOutput) = try await TestProcess.tenantBackup(["verify", "--tenant", "bienestar", good, "--restore"], environment)
            #expect(unsigned == .exited(1) && unsignedOutput.contains("unsigned"), "\(unsignedOutput)")
            let (verified, verifyOutput) = try await TestProcess.tenantBackup(
                ["verify", "--tenant", "bienestar", good, "--restore", "--trust-unsigned", "--apply-as", role], environment)
            #expect(verified == .exited(0) && verifyOutput.contains("✔ \(good)"), "\(verifyOutput)")

            // A key dated in the future is no backup of ours: left alone.
            let future = Self.legacyKey(daysAgo: -3)
            try await client.putObject(key: future, body: ByteBuffer(string: own))
            let (again, againOutput) = try await TestProcess.tenantBackup(["adopt", "--tenant", "bienestar"], environment)
            #expect(again == .exited(1) && againOutput.contains("✘ \(future): left alone: its name dates it in the future"), "\(againOutput)")
        }
    }

    /// From the adversarial trial of --apply-as: what a role may do to itself at run time (its password, its
    /// defaults in another database), what CREATE on the database allowed (a publication), and a second
    /// session of the role planting objects for the hand-over. Each is refused or undone; nothing stays.
    @Test func whatTheRoleMayDoToItselfIsUndoneAndASecondSessionIsRefused() async throws {
        try await withScenario { scenario in
            let (database, bucket, environment, role, own, owner) = (scenario.database, scenario.bucket, scenario.environment, scenario.role, scenario.own, scenario.owner)
            let attacker = try services.attackerClient(bucket: bucket)
            let attacks: [(String, [String], String)] = [
                ("its password", ["ALTER ROLE ", "\(role) PASSWORD 'pwned-by-dump'"], "changed the password of role \(role)"),
                ("its defaults in another database", ["ALTER ROLE ", "\(role) IN DATABASE postgres SET work_mem = '77kB'"], "acted outside schema"),
                ("a publication", ["CREATE PUBLI", "CATION tb_test_pub FOR TABLE bienestar.zz_hidden"], "permission denied"),
            ]
            _ = try database.connect().query("DROP SCHEMA bienestar CASCADE", purpose: "test")
            let before = try HostileBucketRestoreTests().everything(in: database.name)
            let connection = try database.connect()
            for (index, (name, sql, refusal)) in attacks.enumerated() {
                let key = Self.legacyKey(daysAgo: Double(index + 3))
                try await attacker.putObject(key: key, body: ByteBuffer(string: Self.withHiddenSQL(own, building: sql)))
                let (refused, refusedOutput) = try await TestProcess.tenantBackup(
                    ["restore", "--tenant", "bienestar", key, "--target-database", "dbname=\(database.name)", "--trust-unsigned",
                     "--apply-as", role, "--owner", owner], environment)
                #expect(refused == .exited(1) && refusedOutput.contains(refusal), "\(name): \(refusedOutput)")
                #expect(try HostileBucketRestoreTests().everything(in: database.name) == before, "\(name) left something")
                #expect(try roleHolds(role, in: database) == 0, "\(name)")
                let state = try connection.query(
                    "SELECT rolpassword IS NULL, rolconnlimit, (SELECT count(*) FROM pg_db_role_setting s WHERE s.setrole = a.oid), (SELECT count(*) FROM pg_publication) "
                        + "FROM pg_authid a WHERE rolname = $1", [role], purpose: "test").rows.first
                #expect(state == ["t", "-1", "0", "0"], "\(name): \(String(describing: state))")
            }

            // Another session logged in as the role: refused before anything, and nothing given to the role.
            let good = Self.legacyKey(daysAgo: 10)
            try await attacker.putObject(key: good, body: ByteBuffer(string: own))
            let second = try PostgresConnection(connectionString: "dbname=\(database.name) user=\(role)", environment: services.environment)
            #expect(try second.query("SELECT current_user", purpose: "test").rows.first?.first == role)
            let (busy, busyOutput) = try await TestProcess.tenantBackup(
                ["restore", "--tenant", "bienestar", good, "--target-database", "dbname=\(database.name)", "--trust-unsigned",
                 "--apply-as", role, "--owner", owner], environment)
            #expect(busy == .exited(1) && busyOutput.contains("session(s) are logged in as the role"), "\(busyOutput)")
            #expect(try HostileBucketRestoreTests().everything(in: database.name) == before)
            #expect(try roleHolds(role, in: database) == 0)
        }
    }
}
