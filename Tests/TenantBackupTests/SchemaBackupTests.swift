import Crypto
import Foundation
import NIOCore
import Synchronization
import Testing
import TenantBackupTesting

@testable import TenantBackup

/// One schema's backup over its ports: a dump that yields bytes, fails, comes out empty or never ends, into the
/// in-memory store. A failing or stopped pg_dump never leaves an object; a taken key is never replaced; a
/// manifest the store refuses fails the backup and keeps the object. (The integration suites keep one real
/// pg_dump of each.)
@Suite struct SchemaBackupTests {
    static let startedAt = Date(timeIntervalSince1970: 1_795_917_600)
    static let dump = [
        "--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE bienestar.notes (id integer, body text);\n",
        "COPY bienestar.notes (id, body) FROM stdin;\n1\tfirst\n2\tsec",
        "ond\n\\.\n\n--\n-- PostgreSQL database dump complete\n--\n\n",
    ]

    /// A pg_dump as a test wants it.
    final class FakeDump: DumpLauncher {
        enum Behaviour: Sendable {
            case output([String])
            case failsAfter([String], PgDumpFailure.Reason)
            case empty
            case endless
        }

        let behaviour: Behaviour
        let launched = Mutex<[PgDumpProcess]>([])

        init(_ behaviour: Behaviour) { self.behaviour = behaviour }

        func dump(_ process: PgDumpProcess, consume: (ByteBuffer) async throws -> Void) async throws(PgDumpFailure) -> PgDumpProcess.Outcome {
            launched.withLock { $0.append(process) }
            func yield(_ chunks: [String]) async throws(PgDumpFailure) -> Int64 {
                var bytes: Int64 = 0
                for chunk in chunks {
                    do {
                        try await consume(ByteBuffer(string: chunk))
                    } catch {
                        throw PgDumpFailure(reason: .consumerFailed("\(error)"), stderr: "")
                    }
                    bytes += Int64(chunk.utf8.count)
                }
                return bytes
            }
            switch behaviour {
            case .output(let chunks):
                return PgDumpProcess.Outcome(bytes: try await yield(chunks), stderr: "")
            case .failsAfter(let chunks, let reason):
                _ = try await yield(chunks)
                throw PgDumpFailure(reason: reason, stderr: "pg_dump: error: query failed: permission denied for table notes")
            case .empty:
                return PgDumpProcess.Outcome(bytes: 0, stderr: "")
            case .endless:
                while !Task.isCancelled {
                    _ = try await yield(["1\tmore\n"])
                    try? await Task.sleep(for: .milliseconds(5))
                }
                throw PgDumpFailure(reason: .cancelled, stderr: "")
            }
        }
    }

    static let signer = SigningKey(.init())

    static func job() -> SchemaBackup {
        var job = SchemaBackup(
            schema: .tenant("bienestar"), settings: Settings(), pgDump: PgDumpBinary(path: "/nonexistent/pg_dump", major: 15, minor: 8), serverVersion: "15.8",
            environment: [:], logger: .quiet)
        job.sizeEstimate = 4096
        job.signer = signer
        return job
    }

    static let key = BackupKey(prefix: "", schema: .tenant("bienestar"), timestamp: startedAt, format: Settings().backup.backupFormat)

    static func run(_ job: SchemaBackup, _ store: MemoryObjectStore, _ dump: FakeDump) async -> Result<BackupOutcome, BackupError> {
        do {
            return .success(try await job.run(startedAt: startedAt, store: store, launcher: dump))
        } catch {
            return .failure(error)
        }
    }

    @Test func aGoodDumpIsStoredWholeWithItsSignedManifest() async throws {
        let store = MemoryObjectStore()
        let dump = FakeDump(.output(Self.dump))
        let outcome = try await Self.run(Self.job(), store, dump).get()
        #expect(outcome.key == Self.key.key && outcome.manifestKey == Self.key.manifestKey)
        #expect(dump.launched.withLock { $0.first?.arguments.joined(separator: " ").contains("bienestar") } == true)
        let stored = try await store.get(key: Self.key.key, limit: 1 << 20)
        #expect(Int64(stored.readableBytes) == outcome.storedBytes)
        #expect(outcome.sha256 == SHA256.hash(data: stored.readableBytesView).map { String(format: "%02x", $0) }.joined())
        // The stored bytes are the dump, through the format's own read stages.
        var decoded = StageChain(try Self.key.format.makeReadStages())
        var plain = try decoded.process(stored)
        var tail = try decoded.finish()
        plain.writeBuffer(&tail)
        #expect(String(buffer: plain) == Self.dump.joined())
        let manifest = try BackupManifest.decode(Data(buffer: try await store.get(key: Self.key.manifestKey, limit: 1 << 20)))
        #expect(manifest.describes(key: Self.key.key, bytes: outcome.storedBytes) && manifest.sha256 == outcome.sha256)
        #expect(manifest.dumpBytes == Int64(Self.dump.joined().utf8.count))
        #expect(ManifestTrust(keys: [Self.signer.publicKey]).verdict(for: manifest).isTrusted)
        #expect(manifest.tableRowCounts?.values.reduce(0, +) == 2)
        #expect(outcome.manifestETag != nil && outcome.manifestBytes != nil)
    }

    /// pg_dump fails midway (after some bytes went into the upload), or is killed, or exits 0 with nothing:
    /// the upload is aborted, no object appears and the local copy is removed.
    @Test(arguments: [
        FakeDump.Behaviour.failsAfter([dump[0]], .exited(1)),
        .failsAfter(dump, .killed(9)),
        .failsAfter([], .launchFailed("no such file")),
        .empty,
    ])
    func aDumpThatFailsLeavesNoObjectAndNoLocalCopy(behaviour: FakeDump.Behaviour) async throws {
        let store = MemoryObjectStore()
        var job = Self.job()
        let localCopy = TestProcess.temporaryFile("local.sql.zst")
        job.localCopyPath = localCopy
        let result = await Self.run(job, store, FakeDump(behaviour))
        guard case .failure(let error) = result else {
            Issue.record("a failed dump was a backup")
            return
        }
        #expect(error.stage == .dump, "\(error)")
        #expect(store.keys.isEmpty, "\(store.keys)")
        #expect(store.uploadsAborted == [Self.key.key])
        #expect(!FileManager.default.fileExists(atPath: localCopy))
        #expect(error.description.hasPrefix("tenant bienestar:"), "\(error.description)")
    }

    @Test func aStoppedDumpLeavesNoObject() async throws {
        let store = MemoryObjectStore()
        let job = Self.job()
        let running = Task { await Self.run(job, store, FakeDump(.endless)) }
        try await Task.sleep(for: .milliseconds(100))
        running.cancel()
        let result = await running.value
        guard case .failure(let error) = result else {
            Issue.record("a stopped dump was a backup")
            return
        }
        #expect(error.stage == .dump && error.cause == .stopped, "\(error)")
        #expect(store.keys.isEmpty)
    }

    /// A key already taken (another host's backup in the same second, or a bucket writer's object) is never
    /// replaced: the backup fails and the object is the other's still.
    @Test func aTakenKeyIsNeverReplaced() async throws {
        let store = MemoryObjectStore()
        store.put(Self.key.key, "theirs")
        let result = await Self.run(Self.job(), store, FakeDump(.output(Self.dump)))
        guard case .failure(let error) = result else {
            Issue.record("an object was replaced")
            return
        }
        #expect(error.stage == .completion && error.cause == .alreadyExists(key: Self.key.key), "\(error)")
        #expect(String(buffer: try await store.get(key: Self.key.key, limit: 1 << 20)) == "theirs")
        #expect(!store.keys.contains(Self.key.manifestKey))
    }

    /// Without its signed manifest nothing vouches for the object: the backup fails (the next cycle makes a
    /// good one) and the object is kept.
    @Test func aManifestTheStoreRefusesFailsTheBackupAndKeepsTheObject() async throws {
        let store = MemoryObjectStore()
        store.failWrites(to: Self.key.manifestKey)
        let result = await Self.run(Self.job(), store, FakeDump(.output(Self.dump)))
        guard case .failure(let error) = result else {
            Issue.record("a backup without its manifest succeeded")
            return
        }
        guard case .manifestNotWritten(let key, _) = error.cause else {
            Issue.record("\(error)")
            return
        }
        #expect(key == Self.key.key && error.stage == .completion)
        #expect(store.keys == [Self.key.key])
    }
}
