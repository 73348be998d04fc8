import Crypto
import Foundation
import NIOCore
import NIOFoundationCompat
import TenantBackup
import TenantBackupTesting
import Testing

/// Issue 17, acceptance 1, 2 and 7: someone who can write to the bucket (straight to moto, bypassing the
/// verifying proxy, with keys of their own) replaces bienestar's newest backup with a crafted object of the
/// same size. Neither `restore` into the live database, nor into a fresh one, nor a drill applies anything:
/// no file appears on the host, and no row, schema or role changes anywhere.
@Suite(.serialized) struct HostileBucketRestoreTests {  // one attack at a time: each runs dozens of restores
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    /// The attacks, each a statement put in the middle of bienestar's real dump (`MARKER` is a path on this host).
    static func attacks(marker: String, otherDatabase: String) -> [(name: String, sql: String)] {
        [
            ("shell", "\\! touch \(marker)\n"),
            ("connect", "\\c \(otherDatabase)\nCREATE TABLE public.owned (a int);\n"),
            ("commit", "SET lock_timeout = 0; COMMIT;\nUPDATE public.users_user SET email = 'owned@example.com';\n"),
            ("program", "COPY bienestar.patients (id) FROM PROGRAM 'touch \(marker)';\n"),
            ("other clinic", "CREATE SCHEMA mindcare2;\nCREATE TABLE mindcare2.patients (id int);\n"),
        ]
    }

    /// bienestar's stored object with `sql` put just before its first `CREATE TABLE`, zstd-compressed and
    /// padded with a zstd skippable frame to exactly `size` bytes (COPY rows are dropped until it fits).
    static func crafted(from plain: String, inserting sql: String, size: Int) throws -> ByteBuffer {
        guard let anchor = plain.range(of: "CREATE TABLE ") else { throw CraftingFailed() }
        var text = plain
        text.insert(contentsOf: sql, at: anchor.lowerBound)
        while true {
            let compressor = try ZstdCompressor(level: 19)
            var body = try compressor.process(ByteBuffer(string: text))
            var tail = try compressor.finish()
            body.writeBuffer(&tail)
            let padding = size - body.readableBytes - 8
            if padding >= 0 {
                // A skippable frame: decoders pass over it, so the object decodes to the crafted dump.
                body.writeInteger(UInt32(0x184D_2A50), endianness: .little)
                body.writeInteger(UInt32(padding), endianness: .little)
                body.writeRepeatingByte(0, count: padding)
                return body
            }
            // Too big: drop a data row (a line starting with a digit inside COPY data).
            guard let row = text.range(of: "\n1", options: .backwards) else { throw CraftingFailed() }
            let end = text[row.upperBound...].firstIndex(of: "\n") ?? text.endIndex
            text.removeSubrange(row.lowerBound..<end)
        }
    }

    struct CraftingFailed: Error {}

    /// The file an attack would create on the host (`touch PATH`), or a path that never exists.
    static func marker(in sql: String) -> String {
        sql.components(separatedBy: "touch ").dropFirst().first?.components(separatedBy: CharacterSet(charactersIn: "'\n")).first
            ?? "/tmp/tenant-backup-owned-none"
    }

    /// Every table of every non-system schema: rows and an md5 of them; plus the schemas and roles.
    func everything(in database: String) throws -> [String: String] {
        let connection = try PostgresConnection(connectionString: "dbname=\(database)", environment: services.environment)
        var state: [String: String] = [:]
        let tables = try connection.query(
            """
            SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
            """, purpose: "test"
        ).rows.compactMap { $0.first ?? nil }
        for table in tables {
            state[table] = try connection.query("SELECT count(*)::text || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM \(table) t", purpose: "test")
                .rows.first?.first ?? nil
        }
        state["schemas"] = try connection.query("SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace", purpose: "test").rows.first?.first ?? nil
        state["roles"] = try connection.query("SELECT string_agg(rolname || rolsuper::text, ',' ORDER BY rolname) FROM pg_roles", purpose: "test").rows.first?.first ?? nil
        return state
    }

    func databases() throws -> Set<String> {
        let connection = try PostgresConnection(connectionString: "dbname=postgres", environment: services.environment)
        return Set(try connection.query("SELECT datname FROM pg_database", purpose: "test").rows.compactMap { $0.first ?? nil })
    }

    func plainDump(_ stored: ByteBuffer) throws -> String {
        let decompressor = try ZstdDecompressor()
        var plain = try decompressor.process(stored)
        var tail = try decompressor.finish()
        plain.writeBuffer(&tail)
        return String(buffer: plain)
    }

    /// A database with backups of every clinic, bienestar's schema dropped (so a restore into the live database
    /// would go ahead), and the bucket's newest bienestar object replaced by `body` via moto directly.
    func withReplacedBackup(
        _ body: (TestDatabase, [String: String], _ key: String, _ original: ByteBuffer, _ attacker: S3Client) async throws -> Void
    ) async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let environment = services.commandEnvironment(database: database, bucket: bucket)
                let (status, output) = try await TestProcess.tenantBackup(["backup"], environment)
                try #require(status == .exited(0), "\(output)")
                let client = services.s3Client(bucket: bucket)
                let key = try #require(try await client.listKeys(prefix: "backups/bienestar/").first { $0.hasSuffix(".sql.zst") })
                let original = try await client.getObject(key: key)
                _ = try database.connect().query("DROP SCHEMA bienestar CASCADE", purpose: "test")
                try await body(database, environment, key, original, try services.attackerClient(bucket: bucket))
            }
        }
    }

    /// Every way an operator or the daemon reads a backup into a database: into the live one, into a fresh one,
    /// and a drill. Returns (what it was, exit status, output).
    func everyRestore(of key: String, database: TestDatabase, environment: [String: String], extra: [String] = []) async throws -> [(String, Bool, String)] {
        var results: [(String, Bool, String)] = []
        let (live, liveOutput) = try await TestProcess.tenantBackup(
            ["restore", "--tenant", "bienestar", key, "--target-database", "dbname=\(database.name)"] + extra, environment)
        results.append(("live", live == .exited(0), liveOutput))
        let fresh = "\(database.name)_fresh"
        let (created, createdOutput) = try await TestProcess.tenantBackup(
            ["restore", "--tenant", "bienestar", key, "--target-database", "dbname=\(fresh)", "--create-database", "--with-shared-data"] + extra, environment)
        results.append(("fresh", created == .exited(0), createdOutput))
        let (drill, drillOutput) = try await TestProcess.tenantBackup(["verify", "--tenant", "bienestar", key, "--restore"] + extra, environment)
        results.append(("drill", drill == .exited(0), drillOutput))
        return results
    }

    func expectNothingApplied(
        _ results: [(String, Bool, String)], attack: String, key: String, marker: String, before: [String: String], other: TestDatabase,
        otherBefore: [String: String], databasesBefore: Set<String>, database: TestDatabase
    ) throws {
        for (way, succeeded, output) in results {
            #expect(!succeeded, "\(attack), \(way): \(output)")
            #expect(output.contains(key) || output.contains(String(key.split(separator: "/").last!)), "\(attack), \(way): the error names the key: \(output)")
        }
        #expect(!FileManager.default.fileExists(atPath: marker), "\(attack): a file was created on the host")
        #expect(try everything(in: database.name) == before, "\(attack): the live database changed")
        #expect(try everything(in: other.name) == otherBefore, "\(attack): another database changed")
        // (Other tests create and drop databases meanwhile: only this test's own names are compared.)
        #expect(try databases().filter { $0.hasPrefix(database.name) } == databasesBefore.filter { $0.hasPrefix(database.name) }, "\(attack): a database was left behind")
    }

    /// Runs every restore of `key` (``everyRestore(of:database:environment:extra:)``) and checks that none of them
    /// applied anything anywhere; returns what each said.
    func everyRestoreAppliesNothing(
        of key: String, attack: String, marker: String, database: TestDatabase, other: TestDatabase, environment: [String: String], extra: [String] = []
    ) async throws -> [(String, Bool, String)] {
        let before = try everything(in: database.name)
        let otherBefore = try everything(in: other.name)
        let databasesBefore = try databases()
        let results = try await everyRestore(of: key, database: database, environment: environment, extra: extra)
        try expectNothingApplied(
            results, attack: attack, key: key, marker: marker, before: before, other: other, otherBefore: otherBefore, databasesBefore: databasesBefore,
            database: database)
        return results
    }

    @Test func aReplacedObjectOfTheSameSizeAppliesNothingAnywhere() async throws {
        try await TestDatabase.with(services) { other in
            try await withReplacedBackup { database, environment, key, original, attacker in
                let plain = try plainDump(original)
                for attack in Self.attacks(marker: "/tmp/tenant-backup-owned-\(UUID().uuidString)", otherDatabase: other.name) {
                    let marker = Self.marker(in: attack.sql)
                    let body = try Self.crafted(from: plain, inserting: attack.sql, size: original.readableBytes)
                    #expect(body.readableBytes == original.readableBytes)
                    try await attacker.deleteObject(key: key)
                    try await attacker.deleteObject(key: key + BackupKey.markSuffix)  // each attack from scratch
                    try await attacker.putObject(key: key, body: body)
                    let results = try await everyRestoreAppliesNothing(
                        of: key, attack: attack.name, marker: marker, database: database, other: other, environment: environment)
                    for (way, _, output) in results {
                        #expect(output.contains("SHA-256") && (way == "drill" || output.contains("nothing was applied")), "\(attack.name), \(way): \(output)")
                    }
                    // The drill proved it bad against a signed manifest: it is marked, and the mark is read next time.
                    let mark = try BackupMark.decode(Data(buffer: try await attacker.getObject(key: key + BackupKey.markSuffix)))
                    #expect(mark.markedBy == "verify" && mark.signature != nil && mark.key == key)
                    let (again, againOutput) = try await TestProcess.tenantBackup(
                        ["restore", "--tenant", "bienestar", key, "--target-database", "dbname=\(database.name)"], environment)
                    #expect(again != .exited(0) && againOutput.contains("marked broken or foreign by verify"), "\(againOutput)")
                }
            }
        }
    }

    @Test func aSlowedDownloadOfAReplacedObjectStillAppliesNothing() async throws {
        try await TestDatabase.with(services) { other in
            try await withReplacedBackup { database, environment, key, original, attacker in
                let marker = "/tmp/tenant-backup-owned-\(UUID().uuidString)"
                let body = try Self.crafted(from: try plainDump(original), inserting: "\\! touch \(marker)\n", size: original.readableBytes)
                try await attacker.deleteObject(key: key)
                try await attacker.putObject(key: key, body: body)
                // The proxy trickles the object out: were anything applied while it streams, the marker would appear.
                let bucket = environment["AWS_STORAGE_BUCKET_NAME"]!
                try await services.proxy.inject([
                    .init(method: "GET", path: "^/\(bucket)/backups/bienestar/.*zst$", action: .bandwidth, times: 0, bytesPerSecond: 4096)
                ])
                let before = try everything(in: database.name)
                let otherBefore = try everything(in: other.name)
                let databasesBefore = try databases()
                let (status, output) = try await TestProcess.tenantBackup(
                    ["restore", "--tenant", "bienestar", key, "--target-database", "dbname=\(database.name)"], environment)
                #expect(status != .exited(0) && output.contains("nothing was applied"), "\(output)")
                #expect(!FileManager.default.fileExists(atPath: marker))
                #expect(try everything(in: database.name) == before)
                #expect(try everything(in: other.name) == otherBefore)
                #expect(try databases().filter { $0.hasPrefix(database.name) } == databasesBefore.filter { $0.hasPrefix(database.name) })
            }
        }
    }

    @Test func aManifestRewrittenToMatchWithoutTheKeyIsRefusedAndTheFilterStopsTheRest() async throws {
        try await TestDatabase.with(services) { other in
            try await withReplacedBackup { database, environment, key, original, attacker in
                let plain = try plainDump(original)
                let client = services.s3Client(bucket: environment["AWS_STORAGE_BUCKET_NAME"]!)
                let genuine = try BackupManifest.decode(Data(buffer: try await client.getObject(key: key + ".manifest.json")))
                for attack in Self.attacks(marker: "/tmp/tenant-backup-owned-\(UUID().uuidString)", otherDatabase: other.name) {
                    let marker = Self.marker(in: attack.sql)
                    let body = try Self.crafted(from: plain, inserting: attack.sql, size: original.readableBytes)
                    var digest = SHA256Digest()
                    digest.update(body)
                    // The attacker's manifest vouches for the crafted bytes: unsigned, or signed with a key of their own.
                    var forged = genuine
                    forged.sha256 = digest.hex
                    forged.signature = nil
                    let theirs = SigningKey(.init())
                    for manifest in [forged, try theirs.sign(forged)] {
                        try await attacker.deleteObject(key: key + BackupKey.markSuffix)
                        try await attacker.deleteObject(key: key)
                        try await attacker.putObject(key: key, body: body)
                        try await attacker.deleteObject(key: key + ".manifest.json")
                        try await attacker.putObject(key: key + ".manifest.json", body: ByteBuffer(data: try manifest.encoded()))
                        let results = try await everyRestoreAppliesNothing(
                            of: key, attack: attack.name, marker: marker, database: database, other: other, environment: environment)
                        for (way, _, output) in results {
                            #expect(output.contains(manifest.signature == nil ? "unsigned" : "not trust"), "\(attack.name), \(way): \(output)")
                        }
                        // With --trust-unsigned, the bytes match the forged manifest: the filter refuses them.
                        try await attacker.deleteObject(key: key + BackupKey.markSuffix)
                        let trusting = try await everyRestoreAppliesNothing(
                            of: key, attack: attack.name + " (trusted)", marker: marker, database: database, other: other, environment: environment,
                            extra: ["--trust-unsigned"])
                        for (way, _, output) in trusting {
                            #expect(
                                output.contains("refused before anything was applied") || output.contains("would not be restored")
                                    || output.contains("marked broken or foreign"), "\(attack.name), \(way): \(output)")
                        }
                    }
                }
            }
        }
    }

    /// Acceptance 7: a target on another port (a fake server that asks for a cleartext password) gets no
    /// password unless `--inherit-credentials`.
    @Test func aTargetOnAnotherServerGetsNoPasswordUnlessAsked() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                var environment = services.commandEnvironment(database: database, bucket: bucket)
                let (status, output) = try await TestProcess.tenantBackup(["backup", "--tenant", "bienestar"], environment)
                try #require(status == .exited(0), "\(output)")
                let secret = "live-password-\(UUID().uuidString.prefix(8))"
                environment["PGPASSWORD"] = secret
                for inherit in [false, true] {
                    let server = try FakePostgresServer()
                    defer { server.stop() }
                    let (_, restoreOutput) = try await TestProcess.tenantBackup(
                        ["restore", "--tenant", "bienestar", "--latest", "--target-database", "host=127.0.0.1 port=\(server.port) dbname=elsewhere"]
                            + (inherit ? ["--inherit-credentials"] : []), environment)
                    let received = server.receivedPasswords()
                    if inherit {
                        #expect(!received.isEmpty && received.allSatisfy { $0 == secret }, "\(restoreOutput)")
                    } else {
                        #expect(received.isEmpty, "the other server received \(received): \(restoreOutput)")
                    }
                    #expect(!restoreOutput.contains(secret))
                }
            }
        }
    }
}

/// SHA-256 of a buffer, as hex.
struct SHA256Digest {
    private var hasher = Crypto.SHA256()
    mutating func update(_ buffer: ByteBuffer) { buffer.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) } }
    var hex: String { hasher.finalize().map { String(format: "%02x", $0) }.joined() }
}

/// A TCP server on loopback that speaks just enough of PostgreSQL's protocol to ask for a cleartext password,
/// and records what it receives.
final class FakePostgresServer: @unchecked Sendable {
    let process = Process()
    let port: Int
    let log: String

    init() throws {
        log = FileManager.default.temporaryDirectory.appendingPathComponent("fake-pg-\(UUID().uuidString).log").path
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let portFile = log + ".port"
        let script = """
            import socket, struct, sys, threading
            log, port_file = sys.argv[1], sys.argv[2]
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 0)); s.listen(8)
            open(port_file, "w").write(str(s.getsockname()[1]))
            def serve(c):
                try:
                    while True:
                        n = struct.unpack("!I", c.recv(4, socket.MSG_WAITALL))[0]
                        body = c.recv(n - 4, socket.MSG_WAITALL)
                        code = struct.unpack("!I", body[:4])[0]
                        if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest
                            c.sendall(b"N"); continue
                        break
                    c.sendall(b"R" + struct.pack("!II", 8, 3))  # AuthenticationCleartextPassword
                    kind = c.recv(1, socket.MSG_WAITALL)
                    if kind == b"p":
                        n = struct.unpack("!I", c.recv(4, socket.MSG_WAITALL))[0]
                        password = c.recv(n - 4, socket.MSG_WAITALL).rstrip(b"\\0").decode()
                        open(log, "a").write(password + "\\n")
                except Exception:
                    pass
                finally:
                    c.close()
            while True:
                c, _ = s.accept()
                threading.Thread(target=serve, args=(c,), daemon=True).start()
            """
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, log, portFile]
        try process.run()
        var found: Int?
        for _ in 0..<100 {
            if let text = try? String(contentsOfFile: portFile, encoding: .utf8), let value = Int(text) { found = value; break }
            usleep(50_000)
        }
        try? FileManager.default.removeItem(atPath: portFile)
        guard let found else {
            kill(process.processIdentifier, SIGKILL)
            throw CraftingFailed()
        }
        port = found
    }

    struct CraftingFailed: Error {}

    func receivedPasswords() -> [String] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    func stop() {
        // SIGKILL: the test process ignores SIGTERM (its signal handling), and a child inherits that.
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: log)
    }
}
