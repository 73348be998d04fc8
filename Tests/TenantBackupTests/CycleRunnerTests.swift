import Foundation
import Logging
import NIOCore
import Synchronization
import Testing
import TenantBackupTesting

@testable import TenantBackup

/// The cycle's own decisions, run over fake ports (``CyclePorts``): a database that answers from a list and
/// hands out locks it counts, dumps that store a few bytes or fail, the in-memory store and a fixed clock. No
/// server: missing tenants, the audit record after a good backup only, the shared dumps' retention gate, the
/// slot skip from the cycle's one listing, and every lock released however its tenant ends.
@Suite struct CycleRunnerTests {
    static let now = Date(timeIntervalSince1970: 1_795_918_530)  // 2026-11-29 02:15:30 UTC
    static let slot = Date(timeIntervalSince1970: 1_795_917_600)  // 02:00:00, the daily slot

    /// A database that holds `tenants` (and names `unknown` without a schema), hands out locks and counts them.
    final class Database: CycleDatabase {
        struct State {
            var acquired: [String] = []
            var released: [String] = []
        }
        let tenants: [String]
        let unknown: [String]
        let shared: [String]
        /// Held by another session for good: the lock is never ours.
        let busy: Set<String>
        /// Lost while the backup runs (the lock's session ended).
        let lost: Set<String>
        /// Held by another session that does this, then lets go: the lock is ours after a wait.
        let heldWhile: [String: @Sendable () async -> Void]
        let state = Mutex(State())

        init(
            tenants: [String], unknown: [String] = [], shared: [String] = [], busy: Set<String> = [], lost: Set<String> = [],
            heldWhile: [String: @Sendable () async -> Void] = [:]
        ) {
            (self.tenants, self.unknown, self.shared, self.busy, self.lost, self.heldWhile) = (tenants, unknown, shared, busy, lost, heldWhile)
        }

        var acquired: [String] { state.withLock { $0.acquired } }
        var released: [String] { state.withLock { $0.released } }

        func inventory() async throws(ContextError) -> BackupContext.DatabaseInventory {
            .init(serverMajor: 15, serverVersion: "15.8", discovered: DiscoveredTenants(tenants: tenants, unknownNames: unknown), sharedSchemas: shared)
        }

        func lock(_ schema: BackupSchema, waitingUpTo wait: Duration) async throws -> (any SchemaLock)? {
            if busy.contains(schema.name) { return nil }
            let other = heldWhile[schema.name]
            await other?()
            state.withLock { $0.acquired.append(schema.name) }
            return Lock(name: schema.name, waited: other != nil, lost: lost.contains(schema.name), database: self)
        }

        func exportSnapshot() async throws(PostgresError) -> any CycleSnapshot {
            Snapshot()
        }

        struct Lock: SchemaLock {
            let name: String
            let waited: Bool
            let lost: Bool
            let database: Database

            func waitUntilLost(checkingEvery interval: Duration) async -> Bool {
                guard lost else {
                    while !Task.isCancelled { try? await Task.sleep(for: .seconds(1)) }
                    return false
                }
                try? await Task.sleep(for: interval)
                return !Task.isCancelled
            }

            func release() async {
                database.state.withLock { $0.released.append(name) }
            }
        }

        struct Snapshot: CycleSnapshot {
            let name = "00000003-0000001B-1"
            func release() async {}
        }
    }

    /// Dumps that store five bytes and a manifest signed by the cycle's key, or fail, or never end.
    final class Dumps: SchemaDumps {
        let store: MemoryObjectStore
        let failing: Set<String>
        /// Dumps that run until they are stopped.
        let endless: Set<String>
        let dumpedNames = Mutex<[String]>([])

        init(store: MemoryObjectStore, failing: Set<String> = [], endless: Set<String> = []) {
            (self.store, self.failing, self.endless) = (store, failing, endless)
        }

        var dumped: [String] { dumpedNames.withLock { $0 } }

        func locate(serverMajor: Int) async throws(PgDumpError) -> PgDumpBinary {
            PgDumpBinary(path: "/nonexistent/pg_dump", major: 15, minor: 8)
        }

        func backUp(_ job: SchemaBackup, startedAt: Date) async throws(BackupError) -> BackupOutcome {
            dumpedNames.withLock { $0.append(job.schema.name) }
            if failing.contains(job.schema.name) {
                throw BackupError(schema: job.schema, stage: .dump, cause: .other("pg_dump exited with status 1"))
            }
            if endless.contains(job.schema.name) {
                while !Task.isCancelled { try? await Task.sleep(for: .seconds(1)) }
                throw BackupError(schema: job.schema, stage: .dump, cause: .stopped)
            }
            let key = BackupKey(prefix: job.settings.s3.prefix, schema: job.schema, timestamp: startedAt, format: job.settings.backup.backupFormat)
            let body = "dump!"
            store.put(key.key, body)
            let manifest = BackupManifest.describing(key, body: body, sharedBackups: job.sharedBackups)
            let signed = try! job.signer.map { try $0.sign(manifest) } ?? manifest
            let data = try! signed.encoded()
            let eTag = try! await store.put(key: key.manifestKey, body: ByteBuffer(data: data), contentType: "application/json")
            var outcome = BackupOutcome(
                schema: job.schema, key: key.key, manifestKey: key.manifestKey, storedBytes: Int64(body.utf8.count), dumpBytes: 5, sha256: "",
                duration: .zero, tableRowCounts: nil)
            (outcome.manifestETag, outcome.manifestBytes, outcome.manifest) = (eTag, Int64(data.count), signed)
            return outcome
        }
    }

    /// A cycle over these ports, signing with a key of its own (written to a temporary file).
    static func cycle(
        _ store: MemoryObjectStore, _ database: Database, _ dumps: Dumps, keyFile: String = newKeyFile(), _ configure: (inout BackupCycle) -> Void = { _ in }
    ) throws -> BackupCycle {
        var settings = Settings()
        settings.signing.keyFile = keyFile
        settings.tenants.sharedSchemas = database.shared
        var cycle = BackupCycle(settings: settings, environment: [:], logger: .quiet)
        cycle.ports = CyclePorts(store: store, database: database, dumps: dumps, now: { Self.now })
        cycle.lockCheckInterval = .milliseconds(20)
        configure(&cycle)
        return cycle
    }

    static func newKeyFile() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("cycle-runner-\(UUID().uuidString).key").path
    }

    /// A backup of ours already in the bucket: signed with the cycle's key.
    static func putBackup(_ store: MemoryObjectStore, _ tenant: String, at date: Date, cycle: BackupCycle) throws -> BackupKey {
        let key = BackupKey(prefix: "", area: .tenant, schema: tenant, timestamp: date, suffix: ".sql.zst")
        _ = try store.putBackup(key, "older", signedBy: try cycle.context.signingKey())
        return key
    }

    static func name(_ result: SchemaResult) -> String { result.schema.name }

    @Test func aTenantTheRegistryNamesWithoutASchemaIsAFailureOfItsOwn() async throws {
        let store = MemoryObjectStore()
        let database = Database(tenants: ["a", "b"], unknown: ["ghost"])
        let dumps = Dumps(store: store)
        let report = try await Self.cycle(store, database, dumps).run()
        #expect(report.tenants.map(Self.name) == ["a", "b", "ghost"])
        #expect(report.tenants.filter { $0.succeeded }.map(Self.name) == ["a", "b"])
        #expect(report.failures.map(\.stage) == [.discovery])
        #expect(dumps.dumped.sorted() == ["a", "b"])
        // Named on the command line, only the named tenants run: the registry's others are not reported.
        let named = try await Self.cycle(store, database, dumps).run(tenants: ["a"])
        #expect(named.tenants.map(Self.name) == ["a"])
    }

    @Test func onlyAGoodBackupGetsAnAuditRecord() async throws {
        let store = MemoryObjectStore()
        let database = Database(tenants: ["good", "bad"])
        let report = try await Self.cycle(store, database, Dumps(store: store, failing: ["bad"])).run()
        #expect(report.tenants.filter { $0.succeeded }.map(Self.name) == ["good"])
        let records = store.keys.filter { $0.hasPrefix("audit/") }
        #expect(records.count == 1 && records.allSatisfy { $0.hasPrefix(AuditRecord.folder(prefix: "", tenant: "good")) }, "\(records)")
    }

    /// The shared dumps' retention runs only when every shared dump of the cycle succeeded; with
    /// `requireShared` (the API's create) a failed shared dump fails every tenant, and none is dumped.
    @Test(arguments: [false, true])
    func aFailedSharedDumpStopsTheSharedDumpsRetention(sharedFails: Bool) async throws {
        let store = MemoryObjectStore()
        let database = Database(tenants: ["a"], shared: ["public", "extensions"])
        let dumps = Dumps(store: store, failing: sharedFails ? ["extensions"] : [])
        let report = try await Self.cycle(store, database, dumps) { $0.applyRetention = true }.run()
        #expect(report.tenants.allSatisfy { $0.succeeded })
        #expect((report.sharedRetention != nil) == !sharedFails, "\(String(describing: report.sharedRetention))")
        #expect(report.retentionFailures.isEmpty)

        let strict = MemoryObjectStore()
        let strictDumps = Dumps(store: strict, failing: sharedFails ? ["extensions"] : [])
        let required = try await Self.cycle(strict, database, strictDumps) { $0.requireShared = true }.run()
        #expect(required.tenants.allSatisfy { $0.succeeded } == !sharedFails)
        #expect(strictDumps.dumped.contains("a") == !sharedFails)
        #expect(strict.keys.contains { $0.hasPrefix("backups/") } == !sharedFails)
    }

    /// The slot check decides from the cycle's one listing; a tenant whose lock another host held when first
    /// tried is listed again once it is ours, so what that host stored in the meantime skips it too.
    @Test func aTenantBackedUpInThisSlotIsSkippedAndOneBackedUpWhileWeWaitedToo() async throws {
        let store = MemoryObjectStore()
        let keyFile = Self.newKeyFile()
        let signer = try SigningKey.loadOrCreate(path: keyFile).0
        let theirs = BackupKey(prefix: "", area: .tenant, schema: "meanwhile", timestamp: Self.slot.addingTimeInterval(600), suffix: ".sql.zst")
        let database = Database(tenants: ["done", "due", "meanwhile"], heldWhile: [
            "meanwhile": { _ = try? store.putBackup(theirs, "theirs", signedBy: signer) }
        ])
        let dumps = Dumps(store: store)
        let cycle = try Self.cycle(store, database, dumps, keyFile: keyFile) { $0.skipIfBackedUpSince = Self.slot }
        let done = try Self.putBackup(store, "done", at: Self.slot.addingTimeInterval(300), cycle: cycle)
        _ = try Self.putBackup(store, "due", at: Self.slot.addingTimeInterval(-86400), cycle: cycle)
        let report = try await cycle.run()
        #expect(report.skipped == [
            SkippedTenant(schema: "done", reason: .alreadyBackedUp(key: done.key)),
            SkippedTenant(schema: "meanwhile", reason: .alreadyBackedUp(key: theirs.key)),
        ])
        #expect(dumps.dumped == ["due"])
        #expect(report.tenants.map(Self.name) == ["due"] && report.allSucceeded)
    }

    /// The events say what the report says, as it happens: each tenant's start (position and count), then its
    /// result with its retention; every shared schema's and missing tenant's result too; a skipped tenant starts
    /// and has no result.
    @Test func theEventsSayWhatTheReportSaysAsItHappens() async throws {
        let store = MemoryObjectStore()
        let database = Database(tenants: ["a", "b", "skipped"], unknown: ["ghost"], shared: ["public"])
        let events = Mutex<[CycleEvent]>([])
        let cycle = try Self.cycle(store, database, Dumps(store: store, failing: ["b"])) {
            $0.applyRetention = true
            $0.skipIfBackedUpSince = Self.slot
            $0.onEvent = { event in events.withLock { $0.append(event) } }
        }
        _ = try Self.putBackup(store, "skipped", at: Self.slot.addingTimeInterval(60), cycle: cycle)
        let report = try await cycle.run()
        let seen = events.withLock { $0 }
        var started: [String] = []
        var finished: [SchemaResult] = []
        for event in seen {
            switch event {
            case .tenantStarted(let name, let position, let count):
                #expect(count == 3 && position == started.count + 1)
                started.append(name)
            case .finished(let result):
                if result.schema.area == .tenant, result.schema.name != "ghost" { #expect(started.contains(result.schema.name), "\(result.schema) before its start") }
                finished.append(result)
            case .progress:
                break
            }
        }
        #expect(started == ["a", "b", "skipped"])
        // Tenants may end in any order when several run at once; each result is the report's.
        #expect(finished.count == report.shared.count + report.tenants.count)
        for result in finished { #expect((report.shared + report.tenants).contains(result), "\(result.schema)") }
        #expect(finished.first?.schema == .shared("public") && finished.last?.schema == .tenant("ghost"))
        #expect(Set(finished.map(\.schema.name)) == ["public", "a", "b", "ghost"])
        #expect(finished.first { $0.schema.name == "a" }?.retention != nil)
    }

    /// A store that answers one manifest's GET with a forgery of the same length (its signature no longer
    /// verifies), as a lying store or a bucket writer racing the cycle does.
    final class ForgingStore: ObjectStore {
        let inner: MemoryObjectStore
        let forged: String
        init(_ inner: MemoryObjectStore, forging key: String) { (self.inner, self.forged) = (inner, key) }

        func list(prefix: String, limit: Int?) async throws(S3Error) -> [S3ObjectSummary] { try await inner.list(prefix: prefix, limit: limit) }
        func get(key: String, limit: Int) async throws(S3Error) -> ByteBuffer {
            let body = try await inner.get(key: key, limit: limit)
            guard key == forged else { return body }
            var text = String(buffer: body)
            let field = text.range(of: "\"sha256\"")!
            let value = text.range(of: "\"00\"", range: field.upperBound..<text.endIndex)!
            text.replaceSubrange(value, with: "\"11\"")
            return ByteBuffer(string: text)
        }
        func delete(keys: [String]) async throws(S3Error) -> S3DeleteResult { try await inner.delete(keys: keys) }
        func incompleteUploads(prefix: String) async throws(S3Error) -> [S3MultipartUpload] { try await inner.incompleteUploads(prefix: prefix) }
        func abortUpload(key: String, uploadId: String) async throws(S3Error) { try await inner.abortUpload(key: key, uploadId: uploadId) }
        func create(key: String, body: ByteBuffer, contentType: String) async throws(S3Error) { try await inner.create(key: key, body: body, contentType: contentType) }
    }

    /// The adversarial run's attack: an object with no manifest planted just ahead of the clock, and the
    /// cycle's own new manifest answered forged when its retention reads it back. The cycle judges what it
    /// wrote from what it wrote: its new backup is kept, never handed over to the planted object's place.
    @Test func theCyclesOwnNewBackupSurvivesAForgedReadBackOfItsManifest() async throws {
        let store = MemoryObjectStore()
        let new = BackupKey(prefix: "", schema: .tenant("t"), timestamp: Self.now, format: Settings().backup.backupFormat)
        let database = Database(tenants: ["t"])
        var cycle = try Self.cycle(store, database, Dumps(store: store)) { $0.applyRetention = true }
        cycle.ports?.store = ForgingStore(store, forging: new.manifestKey)
        for day in 1...3 { _ = try Self.putBackup(store, "t", at: Self.now.addingTimeInterval(-Double(day) * 86400), cycle: cycle) }
        let planted = BackupKey(prefix: "", area: .tenant, schema: "t", timestamp: Self.now.addingTimeInterval(1200), suffix: ".sql.zst")
        store.put(planted.key, "a planted object, no manifest")
        let report = try await cycle.run()
        #expect(report.allSucceeded && report.retentionFailures.isEmpty, "\(report.tenants)")
        #expect(try report.tenants.first?.result.get().key == new.key)
        #expect(store.keys.contains(new.key) && store.keys.contains(new.manifestKey), "\(store.deletedKeys)")
        #expect(!store.deletedKeys.contains(new.key))
        // And a forged answer is not kept: the next read of that manifest asks the store again.
        #expect(store.reads.filter { $0 == new.manifestKey }.count <= 1)
    }

    /// Whether its backup succeeds, fails, is skipped or loses its lock, and whether its retention runs: every
    /// lock the cycle takes is released once, and a lock it never got is not released.
    @Test func everyLockTakenIsReleasedHoweverTheTenantEnds() async throws {
        let store = MemoryObjectStore()
        let database = Database(tenants: ["good", "failing", "skipped", "lost", "busy"], shared: ["public"], busy: ["busy"], lost: ["lost"])
        let dumps = Dumps(store: store, failing: ["failing"], endless: ["lost"])
        let cycle = try Self.cycle(store, database, dumps) {
            $0.skipIfBackedUpSince = Self.slot
            $0.applyRetention = true
        }
        _ = try Self.putBackup(store, "skipped", at: Self.slot.addingTimeInterval(300), cycle: cycle)
        let report = try await cycle.run()
        #expect(report.skipped.map(\.schema) == ["skipped"])
        let failures = Dictionary(uniqueKeysWithValues: report.failures.map { ($0.schema.name, $0.stage) })
        #expect(failures == ["failing": .dump, "lost": .lock, "busy": .lock], "\(report.failures)")
        #expect(report.tenants.first { $0.schema.name == "good" }?.succeeded == true)
        #expect(database.acquired.sorted() == ["failing", "good", "lost", "public", "skipped"])
        #expect(database.released.sorted() == database.acquired.sorted())
        #expect(!dumps.dumped.contains("busy") && !dumps.dumped.contains("skipped"))
    }
}
