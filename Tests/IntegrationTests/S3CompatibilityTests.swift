import AsyncHTTPClient
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

/// One S3 implementation of the test services: moto behind the verifying proxy, or Ceph RGW.
struct CompatibleStore: Sendable, CustomStringConvertible {
    let name: String
    let endpoint: URL
    /// What backups ask of it: moto confirms SSE-S3; RGW without an encryption backend applies none, so it
    /// runs with `s3.server_side_encryption: none`.
    let serverSideEncryption: ServerSideEncryption
    var description: String { name }

    var sseSetting: String { serverSideEncryption == .none ? "none" : "AES256" }

    func client(_ services: TestServices, bucket: String) -> S3Client {
        services.s3Client(bucket: bucket, endpoint: endpoint, serverSideEncryption: serverSideEncryption)
    }

    /// The store by name, or `nil` (with a recorded failure when CI requires it) when the services do not run it.
    static func named(_ name: String, _ services: TestServices) -> CompatibleStore? {
        switch name {
        case "moto": return CompatibleStore(name: name, endpoint: services.s3Endpoint, serverSideEncryption: .aes256)
        default:
            guard let url = services.rgwURL else {
                if services.requiresRGW {
                    Issue.record("TENANT_BACKUP_TEST_REQUIRE_RGW=1 but the services run no Ceph RGW (TENANT_BACKUP_TEST_RGW_URL is unset)")
                }
                return nil
            }
            return CompatibleStore(name: name, endpoint: url, serverSideEncryption: .none)
        }
    }
}

/// Issue 19: the product's promises on both real stores, moto and Ceph RGW, through the built executable.
@Suite(.serialized) struct S3CompatibilityTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    static let stores = ["moto", "rgw"]

    /// Adds clinic `grande`, whose dump (~7 MB compressed) goes up as a multipart upload of 5 MiB parts
    /// (``partSizeConfig``): kept small, since the whole suite shares two cores.
    static func addLargeClinic(_ database: TestDatabase) async throws {
        try await database.psql("""
            INSERT INTO public.tenants_clinic (schema_name, name) VALUES ('grande', 'Clínica Grande');
            CREATE SCHEMA grande;
            CREATE TABLE grande.notes AS SELECT g AS id, md5(random()::text) || md5(random()::text) || md5(random()::text) AS body
                FROM generate_series(1, 150000) AS g;
            """)
    }

    /// S3's smallest part size, so that a dump of a few MiB is a multipart upload.
    static let partSizeConfig: String = {
        let path = TestProcess.temporaryFile("compat.yaml")
        try? "backup:\n  part_size: 5MiB\n".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }()

    func environment(_ store: CompatibleStore, database: TestDatabase, bucket: String) -> [String: String] {
        var environment = services.commandEnvironment(database: database, bucket: bucket)
        environment["TENANT_BACKUP_CONFIG"] = Self.partSizeConfig
        environment["AWS_ENDPOINT_URL_S3"] = store.endpoint.absoluteString
        environment["TENANT_BACKUP_S3_SSE"] = store.sseSetting
        return environment
    }

    func withStore(_ name: String, _ body: (CompatibleStore, TestDatabase, String, [String: String]) async throws -> Void) async throws {
        guard let store = CompatibleStore.named(name, services) else { return }
        try await TestDatabase.with(services) { database in
            try await Self.addLargeClinic(database)
            try await TestBucket.with(client: { store.client(services, bucket: $0) }) { bucket in
                try await body(store, database, bucket, environment(store, database: database, bucket: bucket))
            }
        }
    }

    static func run(_ arguments: [String], _ environment: [String: String]) async throws -> (status: TerminationStatus, output: String) {
        try await TestProcess.tenantBackup(arguments, environment)
    }

    static func curl(_ arguments: [String]) async throws -> (status: TerminationStatus, body: [UInt8]) {
        let result = try await Subprocess.run(.name("curl"), arguments: Arguments(["-sS", "--fail"] + arguments), output: .bytes(limit: 64 << 20), error: .discarded)
        return (result.terminationStatus, result.standardOutput)
    }

    @Test(arguments: stores)
    func everyPromiseHoldsOnThisStore(storeName: String) async throws {
        try await withStore(storeName) { store, database, bucket, environment in
            let client = store.client(services, bucket: bucket)
            // backup of every clinic, grande as a multipart upload
            let (backed, backupOutput) = try await Self.run(["backup"], environment)
            try #require(backed == .exited(0), "\(store): \(backupOutput)")
            for clinic in ["bienestar", "mindcare", "grande"] {
                let keys = try await client.listKeys(prefix: "backups/\(clinic)/")
                let object = try #require(keys.first { !$0.hasSuffix(".json") }, "\(store): no backup of \(clinic): \(keys)")
                let manifest = try BackupManifest.decode(Data(buffer: try await client.getObject(key: object + ".manifest.json")))
                #expect(manifest.serverSideEncryption == store.serverSideEncryption.confirmationValue, "\(store): \(clinic)")
                let head = try await client.headObject(key: object)
                #expect(head.size == manifest.bytes)
                if clinic == "grande" { #expect(head.eTag.contains("-"), "\(store): grande was not a multipart upload: \(head.eTag)") }
            }
            #expect(try await client.listMultipartUploads(prefix: "").isEmpty)

            // list
            let (listed, listing) = try await Self.run(["list", "--tenant", "grande", "--json"], environment)
            #expect(listed == .exited(0) && listing.contains("backups/grande/"), "\(store): \(listing)")

            // download, checked against the manifest
            let target = TestProcess.temporaryFile("grande.sql.zst")
            defer { try? FileManager.default.removeItem(atPath: target) }
            let (downloaded, downloadOutput) = try await Self.run(["download", "--tenant", "grande", "--latest", "-o", target], environment)
            #expect(downloaded == .exited(0), "\(store): \(downloadOutput)")
            let grandeKey = try #require(try await client.listKeys(prefix: "backups/grande/").first { !$0.hasSuffix(".json") })
            let grandeSize = try await client.headObject(key: grandeKey).size
            #expect((try FileManager.default.attributesOfItem(atPath: target)[.size] as? Int).map(Int64.init) == grandeSize)

            // presign, fetched by curl
            let (presigned, presignOutput) = try await Self.run(["presign", "--tenant", "bienestar", "--latest", "--json"], environment)
            try #require(presigned == .exited(0), "\(store): \(presignOutput)")
            let url = try #require(try AccessCommandTests.json(presignOutput)["download_url"] as? String)
            let fetched = try await Self.curl([url])
            let bienestarKey = try #require(try await client.listKeys(prefix: "backups/bienestar/").first { !$0.hasSuffix(".json") })
            let bienestarBody = Array(buffer: try await client.getObject(key: bienestarKey))
            #expect(fetched.status == .exited(0) && fetched.body == bienestarBody, "\(store)")

            // verify --restore, restore into a fresh database
            let (verified, verifyOutput) = try await Self.run(["verify", "--tenant", "bienestar", "--restore"], environment)
            #expect(verified == .exited(0), "\(store): \(verifyOutput)")
            let fresh = "\(database.name)_compat"
            defer { _ = try? database.connect().query("DROP DATABASE IF EXISTS \"\(fresh)\" WITH (FORCE)", purpose: "test") }
            let (restored, restoreOutput) = try await Self.run(
                ["restore", "--tenant", "grande", "--latest", "--target-database", "dbname=\(fresh)", "--create-database", "--with-shared-data"], environment)
            #expect(restored == .exited(0), "\(store): \(restoreOutput)")
            if restored == .exited(0) {
                let target = try PostgresConnection(connectionString: "dbname=\(fresh)", environment: services.environment)
                let rows = try target.query("SELECT count(*) FROM grande.notes", purpose: "test").rows
                #expect(rows.first?.first ?? nil == "150000", "\(store)")
            }

            // a second backup of bienestar, the first deleted, then prune
            try await Task.sleep(for: .seconds(1.1))
            let (again, againOutput) = try await Self.run(["backup", "--tenant", "bienestar", "--no-shared"], environment)
            #expect(again == .exited(0), "\(store): \(againOutput)")
            let (deleted, deleteOutput) = try await Self.run(["delete", "--tenant", "bienestar", bienestarKey, "--force"], environment)
            #expect(deleted == .exited(0), "\(store): \(deleteOutput)")
            let (pruned, pruneOutput) = try await Self.run(["prune", "--force"], environment)
            #expect(pruned == .exited(0), "\(store): \(pruneOutput)")
            let remaining = try await client.listKeys(prefix: "backups/bienestar/").filter { !$0.hasSuffix(".json") }
            #expect(remaining.count == 1 && !remaining.contains(bienestarKey), "\(store): \(remaining)")

            // doctor: every capability reported, none failed
            let (doctored, doctorOutput) = try await Self.run(["doctor"], environment)
            #expect(doctored == .exited(0), "\(store): \(doctorOutput)")
            for name in [S3StoreProbe.encryption, S3StoreProbe.conditionalPut, S3StoreProbe.conditionalComplete, S3StoreProbe.awsChunked, S3StoreProbe.multiDelete] {
                #expect(doctorOutput.contains(name + ":"), "\(store): \(name) missing: \(doctorOutput)")
            }
            if store.name == "rgw" {
                #expect(doctorOutput.contains("○ \(S3StoreProbe.conditionalComplete): not supported: ignored"), "\(doctorOutput)")
            } else {
                #expect(doctorOutput.contains("✔ \(S3StoreProbe.encryption)") && doctorOutput.contains("✔ \(S3StoreProbe.conditionalComplete)"), "\(doctorOutput)")
            }

            // run --once
            var once = environment
            once["TENANT_BACKUP_METRICS_LISTEN"] = "off"
            let (ran, runOutput) = try await Self.run(["run", "--once"], once)
            #expect(ran == .exited(0), "\(store): \(runOutput)")

            // the API's list and download
            try await apiListAndDownload(store, environment: environment, key: grandeKey, size: grandeSize)
        }
    }

    func apiListAndDownload(_ store: CompatibleStore, environment base: [String: String], key: String, size: Int64) async throws {
        let port = try TestProcess.freePort()
        let tokensFile = TestProcess.temporaryFile("tokens.json")
        defer { for suffix in ["", ".lock", ".last-used"] { try? FileManager.default.removeItem(atPath: tokensFile + suffix) } }
        let token = try TokenFile(path: tokensFile).create(tenant: "grande", note: "compat").token
        var environment = base
        environment["TENANT_BACKUP_API_TOKENS_FILE"] = tokensFile
        environment["TENANT_BACKUP_API_LISTEN"] = "127.0.0.1:\(port)"
        environment["TENANT_BACKUP_METRICS_LISTEN"] = "off"
        environment["TENANT_BACKUP_SCHEDULE"] = "0 3 * * *"
        let daemon = try DaemonProcess(["run"], environment: environment)
        defer { daemon.signal(SIGTERM) }
        let baseURL = "http://127.0.0.1:\(port)"
        func call(_ method: String, _ path: String, body: String? = nil) async throws -> (Int, ByteBuffer) {
            var request = HTTPClientRequest(url: baseURL + path)
            request.method = .init(rawValue: method)
            request.headers.add(name: "Authorization", value: "Token \(token)")
            if let body {
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: body))
            }
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
            return (Int(response.status.code), try await response.body.collect(upTo: 64 << 20))
        }
        let deadline = ContinuousClock.now + .seconds(60)
        var listed: (Int, ByteBuffer)?
        while ContinuousClock.now < deadline {
            if let answer = try? await call("GET", "/api/backups/cloud/list/"), answer.0 == 200 { listed = answer; break }
            try await Task.sleep(for: .milliseconds(250))
        }
        let list = try #require(listed, "\(store): the API never answered: \(daemon.output.suffix(2000))")
        #expect(String(buffer: list.1).contains(key), "\(store): \(String(buffer: list.1))")
        let (status, body) = try await call("POST", "/api/backups/cloud/download/?format=stored", body: "{\"s3_key\": \"\(key)\"}")
        #expect(status == 200 && Int64(body.readableBytes) == size, "\(store): HTTP \(status), \(body.readableBytes) of \(size) bytes")
        daemon.signal(SIGTERM)
        #expect(await daemon.waitForExit(timeout: .seconds(30)) == 0, "\(daemon.output.suffix(2000))")
    }

    /// Acceptance 3: a sentinel object put at the key a multipart backup has taken, after the upload started
    /// and before it completes (RGW ignores `If-None-Match` on Complete), is never replaced.
    @Test(arguments: stores)
    func aSentinelAtAMultipartBackupsKeyIsNeverReplaced(storeName: String) async throws {
        try await withStore(storeName) { store, _, bucket, base in
            // The real pg_dump, then a pause before it exits: the upload is started and waits to complete.
            let slow = try FakePgDump.make("\(FakePgDump.real) \"$@\"; status=$?; sleep 4; exit $status")
            defer { try? FileManager.default.removeItem(atPath: slow) }
            var environment = base
            environment["TENANT_BACKUP_PG_DUMP"] = slow
            let client = store.client(services, bucket: bucket)
            // Anyone with write access, straight to the store (on moto, past the verifying proxy).
            var attacker = store.name == "moto" ? try services.attackerClient(bucket: bucket) : store.client(services, bucket: bucket)
            attacker.configuration.preventOverwrites = false
            attacker.configuration.serverSideEncryption = .none
            let sentinel = ByteBuffer(string: "sentinel: another writer's object")
            async let backup = Self.run(["backup", "--tenant", "grande", "--no-shared"], environment)
            var placed: String?
            let deadline = ContinuousClock.now + .seconds(60)
            while placed == nil, ContinuousClock.now < deadline {
                if let upload = try await client.listMultipartUploads(prefix: "backups/grande/").first {
                    try await attacker.putObject(key: upload.key, body: sentinel)
                    placed = upload.key
                } else {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            let (status, output) = try await backup
            let key = try #require(placed, "\(store): the multipart upload never appeared: \(output)")
            #expect(status != .exited(0), "\(store): the backup claimed success over another writer's object: \(output)")
            #expect(output.contains("already exists"), "\(store): \(output)")
            #expect(try await client.getObject(key: key) == sentinel, "\(store): the sentinel at \(key) was replaced")
            #expect(try await client.listMultipartUploads(prefix: "").isEmpty, "\(store): an upload was left behind")
            #expect(try await client.listKeys(prefix: "backups/grande/").filter { $0.hasSuffix(".manifest.json") }.isEmpty)
        }
    }

    /// The part a dump ends in was made for a whole part, so what was streamed of it goes again from memory.
    /// Every part waits for half a part before it streams: a dump that ends in the first half of its last part
    /// resends nothing, one that ends past it less than a part. Counted by the uploader on both stores, and on
    /// moto also on the wire by the proxy (the data bytes of every PUT for the key, cut-short ones included).
    @Test(arguments: stores)
    func aDumpEndingMidPartResendsNothingOrLessThanThatPart(storeName: String) async throws {
        guard let store = CompatibleStore.named(storeName, services) else { return }
        try await TestBucket.with(client: { store.client(services, bucket: $0) }) { bucket in
            let client = store.client(services, bucket: bucket)
            let part = 5 << 20
            let cases: [(key: String, bytes: Int, resends: Bool)] = [
                ("short-tail", part + (2 << 20), false),  // last part 2 MiB: under half a part, never streamed
                ("long-tail", part + (4 << 20) + 4321, true),  // last part past half: it streamed and was cut
                ("no-tail", 2 * part, false),  // ends on a part's end
                ("one-part", (3 << 20) + 12345, true),  // one PutObject; the first part had started streaming
            ]
            for (key, size, resends) in cases {
                let bytes = S3ClientIntegrationTests.randomBytes(size)
                let uploader = StreamingUploader(client: client, key: key, partSize: part, partsInFlight: 2, options: S3WriteOptions(), logger: .quiet)
                var rest = bytes
                while rest.readableBytes > 0 { try await uploader.write(rest.readSlice(length: min(64 << 10, rest.readableBytes))!) }
                let result = try await uploader.complete()
                let stored = try await client.getObject(key: key, limit: 64 << 20)
                #expect(stored == bytes, "\(store) \(key)")
                if resends {
                    #expect(result.resentBytes > 0 && result.resentBytes < part, "\(store) \(key): \(result.resentBytes) bytes resent")
                } else {
                    #expect(result.resentBytes == 0, "\(store) \(key): \(result.resentBytes) bytes resent")
                }
                guard store.name == "moto" else { continue }
                try await services.proxy.settle(matching: "^/\(bucket)/\(key)$")
                let puts = try await services.proxy.requests(matching: "^/\(bucket)/\(key)$").filter { $0.method == "PUT" }
                let onTheWire = puts.reduce(0) { $0 + ($1.received ?? 0) } - size
                #expect(onTheWire >= 0 && onTheWire <= result.resentBytes, "\(key): \(onTheWire) bytes resent on the wire, \(result.resentBytes) counted")
            }
        }
    }

    /// Acceptance 2: RGW accepts the encryption header over HTTP (with `rgw_crypt_require_ssl = false`) and
    /// stores plaintext. Backups asking for SSE fail with the message and leave nothing; doctor says ✘.
    @Test func encryptionTheStoreDoesNotApplyFailsTheBackupAndLeavesNothing() async throws {
        guard let rgw = CompatibleStore.named("rgw", services) else { return }
        let store = CompatibleStore(name: "rgw asked for SSE", endpoint: rgw.endpoint, serverSideEncryption: .aes256)
        try await TestDatabase.with(services) { database in
            try await Self.addLargeClinic(database)
            try await TestBucket.with(client: { store.client(services, bucket: $0) }) { bucket in
                let environment = environment(store, database: database, bucket: bucket)
                let client = store.client(services, bucket: bucket)
                for clinic in ["bienestar", "grande"] {
                    let (status, output) = try await Self.run(["backup", "--tenant", clinic, "--no-shared"], environment)
                    #expect(status != .exited(0), "\(clinic): \(output)")
                    #expect(output.contains("encryption requested but not applied by this store"), "\(clinic): \(output)")
                    #expect(output.contains("s3.server_side_encryption"), "\(clinic): \(output)")
                }
                #expect(try await client.listKeys(prefix: "backups/").isEmpty, "an unencrypted backup was left")
                #expect(try await client.listMultipartUploads(prefix: "").isEmpty)
                let (doctored, doctorOutput) = try await Self.run(["doctor"], environment)
                #expect(doctored == .exited(1))
                #expect(doctorOutput.contains("✘ \(S3StoreProbe.encryption): encryption requested but not applied by this store"), "\(doctorOutput)")
                #expect(try await client.listKeys(prefix: "test/").isEmpty, "doctor left its probe objects")
            }
        }
    }

    /// Acceptance 6: a store that keeps other bytes than it was sent (one flipped after the checks) fails the
    /// backup, and nothing of that run lists as a good backup.
    @Test func aStoreThatMangledTheBodyFailsTheBackup() async throws {
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                let environment = services.commandEnvironment(database: database, bucket: bucket)
                try await services.proxy.inject([
                    .init(method: "PUT", path: "^/\(bucket)/backups/bienestar/[^/]*\\.sql\\.zst$", action: .mangle, times: 0)
                ])
                let (status, output) = try await Self.run(["backup", "--tenant", "bienestar", "--no-shared"], environment)
                #expect(status != .exited(0), "\(output)")
                #expect(output.contains("holds other bytes than were sent"), "\(output)")
                let client = services.s3Client(bucket: bucket)
                #expect(try await client.listKeys(prefix: "backups/bienestar/").isEmpty)
                let (_, listing) = try await Self.run(["list", "--tenant", "bienestar"], environment)
                #expect(listing.contains("0 backup(s)"), "\(listing)")
            }
        }
    }

    /// Acceptance 4, RGW's half: a host-name endpoint in virtual-hosted style (in a private mount namespace
    /// with its own /etc/hosts) is answered with RGW's ListAllMyBucketsResult; list, doctor, prune and
    /// run --once fail with the path-style hint. With the default addressing, the same endpoint works.
    @Test func aHostNameEndpointInVirtualHostedStyleOnRGWIsNeverReadAsEmpty() async throws {
        guard let store = CompatibleStore.named("rgw", services) else { return }
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") else {
            Issue.record("needs root and unshare(1) for a private /etc/hosts")
            return
        }
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(client: { store.client(services, bucket: $0) }) { bucket in
                var environment = environment(store, database: database, bucket: bucket)
                let (backed, backupOutput) = try await Self.run(["backup", "--tenant", "bienestar"], environment)
                try #require(backed == .exited(0), "\(backupOutput)")
                let hosts = TestProcess.temporaryFile("hosts")
                defer { try? FileManager.default.removeItem(atPath: hosts) }
                try "127.0.0.1 localhost\n127.0.0.1 rgw.compat.test \(bucket).rgw.compat.test\n".write(toFile: hosts, atomically: true, encoding: .utf8)
                environment["AWS_ENDPOINT_URL_S3"] = "http://rgw.compat.test:\(store.endpoint.port ?? 80)"
                func inNamespace(_ arguments: [String], style: String?) async throws -> (TerminationStatus, String) {
                    var env = environment
                    env["TENANT_BACKUP_S3_ADDRESSING_STYLE"] = style
                    env["TENANT_BACKUP_METRICS_LISTEN"] = "off"
                    let script = "mount --bind \"$0\" /etc/hosts && exec \"$@\""
                    let result = try await Subprocess.run(
                        .path(FilePath("/usr/bin/unshare")), arguments: Arguments(["-m", "--propagation", "private", "/bin/sh", "-c", script, hosts, DaemonProcess.executable] + arguments),
                        environment: .custom(env.map { Array("\($0.key)=\($0.value)\0".utf8) }),
                        output: .string(limit: 4 << 20), error: .string(limit: 4 << 20))
                    return (result.terminationStatus, result.standardOutput + result.standardError)
                }
                for arguments in [["list", "--tenant", "bienestar"], ["doctor"], ["prune", "--force"], ["run", "--once"]] {
                    let (status, output) = try await inNamespace(arguments, style: "virtual")
                    #expect(status != .exited(0), "\(arguments) read RGW's answer as a listing: \(output)")
                    #expect(output.contains("ListAllMyBucketsResult") && output.contains("s3.addressing_style: path"), "\(arguments): \(output)")
                    #expect(!output.contains("0 backup(s)"), "\(output)")
                }
                let (status, output) = try await inNamespace(["list", "--tenant", "bienestar"], style: nil)
                #expect(status == .exited(0) && output.contains("1 backup(s)"), "the default addressing on a host-name endpoint: \(output)")
                #expect(try await store.client(services, bucket: bucket).listKeys(prefix: "backups/bienestar/").count == 2)
            }
        }
    }
}

/// Issue 19, acceptance 5: HTTPS with a private CA, given through `AWS_CA_BUNDLE` or `s3.ca_bundle`.
@Suite struct S3OverHTTPSTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    @Test(arguments: ["AWS_CA_BUNDLE", "s3.ca_bundle"])
    func backupListDownloadAndPresignOverHTTPS(source: String) async throws {
        let https = try #require(services.proxyHTTPSURL, "the services serve no HTTPS endpoint (TENANT_BACKUP_TEST_PROXY_HTTPS_URL)")
        let ca = try #require(services.caBundle)
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                var environment = services.commandEnvironment(database: database, bucket: bucket)
                environment["AWS_ENDPOINT_URL_S3"] = https.absoluteString
                let config = TestProcess.temporaryFile("config.yaml")
                defer { try? FileManager.default.removeItem(atPath: config) }
                // The machine's own AWS_CA_BUNDLE (the system roots) would override the file's setting.
                environment["AWS_CA_BUNDLE"] = nil
                environment["TENANT_BACKUP_S3_CA_BUNDLE"] = nil
                if source == "AWS_CA_BUNDLE" {
                    environment["AWS_CA_BUNDLE"] = ca
                } else {
                    try "s3:\n  ca_bundle: \(ca)\n".write(toFile: config, atomically: true, encoding: .utf8)
                    environment["TENANT_BACKUP_CONFIG"] = config
                }
                let (backed, backupOutput) = try await TestProcess.tenantBackup(["backup", "--tenant", "bienestar", "--no-shared"], environment)
                try #require(backed == .exited(0), "\(backupOutput)")
                let client = services.s3Client(bucket: bucket)
                let key = try #require(try await client.listKeys(prefix: "backups/bienestar/").first { !$0.hasSuffix(".json") })
                let manifest = try BackupManifest.decode(Data(buffer: try await client.getObject(key: key + ".manifest.json")))
                #expect(manifest.serverSideEncryption == "AES256", "the store confirmed SSE: the manifest records it")
                let (listed, listing) = try await TestProcess.tenantBackup(["list", "--tenant", "bienestar"], environment)
                #expect(listed == .exited(0) && listing.contains("1 backup(s)"), "\(listing)")
                let target = TestProcess.temporaryFile("b.sql.zst")
                defer { try? FileManager.default.removeItem(atPath: target) }
                let (downloaded, downloadOutput) = try await TestProcess.tenantBackup(["download", "--tenant", "bienestar", key, "-o", target], environment)
                #expect(downloaded == .exited(0), "\(downloadOutput)")
                let stored = Array(buffer: try await client.getObject(key: key))
                #expect(FileManager.default.contents(atPath: target).map(Array.init) == stored)
                let (presigned, presignOutput) = try await TestProcess.tenantBackup(["presign", "--tenant", "bienestar", key, "--json"], environment)
                try #require(presigned == .exited(0), "\(presignOutput)")
                let url = try #require(try AccessCommandTests.json(presignOutput)["download_url"] as? String)
                #expect(url.hasPrefix("https://"))
                let fetched = try await S3CompatibilityTests.curl(["--cacert", ca, url])
                #expect(fetched.status == .exited(0) && fetched.body == stored)
            }
        }
    }

    @Test func withoutTheCAABackupFailsAtOnceNamingTheCertificateProblem() async throws {
        let https = try #require(services.proxyHTTPSURL)
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(services) { bucket in
                var environment = services.commandEnvironment(database: database, bucket: bucket)
                environment["AWS_ENDPOINT_URL_S3"] = https.absoluteString
                environment["AWS_CA_BUNDLE"] = nil
                environment["TENANT_BACKUP_S3_CA_BUNDLE"] = nil
                let started = ContinuousClock.now
                let (status, output) = try await TestProcess.tenantBackup(["backup", "--tenant", "bienestar", "--no-shared"], environment)
                let took = ContinuousClock.now - started
                #expect(status != .exited(0))
                #expect(took < .seconds(10), "took \(took)")
                #expect(output.contains("CERTIFICATE_VERIFY_FAILED") && output.contains("127.0.0.1") && output.contains("s3.ca_bundle"), "\(output)")
                #expect(!output.contains("retrying") && !output.contains("attempts"), "a certificate problem was retried: \(output)")
            }
        }
    }

    @Test func rgwOverHTTPSWithTheCA() async throws {
        guard let https = services.rgwHTTPSURL else {
            if services.requiresRGW { Issue.record("TENANT_BACKUP_TEST_RGW_HTTPS_URL is unset") }
            return
        }
        let ca = try #require(services.caBundle)
        let store = CompatibleStore(name: "rgw https", endpoint: https, serverSideEncryption: .none)
        try await TestDatabase.with(services) { database in
            try await TestBucket.with(client: { services.s3Client(bucket: $0, endpoint: https, serverSideEncryption: .none, caBundle: ca) }) { bucket in
                var environment = services.commandEnvironment(database: database, bucket: bucket)
                environment["AWS_ENDPOINT_URL_S3"] = https.absoluteString
                environment["AWS_CA_BUNDLE"] = ca
                environment["TENANT_BACKUP_S3_SSE"] = "none"
                let (backed, backupOutput) = try await TestProcess.tenantBackup(["backup", "--tenant", "bienestar", "--no-shared"], environment)
                #expect(backed == .exited(0), "\(store): \(backupOutput)")
                let (listed, listing) = try await TestProcess.tenantBackup(["list", "--tenant", "bienestar"], environment)
                #expect(listed == .exited(0) && listing.contains("1 backup(s)"), "\(listing)")
            }
        }
    }
}
