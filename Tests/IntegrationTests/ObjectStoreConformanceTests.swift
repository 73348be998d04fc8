import Crypto
import Foundation
import NIOCore
import TenantBackup
import TenantBackupTesting
import Testing

/// One suite, every ``ObjectStore``: the in-memory store the unit tests of the catalog, retention and the
/// cycle run on must answer as the real stores do, or those tests prove nothing (restic's
/// `internal/backend/test` suite is the model: the same cases for every backend). Each case runs against
/// `MemoryObjectStore`, moto behind the verifying proxy, and Ceph RGW.
@Suite struct ObjectStoreConformanceTests {
    let services: TestServices

    init() throws {
        services = try TestServices()
    }

    static let backends = ["memory", "moto", "rgw"]

    /// A store under test, with what the cases need that the port does not offer: starting an upload.
    struct Backend {
        let name: String
        let store: any ObjectStore
        let startUpload: (String) async throws -> Void
    }

    func withBackend(_ name: String, _ body: (Backend) async throws -> Void) async throws {
        guard name != "memory" else {
            let memory = MemoryObjectStore()
            try await body(Backend(name: name, store: memory, startUpload: { memory.startUpload(key: $0, initiated: Date()) }))
            return
        }
        guard let store = CompatibleStore.named(name, services) else { return }
        try await TestBucket.with(client: { store.client(services, bucket: $0) }) { bucket in
            let client = store.client(services, bucket: bucket)
            try await body(Backend(name: name, store: client, startUpload: { _ = try await client.createMultipartUpload(key: $0) }))
        }
    }

    static func body(_ size: Int) -> ByteBuffer {
        ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
    }

    static func md5(_ body: ByteBuffer) -> String {
        Insecure.MD5.hash(data: body.readableBytesView).map { String(format: "%02x", $0) }.joined()
    }

    @Test(arguments: backends)
    func listsEveryObjectUnderAPrefixInByteOrderWithItsSizeAndETag(backend name: String) async throws {
        try await withBackend(name) { backend in
            // Keys that sort differently as bytes, as characters and case-insensitively; siblings of the prefix.
            let inside = ["t/a", "t/b/c", "t/B", "t/é", "t/a b", "t/%41", "t/z"]
            for (index, key) in (inside + ["t-other/x", "u/t/a"]).enumerated() {
                try await backend.store.create(key: key, body: Self.body(10 + index), contentType: "application/octet-stream")
            }
            let listed = try await backend.store.list(prefix: "t/", limit: nil)
            let byteOrder = inside.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            #expect(listed.map(\.key) == byteOrder, "\(name)")
            for object in listed {
                let index = inside.firstIndex(of: object.key)!
                #expect(object.size == Int64(10 + index), "\(name): \(object.key)")
                #expect(object.eTag == Self.md5(Self.body(10 + index)), "\(name): \(object.key)")
                let modified = try #require(object.lastModified, "\(name): \(object.key) listed without a date")
                #expect(abs(modified.timeIntervalSinceNow) < 300, "\(name): \(object.key) listed as modified \(modified)")
            }
            let firstTwo = try await backend.store.list(prefix: "t/", limit: 2)
            #expect(firstTwo.map(\.key) == Array(byteOrder.prefix(2)), "\(name)")
            let none = try await backend.store.list(prefix: "nothing/", limit: nil)
            #expect(none.isEmpty, "\(name)")
        }
    }

    @Test(arguments: backends)
    func readsTheBytesStoredAndRefusesAMissingKeyOrOneLargerThanTheLimit(backend name: String) async throws {
        try await withBackend(name) { backend in
            let stored = Self.body(70_000)
            try await backend.store.create(key: "r/object", body: stored, contentType: "application/octet-stream")
            let read = try await backend.store.get(key: "r/object", limit: 1 << 20)
            #expect(read == stored, "\(name)")
            do throws(S3Error) {
                _ = try await backend.store.get(key: "r/missing", limit: 1 << 20)
                Issue.record("\(name): a missing key was read")
            } catch {
                #expect(error.status == 404 && error.code == "NoSuchKey", "\(name): \(error)")
            }
            do throws(S3Error) {
                let cut = try await backend.store.get(key: "r/object", limit: 1000)
                Issue.record("\(name): an object larger than the limit was read (\(cut.readableBytes) bytes)")
            } catch {
                #expect(error.status != 404, "\(name): a limit exceeded read as a missing key: \(error)")
            }
        }
    }

    @Test(arguments: backends)
    func createStoresOnlyWhenTheKeyIsFree(backend name: String) async throws {
        try await withBackend(name) { backend in
            let first = ByteBuffer(string: "the first writer's body")
            try await backend.store.create(key: "c/key", body: first, contentType: "application/json")
            do throws(S3Error) {
                try await backend.store.create(key: "c/key", body: ByteBuffer(string: "a second body"), contentType: "application/json")
                Issue.record("\(name): a second create replaced the object")
            } catch {
                #expect(error.status == 412, "\(name): \(error)")
            }
            let kept = try await backend.store.get(key: "c/key", limit: 1 << 20)
            #expect(kept == first, "\(name)")
        }
    }

    @Test(arguments: backends)
    func deletesTheKeysGivenAndCountsAMissingOneAsDeleted(backend name: String) async throws {
        try await withBackend(name) { backend in
            for key in ["d/a", "d/b", "d/c"] { try await backend.store.create(key: key, body: ByteBuffer(string: key), contentType: "text/plain") }
            let result = try await backend.store.delete(keys: ["d/a", "d/never-there"])
            #expect(Set(result.deleted) == ["d/a", "d/never-there"], "\(name): \(result)")
            #expect(result.failures.isEmpty, "\(name): \(result.failures)")
            let left = try await backend.store.list(prefix: "d/", limit: nil)
            #expect(left.map(\.key) == ["d/b", "d/c"], "\(name)")
        }
    }

    @Test(arguments: backends)
    func listsIncompleteUploadsUnderAPrefixAndAbortsThemOnce(backend name: String) async throws {
        try await withBackend(name) { backend in
            try await backend.startUpload("m/one")
            try await backend.startUpload("n/other")
            let uploads = try await backend.store.incompleteUploads(prefix: "m/")
            #expect(uploads.map(\.key) == ["m/one"], "\(name)")
            let upload = try #require(uploads.first)
            let initiated = try #require(upload.initiated, "\(name): an upload listed without its start")
            if name == "moto" {
                // Found by this suite: moto lists every upload as initiated at one fixed time in 2010, so on moto
                // each incomplete upload looks past any grace period (AWS, RGW and the memory store give the
                // real start; the sweep's grace is unit-tested on the memory store). Fails once moto is fixed.
                withKnownIssue("moto lists uploads with a fixed Initiated date") {
                    #expect(abs(initiated.timeIntervalSinceNow) < 300, "\(name): started \(initiated)")
                }
            } else {
                #expect(abs(initiated.timeIntervalSinceNow) < 300, "\(name): started \(initiated)")
            }
            // Not an object: a listing of objects does not show it.
            #expect(try await backend.store.list(prefix: "m/", limit: nil).isEmpty, "\(name)")
            try await backend.store.abortUpload(key: upload.key, uploadId: upload.uploadId)
            #expect(try await backend.store.incompleteUploads(prefix: "m/").isEmpty, "\(name)")
            // Aborting one already gone counts as aborted (a retried abort, or a sweep racing another).
            try await backend.store.abortUpload(key: upload.key, uploadId: upload.uploadId)
            for other in try await backend.store.incompleteUploads(prefix: "") {
                try await backend.store.abortUpload(key: other.key, uploadId: other.uploadId)
            }
        }
    }
}
